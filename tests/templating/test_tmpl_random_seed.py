"""Template randomness is seeded: the same seed gives the same values, another seed new ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bobrapet.engine import template_seed
from bobrapet.templating import TemplateError, evaluate, evaluate_condition, render

T0 = datetime(2026, 1, 1, tzinfo=UTC)
VALUES = {
    "id": "{{ uuidv4() }}",
    "other": "{{ uuidv4() }}",
    "n": "{{ randInt(0, 1000000000) }}",
    "pick": "{{ ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] | random }}",
    "text": "req-{{ randInt(0, 1000000) }}-{{ uuidv4() }}",
}
RUN = {"metadata": {"name": "r", "namespace": "default", "uid": "0c6b1f0e"}}


def _render(seed: str | None, value: Any = None) -> Any:
    return render(VALUES if value is None else value, {}, now=lambda: T0, seed=seed)


def test_the_same_seed_renders_the_same_values() -> None:
    seed = template_seed(RUN, "s", 0)
    first = _render(seed)
    assert _render(seed) == first
    assert first["id"] != first["other"]  # one evaluation draws a sequence, not one value
    assert len(first["id"]) == 36 and first["id"][14] == "4"  # still a version-4 UUID
    assert isinstance(first["n"], int)
    assert first["pick"] in "abcdefgh"


def test_another_attempt_step_or_run_renders_new_values() -> None:
    base = _render(template_seed(RUN, "s", 0))
    others = [
        _render(template_seed(RUN, "s", 1)),
        _render(template_seed(RUN, "t", 0)),
        _render(template_seed({"metadata": {**RUN["metadata"], "uid": "9d2e"}}, "s", 0)),
    ]
    for other in others:
        assert other["id"] != base["id"]
        assert other["text"] != base["text"]
    # `[...] | random` is drawn at each evaluation, never folded into a constant when compiled
    assert len({_render(template_seed(RUN, "s", i))["pick"] for i in range(20)}) > 1


def test_without_a_seed_values_differ_between_renders() -> None:
    assert _render(None)["id"] != _render(None)["id"]


def test_evaluate_and_conditions_take_the_seed_too() -> None:
    seed = template_seed(RUN, "s", 2)
    assert evaluate("{{ uuidv4() }}", {}, now=lambda: T0, seed=seed) == _render(seed, "{{ uuidv4() }}")
    draws = {evaluate_condition("{{ randInt(0, 2) == 1 }}", {}, now=lambda: T0, seed=seed) for _ in range(20)}
    assert len(draws) == 1


def test_template_vars_blocks_continue_the_same_sequence() -> None:
    seed = template_seed(RUN, "s", 0)
    value = {
        "a": {"$bubuTemplate": "{{ x }}-{{ uuidv4() }}", "$bubuTemplateVars": {"x": "{{ uuidv4() }}"}},
    }
    first = _render(seed, value)
    assert _render(seed, value) == first
    x, y = first["a"][:36], first["a"][37:]  # two UUIDs joined by "-"
    assert len(y) == 36 and x != y


def test_deterministic_evaluation_still_refuses_randomness() -> None:
    with pytest.raises(TemplateError, match="function 'uuidv4' is not available"):
        render("{{ uuidv4() }}", {}, now=lambda: T0, deterministic=True, seed="s")


def test_the_seed_names_run_step_and_attempt() -> None:
    assert template_seed(RUN, "s", 3) == "default/r/0c6b1f0e/s#3"
    assert template_seed({"metadata": {"name": "r"}}, "s") == "default/r//s#0"
