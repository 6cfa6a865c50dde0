"""Helpers for command engrams written in Python (reference §8.3/§8.4, DESIGN "Execution").

Invariants: ``read_inputs`` parses ``BUBU_TRIGGER_DATA`` (missing/empty -> ``{}``),
``read_config`` parses ``BUBU_STEP_CONFIG`` likewise; ``write_output`` writes compact JSON
atomically (temp file + rename) to ``BUBU_OUTPUT_PATH`` and raises ``RuntimeError`` when that
variable is unset. With ``BUBU_DEBUG=true`` both log a truncated preview to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from bobrapet.sdk.context import Context, env_flag
from bobrapet.sdk.preview import preview


def _read_json_env(name: str) -> Any:
    raw = os.environ.get(name, "")
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{name} is not valid JSON: {exc}") from None


def _debug(label: str, value: Any) -> None:
    if env_flag(os.environ.get("BUBU_DEBUG")):
        print(f"[bobrapet debug] {label}: {preview(value)}", file=sys.stderr, flush=True)


def read_inputs() -> Any:
    """The step's resolved inputs (``BUBU_TRIGGER_DATA``)."""
    value = _read_json_env("BUBU_TRIGGER_DATA")
    _debug("inputs", value)
    return value


def read_config() -> Any:
    """The step's config (``BUBU_STEP_CONFIG``)."""
    return _read_json_env("BUBU_STEP_CONFIG")


def context() -> Context:
    """A Context built from the environment (config from ``BUBU_STEP_CONFIG``; no signal sink)."""
    config = read_config()
    return Context(config=config if isinstance(config, dict) else {})


def write_output(obj: Any) -> None:
    """Write ``obj`` as the step output (JSON) to ``BUBU_OUTPUT_PATH``."""
    path = os.environ.get("BUBU_OUTPUT_PATH")
    if not path:
        raise RuntimeError("BUBU_OUTPUT_PATH is not set: not running as a bobrapet command engram")
    data = json.dumps({} if obj is None else obj, separators=(",", ":"), allow_nan=False)
    _debug("output", obj)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(data)
    os.replace(tmp, path)
