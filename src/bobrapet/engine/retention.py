"""Finished runs: children kept for a TTL, the run itself for the retention period (§4.8).

Invariants:

* Child TTL = Story ``policy.execution.job.ttlSecondsAfterFinished`` when > 0, else the
  configured ``child_ttl_seconds``; after it every child StepRun and StoryRun is deleted
  once and ``status.childrenCleanedAt`` is stamped.
* Retention = Story ``policy.execution.job.storyRunRetentionSeconds`` when set (``0`` keeps
  the run forever — deliberate difference: the Go operator reads 0 as "unset", i.e. 24 h),
  else the configured ``retention_seconds`` (``0``/``None`` keep forever); a negative value
  deletes the run at once.
* Both are measured from ``status.finishedAt``; the run requeues at the nearest one, starting
  with the very reconcile that finishes it (no later event is needed to schedule them).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from bobrapet.api.types.shared import JobPolicy
from bobrapet.engine.timefmt import parse_time

if TYPE_CHECKING:
    from bobrapet.engine.context import Context


def _job(ctx: Context) -> JobPolicy | None:
    story = ctx.snap.story
    policy = story.spec.policy if story is not None else None
    execution = policy.execution if policy is not None else None
    return execution.job if execution is not None else None


def child_ttl(ctx: Context) -> float:
    job = _job(ctx)
    if job is not None and job.ttl_seconds_after_finished and job.ttl_seconds_after_finished > 0:
        return float(job.ttl_seconds_after_finished)
    return ctx.config.child_ttl_seconds


def retention(ctx: Context) -> float | None:
    """Seconds to keep the finished run; ``None`` keeps it forever."""
    job = _job(ctx)
    if job is not None and job.story_run_retention_seconds is not None:
        value = job.story_run_retention_seconds
        return None if value == 0 else float(value)
    configured = ctx.config.retention_seconds
    return None if not configured else float(configured)


def handle_terminal(ctx: Context) -> None:
    finished = parse_time(ctx.status.get("finishedAt"))
    if finished is None:
        ctx.status["finishedAt"] = ctx.now_str
        finished = parse_time(ctx.now_str)
    assert finished is not None
    if not ctx.status.get("childrenCleanedAt"):
        deadline = finished + timedelta(seconds=child_ttl(ctx))
        if ctx.now >= deadline:
            ctx.plan.delete_step_runs.extend(v.name for v in ctx.snap.step_runs.values() if not v.deleting)
            ctx.plan.delete_child_runs.extend(
                v.name for v in ctx.snap.child_runs.values() if v.owned and not v.deleting
            )
            ctx.status["childrenCleanedAt"] = ctx.now_str
            ctx.plan.delete_logs = True  # gone for good (a redrive's deletions keep them)
        else:
            ctx.wake_at(deadline)
    keep = retention(ctx)
    if keep is None:
        return
    until = finished + timedelta(seconds=keep)
    if ctx.now >= until:
        ctx.plan.delete_run = True
    else:
        ctx.wake_at(until)
