"""Impulse controller (reference §1.5, §5.5) — validation, conditions and counters.

This controller does not run impulses: the impulse supervisor of ``bobrapet serve``
(:mod:`bobrapet.impulses.supervisor`) does, and owns ``replicas``/``readyReplicas``, the
``Listening`` condition, ``throttledTriggers``/``lastThrottled`` and
``refusedDeliveries``/``lastRefused``. This controller writes:

* ``observedGeneration``;
* ``phase``: ``Running`` when ``status.readyReplicas`` is at least 1; ``Failed`` when the
  supervisor reported, for the current generation, that the Impulse cannot run
  (``Listening`` False with reason ``InvalidConfiguration``); else ``Pending``;
* a ``Ready`` condition: ``False``/``TemplateNotFound`` or ``StoryNotFound`` when a
  reference is missing (all missing references in the message), ``True``/
  ``DeploymentReady`` when Running, ``False``/``ExecutionFailed`` with the supervisor's
  message when Failed, else ``False``/``Reconciling`` (with the supervisor's message when
  it gave one: a crash and its restart delay, a missing Secret);
* ``triggersReceived`` / ``storiesLaunched`` / ``failedTriggers``: StoryRuns in the
  Impulse's namespace whose ``spec.impulseRef`` points here, counted by trigger tokens
  ``impulse`` / ``impulse-success`` / ``impulse-failed``; ``lastTrigger`` (newest such
  run's creation) and ``lastSuccess`` (newest successful run's ``finishedAt``), which only
  ever move forward. Fields the supervisor owns are kept.

Watches: ImpulseTemplates and Stories (created/deleted → the Impulses referencing them)
and StoryRuns with an ``impulseRef`` (trigger tokens changed → that Impulse, debounced by
:data:`COUNTERS_DELAY`).
"""

from __future__ import annotations

from typing import Any

from bobrapet.api import conditions
from bobrapet.api.conditions import Reason
from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import IMPULSE, IMPULSE_TEMPLATE, STORY, STORY_RUN
from bobrapet.controllers import indexes, refs, settings
from bobrapet.controllers.status import generation, is_deleting, set_or_drop, status_copy, write_status
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.runtime.watches import Watch, changed, event_types, index_mapper, names_mapper
from bobrapet.store.client import Resource

NAME = "impulse"
#: Run events recount an Impulse's counters this long after the first of a burst (a recount
#: reads every run of the Impulse: one per run event would be quadratic under a webhook burst).
COUNTERS_DELAY = 0.5


def _newer(current: Any, candidate: str | None) -> Any:
    """The later of two RFC 3339 timestamps (same format compares lexicographically)."""
    if candidate is None:
        return current
    if not isinstance(current, str) or candidate > current:
        return candidate
    return current


class ImpulseReconciler:
    def __init__(self, manager: Manager) -> None:
        self.client = manager.client
        self.clock = manager.clock
        self.runs = indexes.story_runs(manager)

    async def __call__(self, request: Request) -> Result:
        return await retry_on_conflict(lambda: self._reconcile(request))

    async def _problems(self, impulse: Resource) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        template_name = refs.template_name(impulse)
        if template_name is None:
            problems.append((Reason.VALIDATION_FAILED, "spec.templateRef.name is required"))
        else:
            try:
                await self.client.get(IMPULSE_TEMPLATE, template_name)
            except NotFound:
                problems.append(
                    (
                        Reason.TEMPLATE_NOT_FOUND,
                        f'spec.templateRef.name: ImpulseTemplate "{template_name}" not found; '
                        "create it or fix the reference",
                    )
                )
        story_ref = refs.impulse_story_ref(impulse)
        if story_ref is None:
            problems.append((Reason.VALIDATION_FAILED, "spec.storyRef.name is required"))
        else:
            try:
                await self.client.get(STORY, story_ref.name, story_ref.namespace)
            except NotFound:
                problems.append(
                    (
                        Reason.STORY_NOT_FOUND,
                        f'spec.storyRef: Story "{story_ref.name}" not found in namespace '
                        f'"{story_ref.namespace}"; create it or fix the reference',
                    )
                )
        return problems

    async def _reconcile(self, request: Request) -> Result:
        try:
            impulse = await self.client.get(IMPULSE, request.name, request.namespace)
        except NotFound:
            return Result()
        if is_deleting(impulse):
            return Result()
        namespace = refs.namespace_of(impulse)
        problems = await self._problems(impulse)

        received = launched = failed = 0
        last_trigger: str | None = None
        last_success: str | None = None
        for run in self.runs.by_index(indexes.RUN_IMPULSE_REF, (namespace, request.name)):
            tokens = refs.trigger_tokens(run)
            if "impulse" in tokens:
                received += 1
                created = (run.get("metadata") or {}).get("creationTimestamp")
                last_trigger = _newer(last_trigger, created if isinstance(created, str) else None)
            if "impulse-success" in tokens:
                launched += 1
                finished = (run.get("status") or {}).get("finishedAt")
                last_success = _newer(last_success, finished if isinstance(finished, str) else None)
            if "impulse-failed" in tokens:
                failed += 1

        gen = generation(impulse)
        status = status_copy(impulse)
        set_or_drop(status, "observedGeneration", gen)
        ready_replicas = status.get("readyReplicas")
        running = isinstance(ready_replicas, int) and ready_replicas >= 1
        runtime = _runtime_condition(status, gen)
        cannot_run = (
            not running and runtime is not None and runtime.get("reason") == Reason.INVALID_CONFIGURATION
        )
        status["phase"] = "Running" if running else "Failed" if cannot_run else "Pending"
        status["triggersReceived"] = received
        status["storiesLaunched"] = launched
        status["failedTriggers"] = failed
        set_or_drop(status, "lastTrigger", _newer(status.get("lastTrigger"), last_trigger))
        set_or_drop(status, "lastSuccess", _newer(status.get("lastSuccess"), last_success))
        if problems:
            reasons = {reason for reason, _ in problems}
            reason = problems[0][0] if len(reasons) == 1 else Reason.VALIDATION_FAILED
            ready, message = False, "; ".join(message for _, message in problems)
        elif running:
            reason, ready, message = Reason.DEPLOYMENT_READY, True, "impulse runtime is running"
        elif cannot_run:
            assert runtime is not None
            reason, ready, message = Reason.EXECUTION_FAILED, False, str(runtime.get("message") or "")
        else:
            waiting = "waiting for the impulse runtime (it runs while `bobrapet serve` runs)"
            detail = runtime.get("message") if runtime is not None else None
            reason, ready, message = Reason.RECONCILING, False, f"{waiting}: {detail}" if detail else waiting
        conditions.set_condition(
            status.setdefault("conditions", []), conditions.READY, ready, reason, message,
            observed_generation=gen, now=self.clock.now(),
        )  # fmt: skip
        await write_status(self.client, impulse, status)
        return Result()


def _runtime_condition(status: dict[str, Any], generation: int | None) -> dict[str, Any] | None:
    """The supervisor's ``Listening`` condition when it is False for ``generation``."""
    condition = conditions.get_condition(status.get("conditions"), conditions.LISTENING)
    if condition is None or condition.get("status") != conditions.FALSE:
        return None
    if generation is not None and condition.get("observedGeneration") not in (None, generation):
        return None
    return condition


def _impulse_of_run(run: Resource) -> list[tuple[str | None, str]]:
    ref = refs.run_impulse_ref(run)
    return [(ref.namespace, ref.name)] if ref is not None else []


def _run_counters(run: Resource) -> Any:
    return (
        refs.run_impulse_ref(run),
        tuple(sorted(refs.trigger_tokens(run))),
        (run.get("status") or {}).get("finishedAt"),
    )


def setup(manager: Manager) -> Controller:
    reconciler = ImpulseReconciler(manager)
    impulses = indexes.impulses(manager)
    template_watch = Watch(
        IMPULSE_TEMPLATE,
        index_mapper(impulses, indexes.TEMPLATE_REF, lambda t: [refs.name_of(t)]),
        event_types("ADDED", "DELETED"),
    )

    story_watch = Watch(
        STORY,
        index_mapper(impulses, indexes.STORY_REF, lambda s: [(refs.namespace_of(s), refs.name_of(s))]),
        event_types("ADDED", "DELETED"),
    )

    counters_changed = changed(_run_counters)
    run_watch = Watch(
        STORY_RUN,
        names_mapper(_impulse_of_run),
        lambda event: refs.run_impulse_ref(event.object) is not None and counters_changed(event),
        debounce=COUNTERS_DELAY,
    )
    s = settings.IMPULSE
    controller = Controller(
        NAME,
        IMPULSE,
        reconciler,
        workers=s.workers,
        base_delay=s.base_delay,
        max_delay=s.max_delay,
        reconcile_timeout=s.reconcile_timeout,
        watches=[template_watch, story_watch, run_watch],
    )
    return manager.add(controller)
