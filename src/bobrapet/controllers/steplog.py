"""A step's log file and the record of the inputs each attempt received.

Files (``<log>`` is ``<home>/logs/<namespace>/<steprun>.log``, see
:meth:`~bobrapet.controllers.execution.ExecutionEnv.log_path`):

* ``<log>``: the step's stdout/stderr, appended by every attempt. Before an attempt's
  code runs, the executor appends one header line ``=== attempt N (<UTC time>) ===``
  (:func:`attempt_header`); N is ``status.retries + 1``, so a redrive (which recreates the
  StepRun) starts a new section at ``attempt 1`` below the earlier ones.
* ``<run>.inputs.jsonl`` (the run's inputs log, beside its steps' logs): one line per
  attempt (:func:`inputs_record`, appended by the executor) with the resolved inputs —
  what the engram received after templates, defaults and schema were applied — with
  secrets redacted. StepRun status has no field for them and they must not bloat the
  StoryRun, so they live beside the logs; ``bobrapet describe steprun`` previews the
  latest line of the StepRun (:func:`read_inputs`).

Redaction (invariant: no secret value is ever written to the inputs file): every value
under a key named like a logical secret of the template's ``secretSchema`` or one of its
``expectedKeys`` becomes ``<redacted>``, and so does every string containing one of the
``secret_values`` the launcher passes (the values it delivers to the step; empty when
it delivers none). Deleting a run deletes its inputs log and its StepRuns' logs, and those of
its child runs (:func:`run_logs`, :func:`remove_step_logs`): ``bobrapet delete`` does, and so
does the engine when it deletes finished StepRuns or runs (child TTL, retention); logs whose
run was deleted otherwise (the HTTP API, a crash in between) are removed by the engine's
clean-up (:mod:`bobrapet.controllers.leftovers`, listing them with :func:`log_files`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from bobrapet.api import runmeta
from bobrapet.api.kinds import STEP_RUN, STORY_RUN
from bobrapet.api.timestamps import format_timestamp
from bobrapet.executors.logpath import LOG_DIR, inputs_log_path, step_log_path
from bobrapet.store.client import Client

REDACTED = "<redacted>"

#: ``json.dumps(..., ensure_ascii=False, default=str)`` without building an encoder per call.
_RECORD_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, default=str)
#: ``id(template) -> (template, secret_keys(template))`` (the template is kept, so its id is not reused).
_secret_keys_memo: dict[int, tuple[Mapping[str, Any], frozenset[str]]] = {}
_SECRET_KEYS_MEMO: Final = 256


def _stamp(at: datetime) -> str:
    """``2026-05-01T12:00:00.123Z`` (always milliseconds, truncated)."""
    return format_timestamp(at, "us")[:-4] + "Z"


def attempt_header(attempt: int, at: datetime) -> str:
    """``=== attempt 2 (2026-05-01T12:00:00.123Z) ===`` plus a newline."""
    return f"=== attempt {attempt} ({_stamp(at)}) ===\n"


def secret_keys(template: Mapping[str, Any] | None) -> frozenset[str]:
    """Logical secret names and expected keys of an EngramTemplate's ``spec.secretSchema``.

    Memoised per template object (cached objects are never mutated: an update is a new object).
    """
    if template is None:
        return frozenset()
    hit = _secret_keys_memo.get(id(template))
    if hit is not None and hit[0] is template:
        return hit[1]
    keys = _secret_keys(template)
    if len(_secret_keys_memo) >= _SECRET_KEYS_MEMO:
        _secret_keys_memo.clear()
    _secret_keys_memo[id(template)] = (template, keys)
    return keys


def _secret_keys(template: Mapping[str, Any] | None) -> frozenset[str]:
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
    kind = type(value)  # exact JSON types first: the ABC check costs more than the rest
    if kind is str:
        return REDACTED if any(n in value for n in needles) else value
    if kind is dict or (kind is not list and isinstance(value, Mapping)):
        return {str(k): REDACTED if str(k) in keys else redact(v, keys, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, keys, needles) for v in value]
    if isinstance(value, str) and any(n in value for n in needles):
        return REDACTED
    return value


def inputs_record(
    *,
    step_run: str,
    attempt: int,
    at: datetime,
    inputs: Mapping[str, Any],
    template: Mapping[str, Any] | None = None,
    secret_values: Collection[str] = (),
) -> str:
    """An attempt's line of the run's inputs log (JSON text, secrets redacted)."""
    record = {
        "stepRun": step_run,
        "attempt": attempt,
        "at": _stamp(at),
        "inputs": redact(inputs, secret_keys(template), secret_values),
    }
    return _RECORD_ENCODER.encode(record)


def read_inputs(inputs_log: Path, step_run: str) -> dict[str, Any] | None:
    """The inputs record of StepRun ``step_run``'s latest attempt, or None when there is none."""
    try:
        lines = inputs_log.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    needle = json.dumps(step_run)
    for line in reversed(lines):
        if needle not in line:
            continue
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if isinstance(data, dict) and data.get("stepRun") == step_run:
                return data
    return None


def remove_step_logs(paths: Iterable[Path]) -> int:
    """Delete the given step logs and inputs logs; returns how many files were removed."""
    removed = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


async def run_logs(client: Client, home: Path, namespace: str, run: str) -> list[Path]:
    """The inputs logs and step logs of run ``run`` and of its child runs (recursively):
    what deleting the run must delete (read before the run and its children are gone)."""
    paths: list[Path] = []
    pending, seen = [run], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        paths.append(inputs_log_path(home, namespace, current))
        for step_run in await client.list(STEP_RUN, namespace, labels=runmeta.steps_selector(current)):
            paths.append(step_log_path(home, namespace, str(step_run["metadata"]["name"])))
        children = await client.list(STORY_RUN, namespace, labels=runmeta.children_selector(current))
        pending.extend(str(c["metadata"]["name"]) for c in children)
    return paths


def log_files(home: Path) -> Iterator[tuple[str, Path, float]]:
    """``(namespace, path, last modified)`` of every file under ``<home>/logs/<namespace>/``."""
    root = home / LOG_DIR
    try:
        namespaces = [entry for entry in os.scandir(root) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for namespace in namespaces:
        try:
            entries = list(os.scandir(namespace.path))
        except OSError:
            continue
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    yield namespace.name, Path(entry.path), entry.stat(follow_symlinks=False).st_mtime
