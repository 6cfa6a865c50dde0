"""What the run controllers need to execute steps in this process's engine.

An :class:`ExecutionEnv` exists only in engine processes (``bobrapet run``/``wait``);
commands that merely write objects (``apply``) register no run controllers. Controllers see
the executor through the :class:`~bobrapet.executors.protocol.Executor` protocol only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bobrapet.controllers.scope import RunScope
from bobrapet.engine import EngineConfig
from bobrapet.executors.logpath import LOG_DIR, inputs_log_path, step_log_path
from bobrapet.executors.protocol import Executor
from bobrapet.runtime.lease import EngineLease

if TYPE_CHECKING:
    from bobrapet.triggers import OffloadInputs

__all__ = ["LEASE_DIR", "LOG_DIR", "ExecutionEnv"]

LEASE_DIR = "engines"


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
    #: Moves the oversized inputs of a step's ``ctx.trigger_story`` to storage before the
    #: trigger is stored (None: storage disabled; the StoryTrigger controller then rejects them).
    trigger_offload: OffloadInputs | None = None

    @property
    def lease_dir(self) -> Path:
        return self.home / LEASE_DIR

    def log_path(self, namespace: str, step_run: str) -> Path:
        return step_log_path(self.home, namespace, step_run)

    def inputs_log_path(self, namespace: str, story_run: str) -> Path:
        return inputs_log_path(self.home, namespace, story_run)
