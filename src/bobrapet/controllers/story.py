"""Story controller (reference §1.3).

Re-validates a Story's references and writes:

* ``validationStatus`` / ``validationErrors`` / ``validationWarnings``: every Engram a
  step (or parallel branch) references must exist — and for ``realtime`` stories run in
  ``deployment``/``statefulset`` mode (``EngramReferenceInvalid``); every ``executeStory``
  target must exist (``StoryReferenceInvalid``); every ``spec.transports[].transportRef``
  must name an existing Transport (``TransportReferenceInvalid``). Version pins that do
  not match, and referenced Engrams that are themselves invalid, are warnings;
* a ``Ready`` condition: ``ValidationPassed``, or the reason of the errors (their common
  reason, else ``ValidationFailed``) with every error in the message;
* ``stepsTotal`` (= steps + compensations + finally), ``transports[]`` (batch →
  ``fallback``/``batch-pattern``, realtime → ``hot``/``streaming-default``),
  ``usageCount`` (Impulses in any namespace whose storyRef targets this Story),
  ``triggers`` (StoryRuns of this Story in its namespace whose ``status.triggerTokens``
  contain ``story``) and ``observedGeneration``;
* the finalizer ``story.bubustack.io/finalizer``: added to live Stories, removed when the
  Story is being deleted.

Watches: Engrams, Impulses, Transports, other Stories (executeStory targets) and
StoryRuns, each mapped to the Stories affected.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from bobrapet.api import conditions
from bobrapet.api.conditions import Reason
from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import ENGRAM, IMPULSE, STORY, STORY_RUN, TRANSPORT_KIND
from bobrapet.controllers import indexes, refs, settings
from bobrapet.controllers.finalizers import ensure_finalizer, remove_finalizer
from bobrapet.controllers.status import generation, is_deleting, set_or_drop, status_copy, write_status
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.runtime.watches import (
    Watch,
    cached_reverse_mapper,
    changed,
    event_types,
    generation_changed,
    index_mapper,
    names_mapper,
    tracking_mapper,
)
from bobrapet.store.client import Resource

NAME = "story"
FINALIZER = STORY.finalizer or "story.bubustack.io/finalizer"
REALTIME_MODES = ("deployment", "statefulset")


@dataclass(frozen=True)
class Problem:
    reason: str
    message: str


def _where(ref: refs.Ref, story_namespace: str) -> str:
    return "" if ref.namespace == story_namespace else f' in namespace "{ref.namespace}"'


def transports_status(story: Resource) -> list[dict[str, Any]]:
    """``status.transports``: one entry per declared transport."""
    realtime = refs.spec_of(story).get("pattern") == "realtime"
    entries: list[dict[str, Any]] = []
    for entry in refs.spec_of(story).get("transports") or ():
        if not isinstance(entry, dict):
            continue
        entries.append(
            {
                "name": entry.get("name", ""),
                "transportRef": entry.get("transportRef", ""),
                "mode": "hot" if realtime else "fallback",
                "modeReason": "streaming-default" if realtime else "batch-pattern",
            }
        )
    return entries


def steps_total(story: Resource) -> int:
    spec = refs.spec_of(story)
    return sum(len(spec.get(section) or ()) for section in refs.SECTIONS)


class StoryReconciler:
    def __init__(self, manager: Manager) -> None:
        self.client = manager.client
        self.clock = manager.clock
        self.engrams = indexes.engrams(manager)
        self.stories = indexes.stories(manager)
        self.impulses = indexes.impulses(manager)
        self.runs = indexes.story_runs(manager)

    async def __call__(self, request: Request) -> Result:
        return await retry_on_conflict(lambda: self._reconcile(request))

    def _check_engrams(self, story: Resource, problems: list[Problem], warnings: list[str]) -> None:
        namespace = refs.namespace_of(story)
        realtime = refs.spec_of(story).get("pattern") == "realtime"
        for step_ref in refs.story_engram_refs(story):
            ref = step_ref.ref
            engram = self.engrams.get(ref.name, ref.namespace)
            where = _where(ref, namespace)
            if engram is None:
                problems.append(
                    Problem(
                        Reason.ENGRAM_REFERENCE_INVALID,
                        f'step "{step_ref.step}" ({step_ref.path}): Engram "{ref.name}"{where} does not '
                        "exist; create it or fix the reference",
                    )
                )
                continue
            spec = refs.spec_of(engram)
            mode = spec.get("mode") or "job"
            if realtime and mode not in REALTIME_MODES:
                problems.append(
                    Problem(
                        Reason.ENGRAM_REFERENCE_INVALID,
                        f'step "{step_ref.step}" ({step_ref.path}): Engram "{ref.name}"{where} runs in '
                        f'mode "{mode}"; realtime stories need Engrams with spec.mode deployment or '
                        "statefulset",
                    )
                )
            if ref.version and spec.get("version") and ref.version != spec.get("version"):
                warnings.append(
                    f'step "{step_ref.step}" pins Engram "{ref.name}" version "{ref.version}", '
                    f'but the Engram is version "{spec.get("version")}"'
                )
            engram_status = engram.get("status") or {}
            if engram_status.get("validationStatus") == "invalid":
                detail = "; ".join(engram_status.get("validationErrors") or []) or "see its status"
                warnings.append(f'step "{step_ref.step}": Engram "{ref.name}"{where} is invalid: {detail}')

    def _check_substories(self, story: Resource, problems: list[Problem], warnings: list[str]) -> None:
        namespace = refs.namespace_of(story)
        for step_ref in refs.story_substory_refs(story):
            ref = step_ref.ref
            target = self.stories.get(ref.name, ref.namespace)
            if target is None:
                problems.append(
                    Problem(
                        Reason.STORY_REFERENCE_INVALID,
                        f'step "{step_ref.step}" ({step_ref.path}): Story "{ref.name}"'
                        f"{_where(ref, namespace)} does not exist; create it or fix the reference",
                    )
                )
                continue
            version = refs.spec_of(target).get("version")
            if ref.version and version and ref.version != version:
                warnings.append(
                    f'step "{step_ref.step}" pins Story "{ref.name}" version "{ref.version}", '
                    f'but the Story is version "{version}"'
                )

    async def _check_transports(self, story: Resource, problems: list[Problem]) -> None:
        for index, entry in enumerate(refs.spec_of(story).get("transports") or ()):
            if not isinstance(entry, dict) or not entry.get("transportRef"):
                continue
            try:
                await self.client.get(TRANSPORT_KIND, str(entry["transportRef"]))
            except NotFound:
                problems.append(
                    Problem(
                        Reason.TRANSPORT_REFERENCE_INVALID,
                        f'transport "{entry.get("name", "")}" (spec.transports[{index}].transportRef): '
                        f'Transport "{entry["transportRef"]}" does not exist; create it or fix the reference',
                    )
                )

    def _triggers(self, namespace: str, name: str) -> int:
        runs = self.runs.by_index(indexes.RUN_STORY_REF, (namespace, name))
        return sum(1 for run in runs if "story" in refs.trigger_tokens(run))

    async def _reconcile(self, request: Request) -> Result:
        try:
            story = await self.client.get(STORY, request.name, request.namespace)
        except NotFound:
            return Result()
        if is_deleting(story):
            await remove_finalizer(self.client, story, FINALIZER)
            return Result()
        story = await ensure_finalizer(self.client, story, FINALIZER)
        namespace = refs.namespace_of(story)

        problems: list[Problem] = []
        warnings: list[str] = []
        self._check_engrams(story, problems, warnings)
        self._check_substories(story, problems, warnings)
        await self._check_transports(story, problems)
        usage = len(self.impulses.by_index(indexes.STORY_REF, (namespace, request.name)))

        gen = generation(story)
        status = status_copy(story)
        set_or_drop(status, "observedGeneration", gen)
        status["stepsTotal"] = steps_total(story)
        set_or_drop(status, "transports", transports_status(story))
        status["validationStatus"] = "invalid" if problems else "valid"
        set_or_drop(status, "validationErrors", [p.message for p in problems])
        set_or_drop(status, "validationWarnings", warnings)
        status["usageCount"] = usage
        status["triggers"] = self._triggers(namespace, request.name)
        if problems:
            reasons = {p.reason for p in problems}
            reason = problems[0].reason if len(reasons) == 1 else Reason.VALIDATION_FAILED
            ready, message = False, "; ".join(p.message for p in problems)
        else:
            reason, ready, message = Reason.VALIDATION_PASSED, True, "all references resolved"
        conditions.set_condition(
            status.setdefault("conditions", []), conditions.READY, ready, reason, message,
            observed_generation=gen, now=self.clock.now(),
        )  # fmt: skip
        await write_status(self.client, story, status)
        return Result()


def _key_of(obj: Resource) -> list[Hashable]:
    return [(refs.namespace_of(obj), refs.name_of(obj))]


def _engram_fingerprint(engram: Resource) -> Any:
    status = engram.get("status") or {}
    metadata = engram.get("metadata") or {}
    return (
        metadata.get("generation"),
        status.get("validationStatus"),
        tuple(status.get("validationErrors") or ()),
    )


def _story_of_impulse(impulse: Resource) -> list[Request]:
    ref = refs.impulse_story_ref(impulse)
    return [Request(ref.namespace, ref.name)] if ref is not None else []


#: How long new runs of a Story are gathered before its ``triggers`` count is written again.
TRIGGERS_DELAY = 0.5


def _story_of_run(run: Resource) -> list[tuple[str | None, str]]:
    ref = refs.run_story_ref(run)
    return [(ref.namespace, ref.name)] if ref is not None else []


def setup(manager: Manager) -> Controller:
    reconciler = StoryReconciler(manager)
    stories = reconciler.stories
    engram_watch = Watch(
        ENGRAM,
        index_mapper(stories, indexes.ENGRAM_REFS, _key_of),
        changed(_engram_fingerprint),
    )
    impulse_watch = Watch(
        IMPULSE,
        tracking_mapper(
            _story_of_impulse,
            fallback=cached_reverse_mapper(stories, lambda s, i: True),
        ),
        changed(lambda i: refs.impulse_story_ref(i)),
    )
    transport_watch = Watch(
        TRANSPORT_KIND,
        index_mapper(stories, indexes.TRANSPORT_REFS, lambda t: [refs.name_of(t)]),
        event_types("ADDED", "DELETED"),
    )
    substory_watch = Watch(
        STORY,
        index_mapper(stories, indexes.SUBSTORY_REFS, _key_of),
        generation_changed(),
    )
    run_watch = Watch(
        STORY_RUN,
        names_mapper(_story_of_run),
        changed(lambda r: (refs.run_story_ref(r), "story" in refs.trigger_tokens(r))),
        # A burst of new runs (a webhook storm) recounts the Story's triggers once, not per run.
        debounce=TRIGGERS_DELAY,
    )
    s = settings.STORY
    controller = Controller(
        NAME,
        STORY,
        reconciler,
        workers=s.workers,
        base_delay=s.base_delay,
        max_delay=s.max_delay,
        reconcile_timeout=s.reconcile_timeout,
        watches=[engram_watch, impulse_watch, transport_watch, substory_watch, run_watch],
    )
    return manager.add(controller)
