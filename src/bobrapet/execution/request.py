"""What the engine asks an executor to run, and what comes back (the executor seam's data).

It lives in :mod:`bobrapet.execution` (below the engine and the executors) so the pure engine
can build requests and read results without importing :mod:`bobrapet.executors`;
``bobrapet.execution.request`` re-exports it.

Invariants: an ``ExecutionRequest`` has exactly one of ``entrypoint``/``command``;
``ExecutionResult.error`` is a StructuredError v1 wire dict (§9.3) or None on success;
``exit_code`` is 0 ok, 1 error, 124 timeout, 128+N killed by signal N, -1 unknown.
``build_env`` yields only strings (the §8.3 identity/execution ``BUBU_*`` variables; with
``extra=storage_env(...)`` the §7.5 storage variables too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from bobrapet.api.durations import format_duration
from bobrapet.api.timestamps import format_timestamp
from bobrapet.execution.effects import StepEffects
from bobrapet.execution.secrets import StepSecrets
from bobrapet.execution.triggers import StepTriggers
from bobrapet.storage.settings import StorageSettings

#: ``Canceled`` is recorded for an attempt stopped before it ran; the executor itself reports
#: a killed attempt as ``Failed`` (code ``Canceled``).
Phase = Literal["Succeeded", "Failed", "Timeout", "Canceled"]


@dataclass(frozen=True)
class ExecutionRequest:
    """One attempt of one Engram step."""

    key: str
    entrypoint: str | None
    command: list[str] | None
    inputs: dict[str, Any]
    config: dict[str, Any]
    env: dict[str, str]
    timeout: float
    log_path: Path
    workdir: Path
    debug: bool = False
    #: Secret env vars, files and ``ctx.secrets`` (never shown by ``repr``).
    secrets: StepSecrets = field(default_factory=StepSecrets, repr=False)
    #: Appended to the step log by the executor before the attempt's code runs.
    log_header: str = ""
    #: One JSON object (no newline) the executor appends as a line to ``inputs_log`` when
    #: the attempt starts: its resolved, redacted inputs (None: write nothing).
    inputs_record: str | None = field(default=None, repr=False)
    #: The run's inputs log (:func:`bobrapet.executors.logpath.inputs_log_path`).
    inputs_log: Path | None = None
    #: Where the attempt's ``ctx.effect_once`` claims are kept (None: not available).
    effects: StepEffects | None = field(default=None, repr=False, compare=False)
    #: Where the attempt's ``ctx.trigger_story`` calls go (None: not available).
    triggers: StepTriggers | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.entrypoint is None) == (self.command is None):
            raise ValueError(f"{self.key}: exactly one of entrypoint and command must be set")
        if self.command is not None and not self.command:
            raise ValueError(f"{self.key}: command must not be empty")
        if self.timeout <= 0:
            raise ValueError(f"{self.key}: timeout must be positive, got {self.timeout}")


@dataclass(frozen=True)
class ExecutionResult:
    """The outcome of one attempt."""

    phase: Phase
    output: Any
    exit_code: int
    exit_class: str | None
    error: dict[str, Any] | None
    message: str | None
    signals: list[dict[str, Any]]
    started_at: datetime
    finished_at: datetime


def rfc3339_nano(moment: datetime) -> str:
    """``2024-05-01T10:00:00.123456Z`` (UTC; naive datetimes are taken as UTC)."""
    return format_timestamp(moment, "us")


@lru_cache(maxsize=256)
def _timeout_text(seconds: float) -> str:
    """``BUBU_STEP_TIMEOUT`` of ``seconds`` (a handful of distinct timeouts: memoised)."""
    return format_duration(timedelta(seconds=seconds))


@lru_cache(maxsize=16)
def storage_env(settings: StorageSettings) -> Mapping[str, str]:
    """The ``BUBU_STORAGE_*`` variables of a step (reference §7.5; never credentials: a step's
    process gets those from its own environment). Shared: do not modify."""
    return settings.to_env()


def build_env(
    *,
    story: str,
    story_version: str | None,
    story_run: str,
    step: str,
    step_run: str,
    namespace: str,
    engram: str,
    engram_version: str | None,
    started_at: datetime,
    timeout: float,
    debug: bool,
    max_inline_size: int,
    extra: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, str]:
    """The ``BUBU_*`` identity and execution variables of reference §8.3 (batch mode).

    Plus ``BUBU_IDEMPOTENCY_KEY`` (the StepRun's ``spec.idempotencyKey``, when it has one): a
    Bobrapet addition — §8.3 has no such variable — so command engrams see the key Python
    engrams get as ``ctx.idempotency_key``.
    """
    env = {
        "BUBU_STORY_NAME": story,
        "BUBU_STORYRUN_ID": story_run,
        "BUBU_STEP_NAME": step,
        "BUBU_STEPRUN_NAME": step_run,
        "BUBU_STEPRUN_NAMESPACE": namespace,
        "BUBU_ENGRAM_NAME": engram,
        "BUBU_STARTED_AT": rfc3339_nano(started_at),
        "BUBU_EXECUTION_MODE": "batch",
        "BUBU_HYBRID_BRIDGE": "false",
        "BUBU_MAX_INLINE_SIZE": str(max_inline_size),
        "BUBU_STEP_TIMEOUT": _timeout_text(timeout),
        "BUBU_DEBUG": "true" if debug else "false",
    }
    if story_version:
        env["BUBU_STORY_VERSION"] = story_version
    if engram_version:
        env["BUBU_ENGRAM_VERSION"] = engram_version
    if idempotency_key:
        env["BUBU_IDEMPOTENCY_KEY"] = idempotency_key
    if extra:
        env.update(extra)
    return env
