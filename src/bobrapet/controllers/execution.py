"""What the run controllers need to execute steps in this process's engine.

An :class:`ExecutionEnv` exists only in engine processes (``bobrapet run``/``wait``);
commands that merely write objects (``apply``) register no run controllers. Controllers see
the executor through the :class:`~bobrapet.executors.protocol.Executor` protocol only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bobrapet.controllers.scope import RunScope
from bobrapet.engine import EngineConfig
from bobrapet.executors.logpath import LOG_DIR, inputs_log_path, step_log_path
from bobrapet.executors.protocol import Executor
from bobrapet.runtime.lease import EngineLease

__all__ = ["LEASE_DIR", "LOG_DIR", "ExecutionEnv"]

LEASE_DIR = "engines"
#: ``(home, namespace) -> <home>/logs/<namespace>`` and ``(home, namespace, run) -> inputs log``:
#: the paths of :func:`step_log_path`/:func:`inputs_log_path`, joined once (a ``pathlib`` join
#: costs more than the rest of computing a launch's paths); forgotten all at once when full.
_log_dirs: dict[tuple[Path, str], Path] = {}
_inputs_logs: dict[tuple[Path, str, str], Path] = {}
_PATH_MEMO: Final = 1024


@dataclass
class ExecutionEnv:
    #: Runs the attempts (the local worker pool, or any other :class:`Executor`).
    executor: Executor
    lease: EngineLease
    #: The home directory: step logs live under ``<home>/logs/<namespace>/<steprun>.log``.
    home: Path
    #: Working directory of engrams (the engine's current directory).
    workdir: Path
    config: EngineConfig = field(default_factory=EngineConfig)
    #: The runs this engine drives (None: every run of the home), see :mod:`.scope`.
    scope: RunScope | None = None

    @property
    def lease_dir(self) -> Path:
        return self.home / LEASE_DIR

    def log_path(self, namespace: str, step_run: str) -> Path:
        """:func:`step_log_path` of ``step_run`` (its directory joined once per namespace)."""
        key = (self.home, namespace)
        directory = _log_dirs.get(key)
        if directory is None:
            if len(_log_dirs) >= _PATH_MEMO:
                _log_dirs.clear()
            directory = _log_dirs[key] = step_log_path(self.home, namespace, "_").parent
        return directory / f"{step_run}.log"

    def inputs_log_path(self, namespace: str, story_run: str) -> Path:
        """:func:`inputs_log_path` of ``story_run`` (remembered: a run's steps share it)."""
        key = (self.home, namespace, story_run)
        path = _inputs_logs.get(key)
        if path is None:
            if len(_inputs_logs) >= _PATH_MEMO:
                _inputs_logs.clear()
            path = _inputs_logs[key] = inputs_log_path(self.home, namespace, story_run)
        return path
