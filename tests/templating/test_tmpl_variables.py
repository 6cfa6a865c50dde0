"""step_entry / build_variables / signal nesting."""

from __future__ import annotations

from bobrapet.templating import build_variables, evaluate, nest_signals, step_entry


def test_step_entry_shape() -> None:
    out = {"a": 1}
    entry = step_entry(out, phase="Succeeded", signals={"progress.pct": 40, "state": "x"})
    assert entry == {
        "output": out,
        "outputs": out,
        "phase": "Succeeded",
        "signals": {"progress": {"pct": 40}, "state": "x"},
    }
    assert entry["output"] is entry["outputs"] is out


def test_nest_signals_conflicts_prefer_nested() -> None:
    assert nest_signals({"a": 1, "a.b": 2}) == {"a": {"b": 2}}
    assert nest_signals({"a.b": 2, "a": 1}) == {"a": {"b": 2}}
    assert nest_signals({"x.y.z": 1, "x.w": 2}) == {"x": {"y": {"z": 1}, "w": 2}}
    assert nest_signals(None) == {}


def test_build_variables_roots() -> None:
    steps = {"s": step_entry({})}
    v = build_variables(inputs=None, steps=steps)
    assert v == {"inputs": {}, "steps": steps}
    assert v["steps"] is steps
    v = build_variables(inputs={"a": 1}, steps=steps, story={"name": "st"}, run={"name": "r"})
    assert set(v) == {"inputs", "steps", "story", "run"}


def test_signals_are_readable_in_templates() -> None:
    v = build_variables(inputs={}, steps={"s": step_entry({}, signals={"progress.pct": 40})})
    assert evaluate("{{ steps.s.signals.progress.pct }}", v) == 40
