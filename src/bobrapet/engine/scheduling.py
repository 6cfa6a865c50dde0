"""Concurrency limits, queues and priority (reference §2.7).

Invariants:

* :class:`Capacity` counts StepRuns whose phase is ``Running`` or that wait, claimed, for an
  execution slot (reason ``WaitingForCapacity``); the engine adds its own StepRuns that were
  launched but are neither yet (and those it launches in this plan), so two reconciles never
  overshoot a limit.
* A ready engram step beyond a limit is held ``Pending`` with reason ``Queued``
  (:attr:`StepReason.QUEUED`) — that reason, not the "Queued due to …" message, is what
  marks the step as queued (not started).
* Limits are checked story first, then queue, then global; 0 means unlimited.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from bobrapet.api import runmeta
from bobrapet.api.phases import is_terminal_phase
from bobrapet.api.types.story import Story
from bobrapet.engine.config import EngineConfig
from bobrapet.engine.steprun import WAITING_FOR_CAPACITY

if TYPE_CHECKING:
    from bobrapet.engine.context import Context


def queue_name(story: Story | None) -> str:
    policy = story.spec.policy if story is not None else None
    return ((policy.queue if policy is not None else None) or "default").lower()


def queue_priority(story: Story | None, config: EngineConfig) -> int:
    policy = story.spec.policy if story is not None else None
    if policy is not None and policy.priority is not None:
        return policy.priority
    return config.queue(queue_name(story)).default_priority


def run_labels(ctx: Context) -> dict[str, str]:
    """Labels stamped on every StepRun of the run."""
    return {
        runmeta.STORYRUN: runmeta.run_label(ctx.run_name),
        runmeta.STORY_NAME: ctx.story.metadata.name or "",
        "bubustack.io/queue": queue_name(ctx.story),
        "bubustack.io/queue-priority": str(queue_priority(ctx.story, ctx.config)),
    }


def effective_priority(base: int, queued_since: datetime | None, now: datetime, aging_seconds: float) -> int:
    """``base + floor(seconds queued / aging_seconds)``: starving runs age upward."""
    if queued_since is None or aging_seconds <= 0:
        return base
    waited = (now - queued_since).total_seconds()
    return base + max(math.floor(waited / aging_seconds), 0)


def _own_not_running(ctx: Context) -> int:
    return sum(
        1
        for view in ctx.snap.step_runs.values()
        if view.phase != "Running"
        and not is_terminal_phase(view.phase)
        and not view.deleting
        and view.reason != WAITING_FOR_CAPACITY
    )


class Budget:
    """How many more StepRuns this plan may start, and why not when it may not."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        cap = ctx.snap.capacity
        policy = ctx.story.spec.policy
        queue = queue_name(ctx.story)
        self.limits = [
            ("story", (policy.concurrency if policy is not None else None) or 0, cap.story_running),
            ("queue", ctx.config.queue(queue).concurrency, cap.queue_running),
            ("global", ctx.config.global_concurrency, cap.global_running),
        ]
        self.outranked = cap.outranked
        self.queue = queue
        self.limited = any(limit > 0 for _, limit, _ in self.limits)
        self.extra = _own_not_running(ctx) if self.limited else 0

    def hold_reason(self) -> str | None:
        """``None`` when one more StepRun may start now, else the queued message."""
        if self.outranked:
            return f"Queued due to higher-priority work in queue '{self.queue}'"
        if not self.limited:
            return None
        for kind, limit, running in self.limits:
            used = running + self.extra + self.ctx.launched_step_runs
            if limit > 0 and used >= limit:
                return f"Queued due to {kind} concurrency limit ({used} running, limit {limit})"
        return None
