"""What a process following runs reads: a home's StoryRuns and StepRuns, cached by a manager.

Both an engine (:class:`~bobrapet.host.engine_host.EngineHost`, which drives the runs) and a
follower (:class:`~bobrapet.host.follower.RunFollower`, which watches runs a ``bobrapet
serve`` drives) are a :class:`RunsView`: progress views and ``wait`` read the same caches
either way. The caches are current with the store's watch; reads never touch the store.

This module is light on purpose (no engine, no controllers): a follower starts fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import STORY_RUN
from bobrapet.api.runmeta import STORYRUN, redrive_pending
from bobrapet.api.types.enums import TERMINAL_PHASES
from bobrapet.runtime.cache import ObjectCache
from bobrapet.runtime.manager import Manager
from bobrapet.store.client import Client, Resource

#: How often a progress callback may look at a run's StepRuns.
PROGRESS_INTERVAL = 0.05


def is_terminal(run: dict[str, Any] | None) -> bool:
    """Finished, and no redrive waiting to reopen it."""
    status = (run or {}).get("status") or {}
    if status.get("phase") not in TERMINAL_PHASES or not status.get("finishedAt"):
        return False
    return not redrive_pending(run or {})


def steps_of_run(step_run: Resource) -> list[Hashable]:
    """Index function: ``(namespace, run)`` of a StepRun, from its run label."""
    metadata = step_run.get("metadata") or {}
    run = (metadata.get("labels") or {}).get(STORYRUN)
    return [(str(metadata.get("namespace") or ""), run)] if run else []


class RunsView:
    """Reads of the cached runs; subclasses set :attr:`manager` and the two caches when they start."""

    #: The cache index of StepRuns by ``(namespace, run)`` (see :func:`steps_of_run`).
    by_run_index = "by-run"

    def __init__(self) -> None:
        self.manager: Manager | None = None
        self._step_runs: ObjectCache | None = None
        self._story_runs: ObjectCache | None = None

    @property
    def client(self) -> Client:
        assert self.manager is not None
        return self.manager.client

    def run(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The cached StoryRun (``None`` when unknown)."""
        assert self._story_runs is not None
        return self._story_runs.get(name, namespace)

    def unfinished_runs(self) -> list[dict[str, Any]]:
        """Every StoryRun of the home that has not finished (driven by this process or not)."""
        assert self._story_runs is not None
        return [r for r in self._story_runs.list() if not is_terminal(r)]

    def drives(self, run: dict[str, Any]) -> bool:
        """Whether ``run`` is driven while this view follows it."""
        return True

    def step_runs(self, namespace: str, run: str) -> list[dict[str, Any]]:
        """The run's StepRuns, from the cache."""
        assert self._step_runs is not None
        return list(self._step_runs.by_index(self.by_run_index, (namespace, run)))

    async def run_until(self, done: Callable[[], bool], *, timeout: float | None = None) -> bool:
        """Wait until ``done()`` is true (False when ``timeout`` passed first)."""
        assert self.manager is not None
        return await self.manager.run_until(done, timeout=timeout)

    async def wait_for_run(
        self,
        namespace: str,
        name: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Wait until run ``name`` is terminal; return its final object.

        ``on_update`` is called with the run whenever it or one of its StepRuns changed (at
        most every :data:`PROGRESS_INTERVAL` seconds, and once at the end).
        """
        if self.run(namespace, name) is None:
            await self.client.get(STORY_RUN, name, namespace)  # raises NotFound
        seen: list[Any] = [None]
        cached = [False]
        checked = [-PROGRESS_INTERVAL]

        def done() -> bool:
            run = self.run(namespace, name)
            if run is None:
                if cached[0]:  # it was there: deleted while we waited
                    raise NotFound("storyruns", name, "runs.bubustack.io")
                return False  # created just now; the cache has not seen it yet
            cached[0] = True
            finished = is_terminal(run)
            # Looking at every StepRun costs O(steps): at most every PROGRESS_INTERVAL.
            if on_update is not None and (finished or time.monotonic() - checked[0] >= PROGRESS_INTERVAL):
                checked[0] = time.monotonic()
                stamp = (
                    (run.get("metadata") or {}).get("resourceVersion"),
                    tuple(
                        (s.get("metadata") or {}).get("resourceVersion")
                        for s in self.step_runs(namespace, name)
                    ),
                )
                if stamp != seen[0]:
                    seen[0] = stamp
                    on_update(run)
            return finished

        if not await self.run_until(done, timeout=timeout):
            raise TimeoutError(f"run {name} did not finish within {timeout} s")
        final = self.run(namespace, name)
        assert final is not None
        return final
