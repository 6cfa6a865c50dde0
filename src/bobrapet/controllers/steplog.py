"""A step's log file and the record of the inputs each attempt received.

Files (``<log>`` is ``<home>/logs/<namespace>/<steprun>.log``, see
:meth:`~bobrapet.controllers.execution.ExecutionEnv.log_path`):

* ``<log>``: the step's stdout/stderr, appended by every attempt. Before an attempt's
  code runs, the engine appends one header line ``=== attempt N (<UTC time>) ===``; N is
  ``status.retries + 1``, so a redrive (which recreates the StepRun) starts a new
  section at ``attempt 1`` below the earlier ones.
* ``<log>.inputs.json``: the resolved inputs of the latest attempt — what the engram
  received after templates, defaults and schema were applied — with secrets redacted.
  StepRun status has no field for them and they must not bloat the StoryRun, so they live
  beside the log; ``bobrapet describe steprun`` previews them.

Redaction (invariant: no secret value is ever written to the inputs file): every value
under a key named like a logical secret of the template's ``secretSchema`` or one of its
``expectedKeys`` becomes ``<redacted>``, and so does every string containing one of the
``secret_values`` the launcher passes (the values it delivers to the step; empty when
it delivers none). Deleting a run deletes both files of each of its StepRuns
(:func:`remove_step_logs`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REDACTED = "<redacted>"
INPUTS_SUFFIX = ".inputs.json"


def inputs_path(log_path: Path) -> Path:
    return log_path.with_name(log_path.name + INPUTS_SUFFIX)


def _stamp(at: datetime) -> str:
    """``2026-05-01T12:00:00.123Z`` (always milliseconds)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def attempt_header(attempt: int, at: datetime) -> str:
    """``=== attempt 2 (2026-05-01T12:00:00.123Z) ===`` plus a newline."""
    return f"=== attempt {attempt} ({_stamp(at)}) ===\n"


def secret_keys(template: Mapping[str, Any] | None) -> frozenset[str]:
    """Logical secret names and expected keys of an EngramTemplate's ``spec.secretSchema``."""
    schema = ((template or {}).get("spec") or {}).get("secretSchema")
    names: set[str] = set()
    if isinstance(schema, Mapping):
        for logical, definition in schema.items():
            names.add(str(logical))
            keys = definition.get("expectedKeys") if isinstance(definition, Mapping) else None
            names.update(str(k) for k in keys or () if isinstance(keys, list))
    return frozenset(names)


def redact(value: Any, keys: Collection[str], secret_values: Collection[str] = ()) -> Any:
    """``value`` with secrets replaced by ``<redacted>`` (see the module docstring)."""
    needles = [v for v in secret_values if v]
    if isinstance(value, Mapping):
        return {str(k): REDACTED if str(k) in keys else redact(v, keys, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, keys, needles) for v in value]
    if isinstance(value, str) and any(n in value for n in needles):
        return REDACTED
    return value


def begin_attempt(
    log_path: Path,
    *,
    attempt: int,
    at: datetime,
    inputs: Mapping[str, Any],
    template: Mapping[str, Any] | None = None,
    secret_values: Collection[str] = (),
) -> None:
    """Append the attempt header to the log and record the (redacted) inputs beside it.

    Best effort: a full disk must not fail the step, whose own output would fail anyway.
    """
    with contextlib.suppress(OSError):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, attempt_header(attempt, at).encode())
        finally:
            os.close(fd)
        record = {
            "attempt": attempt,
            "at": _stamp(at),
            "inputs": redact(dict(inputs), secret_keys(template), secret_values),
        }
        target = inputs_path(log_path)
        partial = target.with_name(target.name + ".tmp")
        partial.write_text(json.dumps(record, ensure_ascii=False, default=str), encoding="utf-8")
        os.replace(partial, target)


def read_inputs(log_path: Path) -> dict[str, Any] | None:
    """The inputs record of the step's latest attempt, or None when there is none."""
    try:
        data = json.loads(inputs_path(log_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_step_logs(log_paths: Iterable[Path]) -> int:
    """Delete each log and its inputs record; returns how many files were removed."""
    removed = 0
    for path in log_paths:
        for target in (path, inputs_path(path)):
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
                removed += 1
    return removed
