"""Shared run caches and the engine's view of them (StoryRun and StepRun controllers).

* StepRuns are cached whole and indexed by ``(namespace, bubustack.io/storyrun label)``
  and by being ``Running`` (index :data:`RUNNING`, value ``True``); child StoryRuns by
  ``(namespace, bubustack.io/parent-storyrun label)``.
* :class:`Views` converts cached objects to the engine's frozen views, memoised per
  ``(uid, resourceVersion)`` so a run with hundreds of StepRuns does not re-convert
  unchanged children on every reconcile; one memo per StepRun cache, shared by both
  controllers.
* :class:`StoryModels` parses each Story once per ``metadata.generation`` (executeStory
  targets); the Story a run executes comes from :class:`StorySnapshots` (its recorded
  copy once started).
* :class:`RunCaches` bundles them for the two run controllers.
"""

from __future__ import annotations

import weakref
from collections.abc import Container, Hashable, Iterator, Mapping
from typing import Any, TypeVar, overload

from pydantic import ValidationError

from bobrapet.api import runmeta
from bobrapet.api.kinds import ENGRAM_TEMPLATE, STEP_RUN, STORY_RUN
from bobrapet.api.timestamps import parse_timestamp
from bobrapet.api.types.story import Story
from bobrapet.controllers import indexes
from bobrapet.controllers.refs import namespace_of
from bobrapet.controllers.story_snapshots import StorySnapshots
from bobrapet.engine import ChildRunView, StepRunView, compile_graph, compose_dns1123, is_waiting_for_capacity
from bobrapet.runtime.cache import ObjectCache
from bobrapet.runtime.manager import Manager
from bobrapet.store.client import Resource

LABEL_STORYRUN = runmeta.STORYRUN
LABEL_STORY = runmeta.STORY_NAME
LABEL_PARENT_RUN = runmeta.PARENT_STORYRUN
LABEL_PARENT_STEP = runmeta.PARENT_STEP
ANNOTATION_DEPTH = runmeta.DEPTH
ANNOTATION_CANCEL = runmeta.CANCEL_REQUESTED

BY_RUN = "by-run"
BY_PARENT = "by-parent"
#: StepRuns whose phase is Running, or claimed and waiting for an execution slot (capacity
#: counting without scanning every StepRun: admitted steps count against the limits).
RUNNING = "running"

_T = TypeVar("_T")


def labels_of(obj: Resource) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def annotations_of(obj: Resource) -> dict[str, str]:
    annotations = (obj.get("metadata") or {}).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def _run_of(step_run: Resource) -> list[Hashable]:
    run = runmeta.story_run_of(step_run)
    return [(namespace_of(step_run), run)] if run else []


def _parent_of(run: Resource) -> list[Hashable]:
    parent = runmeta.parent_run_of(run)
    return [(namespace_of(run), parent)] if parent else []


def _running(step_run: Resource) -> list[Hashable]:
    status = step_run.get("status") or {}
    return [True] if status.get("phase") == "Running" or is_waiting_for_capacity(status) else []


def step_runs(manager: Manager) -> ObjectCache:
    cache = manager.cache(STEP_RUN)
    cache.add_index(BY_RUN, _run_of)
    cache.add_index(RUNNING, _running)
    return cache


def story_runs(manager: Manager) -> ObjectCache:
    cache = manager.cache(STORY_RUN)
    cache.add_index(BY_PARENT, _parent_of)
    return cache


def ready_message(status: dict[str, Any]) -> str | None:
    for condition in status.get("conditions") or ():
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            message = condition.get("message")
            return str(message) if message else None
    return None


def step_run_view(obj: Resource) -> StepRunView:
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    reason: Any = None
    for condition in status.get("conditions") or ():
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            reason = condition.get("reason")  # the last Ready condition's reason
    return StepRunView(
        name=str(metadata.get("name")),
        step_id=str(spec.get("stepId")),
        parent_step=labels_of(obj).get(LABEL_PARENT_STEP),
        phase=status.get("phase"),
        message=ready_message(status) or status.get("lastFailureMsg"),
        reason=reason,
        output=status.get("output"),
        signals=status.get("signals"),
        started_at=parse_timestamp(status.get("startedAt")),
        finished_at=parse_timestamp(status.get("finishedAt")),
        retries=int(status.get("retries") or 0),
        deleting=bool(metadata.get("deletionTimestamp")),
        error=status.get("error"),
    )


def child_run_view(obj: Resource, parent_uid: str | None) -> ChildRunView:
    metadata = obj.get("metadata") or {}
    status = obj.get("status") or {}
    owners = metadata.get("ownerReferences") or ()
    owned = parent_uid is None or any(o.get("uid") == parent_uid for o in owners if isinstance(o, dict))
    return ChildRunView(
        name=str(metadata.get("name")),
        step=labels_of(obj).get(LABEL_PARENT_STEP, ""),
        phase=status.get("phase"),
        message=status.get("message"),
        output=status.get("output"),
        finished_at=parse_timestamp(status.get("finishedAt")),
        owned=owned,
        deleting=bool(metadata.get("deletionTimestamp")),
    )


class Views:
    """Engine views of cached StepRuns, memoised per (uid, resourceVersion).

    Views of StepRuns no longer in ``cache`` (deleted) are dropped whenever the memo has
    doubled since the last sweep, so memory follows the live StepRuns (amortised O(1)).
    One memo serves every reader of a cache (:meth:`of`): the StoryRun controller's plan
    and the StepRun controller's launch of the next step read the same StepRun versions.
    """

    @classmethod
    def of(cls, cache: ObjectCache) -> Views:
        """The shared views of ``cache`` (created on first use)."""
        views = _VIEWS.get(cache)
        if views is None:
            views = _VIEWS[cache] = cls(cache)
        return views

    MIN_SWEEP = 1024

    def __init__(self, cache: ObjectCache) -> None:
        self._cache = cache
        self._memo: dict[str, tuple[str, StepRunView]] = {}
        self._sweep_at = self.MIN_SWEEP

    def __len__(self) -> int:
        return len(self._memo)

    def step_run(self, obj: Resource) -> StepRunView:
        metadata = obj.get("metadata") or {}
        uid = str(metadata.get("uid"))
        version = str(metadata.get("resourceVersion"))
        hit = self._memo.get(uid)
        if hit is not None and hit[0] == version:
            return hit[1]
        view = step_run_view(obj)
        if hit is None and len(self._memo) >= self._sweep_at:
            self._sweep()
        self._memo[uid] = (version, view)
        return view

    def _sweep(self) -> None:
        live = {str((o.get("metadata") or {}).get("uid")) for o in self._cache.list()}
        self._memo = {uid: entry for uid, entry in self._memo.items() if uid in live}
        self._sweep_at = max(self.MIN_SWEEP, 2 * len(self._memo))

    def forget(self, uid: str) -> None:
        self._memo.pop(uid, None)

    def step_runs_of(self, cache: ObjectCache, namespace: str, run: str) -> dict[str, StepRunView]:
        views: dict[str, StepRunView] = {}
        for obj in cache.by_index(BY_RUN, (namespace, run)):
            view = self.step_run(obj)
            views[view.step_id] = view
        return views


_VIEWS: weakref.WeakKeyDictionary[ObjectCache, Views] = weakref.WeakKeyDictionary()


class StoryModels:
    """Parsed Stories, one parse per (namespace, name, generation)."""

    def __init__(self) -> None:
        self._memo: dict[tuple[str, str], tuple[Any, Story | None, str | None]] = {}

    def parse(self, obj: Resource | None) -> tuple[Story | None, str | None]:
        """(model, error): ``error`` explains why a stored Story could not be parsed."""
        if obj is None:
            return None, None
        metadata = obj.get("metadata") or {}
        key = (str(metadata.get("namespace") or ""), str(metadata.get("name")))
        stamp = (metadata.get("uid"), metadata.get("generation"))
        hit = self._memo.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1], hit[2]
        try:
            model: Story | None = Story.model_validate({k: v for k, v in obj.items() if k != "status"})
            error = None
        except ValidationError as exc:
            model, error = None, str(exc)
        self._memo[key] = (stamp, model, error)
        return model, error


class RunStepRuns(Mapping[str, StepRunView]):
    """The StepRuns of one run by ``spec.stepId``, looked up lazily.

    ``mapping[step]`` finds the StepRun by its deterministic name (``<run>-<step>``) without
    touching the run's other StepRuns, so a reconcile that reads a few steps costs the same
    in a run of 10 steps or 1000; iterating, or looking up a parallel branch (named after
    its parent step too), lists them all once.

    Invariant: a mapping answers from the caches as they were when it first looked a step up
    (each answer, found or missing, is kept): it serves one synchronous read of the world (a
    plan), like a :class:`dict` built from the caches at once would, only without building it.
    """

    def __init__(self, caches: RunCaches, namespace: str, run: str, branches: Container[str]) -> None:
        self._caches = caches
        self._namespace = namespace
        self._run = run
        self._branches = branches
        self._all: dict[str, StepRunView] | None = None
        #: step -> its view, or ``None`` when no StepRun has its name (looked up by name).
        self._found: dict[str, StepRunView | None] = {}

    def _everything(self) -> dict[str, StepRunView]:
        if self._all is None:
            self._all = self._caches.views.step_runs_of(self._caches.step_runs, self._namespace, self._run)
        return self._all

    def _lookup(self, step: str) -> StepRunView | None:
        if self._all is None and step not in self._branches:
            found = self._found
            if step in found:
                return found[step]
            obj = self._caches.step_runs.get(compose_dns1123(self._run, step), self._namespace)
            if obj is None:
                found[step] = None
                return None
            spec = obj.get("spec") or {}
            if spec.get("stepId") == step and runmeta.story_run_of(obj) == self._run:
                view = found[step] = self._caches.views.step_run(obj)
                return view
        return self._everything().get(step)

    def __getitem__(self, step: str) -> StepRunView:
        view = self._lookup(step)
        if view is None:
            raise KeyError(step)
        return view

    @overload
    def get(self, step: str, /) -> StepRunView | None: ...
    @overload
    def get(self, step: str, /, default: StepRunView | _T) -> StepRunView | _T: ...
    def get(self, step: str, /, default: Any = None) -> Any:
        """``mapping[step]``, or ``default`` (without raising and catching a KeyError)."""
        view = self._lookup(step)
        return default if view is None else view

    def __contains__(self, step: object) -> bool:
        return isinstance(step, str) and self._lookup(step) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._everything())

    def __len__(self) -> int:
        return len(self._everything())


class RunCaches:
    """The caches and memos the StoryRun and StepRun controllers both read."""

    def __init__(self, manager: Manager) -> None:
        self.step_runs = step_runs(manager)
        self.story_runs = story_runs(manager)
        self.stories = indexes.stories(manager)
        self.engrams = indexes.engrams(manager)
        self.templates = manager.cache(ENGRAM_TEMPLATE)
        self.views = Views.of(self.step_runs)
        self.models = StoryModels()
        self.snapshots = StorySnapshots(manager.client, self.stories)

    def story_of(self, run: Resource) -> tuple[str, str, Story | None]:
        """(namespace, name, parsed Story or ``None``) of the run's ``spec.storyRef``, without I/O.

        The run's recorded copy when it is in memory, else the current Story: use it for
        estimates only; execution reads :meth:`StorySnapshots.of_run` / ``of_step_run``.
        """
        found = self.snapshots.cached(run)
        return found.namespace, found.name, found.story

    def step_runs_of(self, run: Resource, story: Story | None) -> Mapping[str, StepRunView]:
        branches = compile_graph(story).branch_owner if story is not None else frozenset()
        return RunStepRuns(self, namespace_of(run), str(run["metadata"]["name"]), branches)

    def child_runs_of(self, run: Resource) -> dict[str, ChildRunView]:
        """executeStory children of ``run`` by parent step."""
        metadata = run["metadata"]
        children: dict[str, ChildRunView] = {}
        for child in self.story_runs.by_index(BY_PARENT, (namespace_of(run), metadata["name"])):
            view = child_run_view(child, metadata.get("uid"))
            children[view.step] = view
        return children
