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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from bobrapet.api.kinds import STORY, STORY_RUN
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
from bobrapet.host.runs_view import PROGRESS_INTERVAL, RunsView, is_terminal
from bobrapet.host.storage import resolve_storage, run_inputs_offload, submission_offload
from bobrapet.runtime.foreground import Foreground
from bobrapet.runtime.lease import EngineLease
from bobrapet.runtime.manager import Manager

__all__ = [
    "LOG_DIR",
    "MAX_STEPS_VARIABLE",
    "PROGRESS_INTERVAL",
    "SLOTS_VARIABLE",
    "EngineHost",
    "default_workers",
    "is_terminal",
    "limit_from_env",
]


class EngineHost(RunsView):
    """Async context manager running the engine on ``plane`` until exit."""

    by_run_index = runs.BY_RUN

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
        foreground: Foreground | None = None,
    ) -> None:
        super().__init__()
        self.plane = plane
        #: Work (serve's HTTP intake) the engine's reconciles yield to while it is busy.
        self.foreground = foreground
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
        self.executor: Executor | None = None
        self.lease: EngineLease | None = None

    async def __aenter__(self) -> EngineHost:
        client = self.plane.client
        home = self.plane.home
        self.lease = EngineLease(home / "engines")
        self.lease.acquire()
        self.executor = self.executor_factory()
        await self.executor.start()
        inline_inputs = self.plane.config.storyrun_max_inline_inputs
        env = ExecutionEnv(
            executor=self.executor,
            lease=self.lease,
            home=home,
            workdir=self.workdir,
            config=self.config,
            scope=self.scope,
            trigger_offload=submission_offload(self.config.storage, inline_inputs),
        )
        # What every run needs (its Story is parsed, runs are admitted) is built before the
        # engine reports ready, not inside the first run.
        for kind in (STORY, STORY_RUN):
            kind.build_model()
        self.manager = Manager(client, settle=0.05, foreground=self.foreground)
        setup_all(
            self.manager, execution=env, offload_inputs=run_inputs_offload(self.config.storage, inline_inputs)
        )
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

    async def stop(self, *, drain: float = 0.0) -> None:
        """Leave now (as on exit), or after letting running steps finish for up to ``drain``
        seconds: the controllers stop first, so no new step starts meanwhile."""
        await self._close(drain)

    async def _close(self, drain: float = 0.0) -> None:
        if self.manager is not None:
            if self.manager.started:
                # Stops the controllers, then the attempt runner (a runnable): local attempts
                # still running after ``drain`` are canceled, their StepRuns stay claimed until
                # another engine takes over.
                await self.manager.stop(grace=1.0, drain=drain)
            self.manager = None
        if self.executor is not None:
            await self.executor.close()
            self.executor = None
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    def drives(self, run: dict[str, Any]) -> bool:
        """Whether this engine drives ``run`` (its scope holds the run's root)."""
        if self.scope is None:
            return True
        assert self._story_runs is not None
        return bool(self.scope.admits_run(run, self._story_runs))

    def queued_runs(self) -> int:
        """Runs this engine holds with steps queued by a concurrency limit."""
        assert self.manager is not None
        reconciler = self.manager.controller(storyrun.NAME).reconciler
        return len(reconciler.queued) if isinstance(reconciler, storyrun.StoryRunReconciler) else 0

    def active_steps(self) -> int:
        """StepRuns running, or claimed and waiting for a slot (every engine's, from the cache)."""
        assert self._step_runs is not None
        return len(self._step_runs.by_index(runs.RUNNING, True))
