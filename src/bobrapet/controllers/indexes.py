"""Shared caches with the reverse-reference indexes the controllers query.

``stories(manager)`` etc. return the manager's :class:`~bobrapet.runtime.cache.ObjectCache`
of the kind with these indexes registered (idempotent, so every controller may ask):

* Story ``ENGRAM_REFS``: ``(namespace, engram)`` for every step / branch ``ref``;
* Story ``SUBSTORY_REFS``: ``(namespace, story)`` for every ``executeStory`` target;
* Story ``TRANSPORT_REFS``: Transport names of ``spec.transports[].transportRef``;
* Engram / Impulse ``TEMPLATE_REF``: ``spec.templateRef.name``;
* Impulse ``STORY_REF``: ``(namespace, story)`` of ``spec.storyRef``;
* StepRun projection (``spec.engramRef`` only) ``ENGRAM_REF``: ``(namespace, engram)``;
* StoryRun projection (refs, trigger tokens, timestamps) ``RUN_STORY_REF`` /
  ``RUN_IMPULSE_REF``: ``(namespace, story)`` / ``(namespace, impulse)``.

Runs are cached as projections: counting them must not keep every run's inputs and
outputs in memory.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from bobrapet.api.kinds import ENGRAM, IMPULSE, STEP_RUN, STORY, STORY_RUN
from bobrapet.controllers import refs
from bobrapet.runtime.cache import ObjectCache
from bobrapet.runtime.manager import Manager
from bobrapet.store.client import Resource

ENGRAM_REFS = "engram-refs"
SUBSTORY_REFS = "substory-refs"
TRANSPORT_REFS = "transport-refs"
TEMPLATE_REF = "template-ref"
STORY_REF = "story-ref"
ENGRAM_REF = "engram-ref"
RUN_STORY_REF = "run-story-ref"
RUN_IMPULSE_REF = "run-impulse-ref"


def _engram_refs(story: Resource) -> list[Hashable]:
    return [(r.ref.namespace, r.ref.name) for r in refs.story_engram_refs(story)]


def _substory_refs(story: Resource) -> list[Hashable]:
    return [(r.ref.namespace, r.ref.name) for r in refs.story_substory_refs(story)]


def _transport_refs(story: Resource) -> list[Hashable]:
    return list(refs.story_transport_names(story))


def _template_ref(obj: Resource) -> list[Hashable]:
    name = refs.template_name(obj)
    return [name] if name else []


def _story_ref(impulse: Resource) -> list[Hashable]:
    ref = refs.impulse_story_ref(impulse)
    return [(ref.namespace, ref.name)] if ref is not None else []


def stories(manager: Manager) -> ObjectCache:
    cache = manager.cache(STORY)
    cache.add_index(ENGRAM_REFS, _engram_refs)
    cache.add_index(SUBSTORY_REFS, _substory_refs)
    cache.add_index(TRANSPORT_REFS, _transport_refs)
    return cache


def engrams(manager: Manager) -> ObjectCache:
    cache = manager.cache(ENGRAM)
    cache.add_index(TEMPLATE_REF, _template_ref)
    return cache


def impulses(manager: Manager) -> ObjectCache:
    cache = manager.cache(IMPULSE)
    cache.add_index(TEMPLATE_REF, _template_ref)
    cache.add_index(STORY_REF, _story_ref)
    return cache


def _step_run_view(step_run: Resource) -> Resource:
    return {"spec": {"engramRef": refs.spec_of(step_run).get("engramRef")}}


def _engram_ref(step_run: Resource) -> list[Hashable]:
    ref = refs.steprun_engram_ref(step_run)
    return [(ref.namespace, ref.name)] if ref is not None else []


def step_runs(manager: Manager) -> ObjectCache:
    """StepRuns reduced to ``spec.engramRef``, indexed by it."""
    cache = manager.projection(STEP_RUN, "engram-ref", _step_run_view)
    cache.add_index(ENGRAM_REF, _engram_ref)
    return cache


def _story_run_view(run: Resource) -> Resource:
    spec = refs.spec_of(run)
    status = run.get("status") if isinstance(run.get("status"), dict) else {}
    metadata = run.get("metadata") or {}
    view: dict[str, Any] = {
        "metadata": {"creationTimestamp": metadata.get("creationTimestamp")},
        "spec": {"storyRef": spec.get("storyRef"), "impulseRef": spec.get("impulseRef")},
        "status": {
            "triggerTokens": (status or {}).get("triggerTokens"),
            "finishedAt": (status or {}).get("finishedAt"),
        },
    }
    return view


def _run_story_ref(run: Resource) -> list[Hashable]:
    ref = refs.run_story_ref(run)
    return [(ref.namespace, ref.name)] if ref is not None else []


def _run_impulse_ref(run: Resource) -> list[Hashable]:
    ref = refs.run_impulse_ref(run)
    return [(ref.namespace, ref.name)] if ref is not None else []


def story_runs(manager: Manager) -> ObjectCache:
    """StoryRuns reduced to refs, trigger tokens and timestamps, indexed by story/impulse."""
    cache = manager.projection(STORY_RUN, "trigger-counters", _story_run_view)
    cache.add_index(RUN_STORY_REF, _run_story_ref)
    cache.add_index(RUN_IMPULSE_REF, _run_impulse_ref)
    return cache
