"""Building the variable map templates are evaluated against (reference §2.6, §3.4).

Invariants:

* ``steps.<name>`` is ``{"output", "outputs", "phase", "signals"}``; ``output`` and
  ``outputs`` are the same object. ``output=None`` means "not available yet" (evaluation
  of ``steps.<name>.output`` is then :class:`~bobrapet.templating.errors.Blocked`).
* Signals arrive flat (``{"progress.pct": 40}``) and are exposed nested by dotted key
  (``signals.progress.pct``); keys are applied in sorted order, so when a key is both a
  leaf and a prefix (``a`` and ``a.b``) the nested object wins, deterministically.
* Nothing here copies the ``steps`` mapping or the outputs: the variable map refers to the
  caller's objects, which callers treat as immutable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def nest_signals(signals: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"a.b": 1, "c": 2}`` → ``{"a": {"b": 1}, "c": 2}``."""
    out: dict[str, Any] = {}
    if not signals:
        return out
    for key in sorted(signals):
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        leaf = parts[-1]
        if not isinstance(node.get(leaf), dict):
            node[leaf] = signals[key]
    return out


def step_entry(
    output: Any, *, phase: str | None = None, signals: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``steps.<name>`` entry for one step."""
    return {"output": output, "outputs": output, "phase": phase, "signals": nest_signals(signals)}


def build_variables(
    *,
    inputs: Mapping[str, Any] | None,
    steps: Mapping[str, Mapping[str, Any]],
    story: Mapping[str, Any] | None = None,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``{"inputs", "steps"[, "story"][, "run"]}``; ``inputs=None`` becomes ``{}``."""
    variables: dict[str, Any] = {"inputs": {} if inputs is None else inputs, "steps": steps}
    if story is not None:
        variables["story"] = story
    if run is not None:
        variables["run"] = run
    return variables
