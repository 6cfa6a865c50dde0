"""Engram controller (reference §1.4).

Writes ``observedGeneration``, ``validationStatus``/``validationErrors`` (the EngramTemplate
named by ``spec.templateRef`` must exist), a ``Ready`` condition (``TemplateResolved`` or
``TemplateNotFound``), ``usageCount`` (Stories in any namespace whose steps,
compensations, finally or parallel branches reference this Engram) and ``triggers``
(StepRuns in this namespace whose ``spec.engramRef`` names it).

Watches: EngramTemplates (created/deleted → the Engrams using them), Stories (spec
changes → the Engrams they reference now and referenced before) and StepRuns
(created/deleted → their Engram).
"""

from __future__ import annotations

from bobrapet.api import conditions
from bobrapet.api.conditions import Reason
from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import ENGRAM, ENGRAM_TEMPLATE, STEP_RUN, STORY
from bobrapet.controllers import indexes, refs, settings
from bobrapet.controllers.status import generation, is_deleting, set_or_drop, status_copy, write_status
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.runtime.watches import (
    Watch,
    cached_reverse_mapper,
    event_types,
    generation_changed,
    index_mapper,
    names_mapper,
    tracking_mapper,
)
from bobrapet.store.client import Resource

NAME = "engram"


class EngramReconciler:
    def __init__(self, manager: Manager) -> None:
        self.client = manager.client
        self.clock = manager.clock
        self.stories = indexes.stories(manager)
        self.step_runs = indexes.step_runs(manager)

    async def __call__(self, request: Request) -> Result:
        return await retry_on_conflict(lambda: self._reconcile(request))

    async def _reconcile(self, request: Request) -> Result:
        try:
            engram = await self.client.get(ENGRAM, request.name, request.namespace)
        except NotFound:
            return Result()
        if is_deleting(engram):
            return Result()
        namespace = refs.namespace_of(engram)
        template_name = refs.template_name(engram)
        errors: list[str] = []
        if template_name is None:
            errors.append("spec.templateRef.name is required")
            reason = Reason.VALIDATION_FAILED
        else:
            try:
                await self.client.get(ENGRAM_TEMPLATE, template_name)
                reason = Reason.TEMPLATE_RESOLVED
            except NotFound:
                errors.append(
                    f'spec.templateRef.name: EngramTemplate "{template_name}" not found; '
                    "create it or fix the reference"
                )
                reason = Reason.TEMPLATE_NOT_FOUND

        usage = len(self.stories.by_index(indexes.ENGRAM_REFS, (namespace, request.name)))
        triggers = len(self.step_runs.by_index(indexes.ENGRAM_REF, (namespace, request.name)))

        gen = generation(engram)
        status = status_copy(engram)
        set_or_drop(status, "observedGeneration", gen)
        status["validationStatus"] = "invalid" if errors else "valid"
        set_or_drop(status, "validationErrors", errors)
        status["usageCount"] = usage
        status["triggers"] = triggers
        message = "; ".join(errors) if errors else f'EngramTemplate "{template_name}" resolved'
        conditions.set_condition(
            status.setdefault("conditions", []), conditions.READY, not errors, reason, message,
            observed_generation=gen, now=self.clock.now(),
        )  # fmt: skip
        await write_status(self.client, engram, status)
        return Result()


def _engrams_of_story(story: Resource) -> list[Request]:
    return [Request(r.ref.namespace or None, r.ref.name) for r in refs.story_engram_refs(story)]


def _engram_of_step_run(step_run: Resource) -> list[tuple[str | None, str]]:
    ref = refs.steprun_engram_ref(step_run)
    return [(ref.namespace, ref.name)] if ref is not None else []


def setup(manager: Manager) -> Controller:
    reconciler = EngramReconciler(manager)
    template_watch = Watch(
        ENGRAM_TEMPLATE,
        index_mapper(indexes.engrams(manager), indexes.TEMPLATE_REF, lambda t: [refs.name_of(t)]),
        event_types("ADDED", "DELETED"),
    )
    story_watch = Watch(
        STORY,
        tracking_mapper(
            _engrams_of_story,
            # A story first seen when modified may have dropped references we never saw.
            fallback=cached_reverse_mapper(manager.cache(ENGRAM), lambda e, s: True),
        ),
        generation_changed(),
    )
    # Runs create StepRuns in bursts: count them once per burst, not with a write per StepRun.
    step_run_watch = Watch(
        STEP_RUN, names_mapper(_engram_of_step_run), event_types("ADDED", "DELETED"), debounce=0.5
    )
    s = settings.ENGRAM
    controller = Controller(
        NAME,
        ENGRAM,
        reconciler,
        workers=s.workers,
        base_delay=s.base_delay,
        max_delay=s.max_delay,
        reconcile_timeout=s.reconcile_timeout,
        watches=[template_watch, story_watch, step_run_watch],
    )
    return manager.add(controller)
