"""The engine process: a lease, a warm local worker pool and every controller on one home.

An engine process drives the runs of its ``scope`` (``bobrapet run`` and ``bobrapet wait
RUN``: their own runs and those runs' children) or, without a scope (``bobrapet wait
--all``), every non-terminal run of the home. Several processes may drive runs at once:
StepRun attempts are claimed with compare-and-swap writes and an engine's lease (an
``flock`` held for its lifetime) tells the others when its claimed work must be taken over.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import STORY, STORY_RUN
from bobrapet.api.runmeta import redrive_pending
from bobrapet.api.types.enums import TERMINAL_PHASES
from bobrapet.controllers import runs, storyrun
from bobrapet.controllers.execution import LOG_DIR, ExecutionEnv
from bobrapet.controllers.registry import setup_all
from bobrapet.controllers.scope import RunScope
from bobrapet.engine.config import EngineConfig
from bobrapet.executors.local.executor import DEFAULT_MAX_STEPS, DEFAULT_SLOTS_PER_WORKER
from bobrapet.executors.protocol import Executor
from bobrapet.host.config_file import load as load_config
from bobrapet.host.embedded import ControlPlane
from bobrapet.host.pool import (
    MAX_STEPS_VARIABLE,
    SLOTS_VARIABLE,
    default_workers,
    limit_from_env,
    local_executor,
)
from bobrapet.host.storage import resolve_storage
from bobrapet.runtime.cache import ObjectCache
from bobrapet.runtime.lease import EngineLease
from bobrapet.runtime.manager import Manager

__all__ = [
    "LOG_DIR",
    "MAX_STEPS_VARIABLE",
    "SLOTS_VARIABLE",
    "EngineHost",
    "default_workers",
    "is_terminal",
    "limit_from_env",
]


#: How often a progress callback may look at a run's StepRuns.
PROGRESS_INTERVAL = 0.05


def is_terminal(run: dict[str, Any] | None) -> bool:
    """Finished, and no redrive waiting to reopen it."""
    status = (run or {}).get("status") or {}
    if status.get("phase") not in TERMINAL_PHASES or not status.get("finishedAt"):
        return False
    return not redrive_pending(run or {})


class EngineHost:
    """Async context manager running the engine on ``plane`` until exit."""

    def __init__(
        self,
        plane: ControlPlane,
        *,
        workers: int | None = None,
        config: EngineConfig | None = None,
        workdir: Path | None = None,
        scope: RunScope | None = None,
        slots_per_worker: int | None = None,
        max_steps: int | None = None,
        executor_factory: Callable[[], Executor] | None = None,
    ) -> None:
        self.plane = plane
        self.scope = scope
        self.workers = workers or default_workers()
        #: Steps one worker runs at once / steps running at once in this engine.
        self.slots_per_worker = slots_per_worker or limit_from_env(SLOTS_VARIABLE, DEFAULT_SLOTS_PER_WORKER)
        self.max_steps = max_steps or limit_from_env(MAX_STEPS_VARIABLE, DEFAULT_MAX_STEPS)
        config = config or load_config(plane.home).engine  # <home>/config.yaml, or the defaults
        #: Storage resolved against the home and the environment (reference §7.5).
        self.config = replace(config, storage=resolve_storage(config.storage, plane.home, os.environ))
        self.workdir = workdir or Path.cwd()
        #: Builds the executor (default: the local worker pool, :meth:`local_executor`).
        self.executor_factory = executor_factory or self.local_executor
        self.manager: Manager | None = None
        self.executor: Executor | None = None
        self.lease: EngineLease | None = None
        self._step_runs: ObjectCache | None = None
        self._story_runs: ObjectCache | None = None

    async def __aenter__(self) -> EngineHost:
        client = self.plane.client
        home = self.plane.home
        self.lease = EngineLease(home / "engines")
        self.lease.acquire()
        self.executor = self.executor_factory()
        await self.executor.start()
        env = ExecutionEnv(
            executor=self.executor,
            lease=self.lease,
            home=home,
            workdir=self.workdir,
            config=self.config,
            scope=self.scope,
        )
        # What every run needs (its Story is parsed, runs are admitted) is built before the
        # engine reports ready, not inside the first run.
        for kind in (STORY, STORY_RUN):
            kind.build_model()
        self.manager = Manager(client, settle=0.05)
        setup_all(self.manager, execution=env)
        self._step_runs = runs.step_runs(self.manager)
        self._story_runs = runs.story_runs(self.manager)
        try:
            await self.manager.start()
        except BaseException:
            await self._close()
            raise
        self._prepare()
        return self

    def _prepare(self) -> None:
        """One-time work of a run moved before ready: full admission (runs this engine
        creates or is handed are admitted in this process) and every known Story parsed
        and compiled (memoised per Story content)."""
        importlib.import_module("bobrapet.api.admission.pipeline")
        assert self.manager is not None
        reconciler = self.manager.controller(storyrun.NAME).reconciler
        if isinstance(reconciler, storyrun.StoryRunReconciler):
            reconciler.prepare_stories()

    def local_executor(self) -> Executor:
        """The warm local worker pool sized by this host's limits."""
        return local_executor(self.workers, self.workdir, self.slots_per_worker, self.max_steps)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        if self.manager is not None:
            if self.manager.started:
                # Stops the controllers, then the attempt runner (a runnable): local attempts
                # are canceled, their StepRuns stay claimed until another engine takes over.
                await self.manager.stop(grace=1.0)
            self.manager = None
        if self.executor is not None:
            await self.executor.close()
            self.executor = None
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    def run(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The cached StoryRun (``None`` when unknown)."""
        assert self._story_runs is not None
        return self._story_runs.get(name, namespace)

    def unfinished_runs(self) -> list[dict[str, Any]]:
        """Every StoryRun of the home that has not finished (in this engine's scope or not)."""
        assert self._story_runs is not None
        return [r for r in self._story_runs.list() if not is_terminal(r)]

    def drives(self, run: dict[str, Any]) -> bool:
        """Whether this engine drives ``run`` (its scope holds the run's root)."""
        if self.scope is None:
            return True
        assert self._story_runs is not None
        return bool(self.scope.admits_run(run, self._story_runs))

    async def run_until(self, done: Callable[[], bool], *, timeout: float | None = None) -> bool:
        """Drive the engine until ``done()`` is true (False when ``timeout`` passed first)."""
        assert self.manager is not None
        return await self.manager.run_until(done, timeout=timeout)

    def step_runs(self, namespace: str, run: str) -> list[dict[str, Any]]:
        """The run's StepRuns, from the engine's cache."""
        assert self._step_runs is not None
        return list(self._step_runs.by_index(runs.BY_RUN, (namespace, run)))

    async def wait_for_run(
        self,
        namespace: str,
        name: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Drive the home until run ``name`` is terminal; return its final object."""
        assert self.manager is not None
        if self.run(namespace, name) is None:
            await self.plane.client.get(STORY_RUN, name, namespace)  # raises NotFound
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

        if not await self.manager.run_until(done, timeout=timeout):
            raise TimeoutError(f"run {name} did not finish within {timeout} s")
        final = self.run(namespace, name)
        assert final is not None
        return final
