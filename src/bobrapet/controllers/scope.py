"""Which runs an engine process drives: all of the home, or a chosen set of root runs.

``bobrapet run`` and ``bobrapet wait RUN`` drive only their own runs (and the StepRuns and
child runs of those); ``bobrapet wait --all`` drives every run of the home. An engine that
drove unrelated runs would start their steps and then exit when its own run ended,
leaving them ``Running`` with no engine; with a scope they are left exactly as they were.

Invariants:

* a run belongs to the scope when its root run (followed through the
  ``bubustack.io/parent-storyrun`` labels, same namespace) is one of :attr:`RunScope.roots`;
  a StepRun when the run of its ``bubustack.io/storyrun`` label does;
* finished runs (terminal, no redrive pending) are always admitted: reconciling them only
  cleans up (TTL, retention), it never starts work;
* membership is ``None`` (unknown) while an ancestor is not in the cache yet: the caller
  requeues instead of deciding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bobrapet.api import runmeta
from bobrapet.api.phases import is_terminal_phase
from bobrapet.api.runmeta import redrive_pending
from bobrapet.runtime.cache import ObjectCache
from bobrapet.store.client import Resource

#: How deep parent chains are followed (executeStory nesting is far shallower).
MAX_DEPTH = 64
#: How soon a request whose ancestry is not cached yet is looked at again.
UNKNOWN_RETRY = 1.0


def _labels(obj: Resource) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def _namespace(obj: Resource) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "default")


def finished(run: Resource) -> bool:
    """Terminal, and no redrive waiting to reopen it."""
    status = run.get("status") or {}
    return is_terminal_phase(status.get("phase")) and not redrive_pending(run)


@dataclass(frozen=True)
class RunScope:
    """The ``(namespace, name)`` of the root StoryRuns an engine drives."""

    roots: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, runs: Iterable[tuple[str, str]]) -> RunScope:
        return cls(frozenset((ns or "default", name) for ns, name in runs))

    def _root_in_scope(self, namespace: str, name: str, story_runs: ObjectCache) -> bool | None:
        for _ in range(MAX_DEPTH):
            if (namespace, name) in self.roots:
                return True
            run = story_runs.get(name, namespace)
            if run is None:
                return None
            parent = runmeta.parent_run_of(run)
            if not parent:
                return False
            name = parent
        return False

    def admits_run(self, run: Resource, story_runs: ObjectCache) -> bool | None:
        """Whether this engine reconciles StoryRun ``run`` (None: ask again soon)."""
        if finished(run):
            return True
        name = str((run.get("metadata") or {}).get("name") or "")
        return self._root_in_scope(_namespace(run), name, story_runs)

    def admits_step_run(self, step_run: Resource, story_runs: ObjectCache) -> bool | None:
        """Whether this engine launches or takes over StepRun ``step_run`` (None: ask again soon)."""
        run = runmeta.story_run_of(step_run)
        if not run:
            return False
        return self._root_in_scope(_namespace(step_run), run, story_runs)
