"""Property tests: literal values pass through, data round-trips, evaluation never crashes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bobrapet.api.expressions import analyze
from bobrapet.templating import Blocked, TemplateError, build_variables, evaluate, render, step_entry

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_literal_text = st.text(max_size=20).filter(lambda s: "{{" not in s)
_literals = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _literal_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_VARS = build_variables(inputs={"x": 1}, steps={"a": step_entry({"n": 1})})


@given(_literals)
def test_literal_values_render_to_themselves(value: Any) -> None:
    assert render(value, _VARS) == value


@given(_json)
def test_a_path_returns_the_data_unchanged(value: Any) -> None:
    variables = build_variables(inputs={"v": value}, steps={"s": step_entry({"v": value})})
    assert evaluate("{{ inputs.v }}", variables) == value
    assert evaluate("{{ steps['s'].output.v }}", variables) == value
    assert evaluate("{{ inputs.v | toJson | fromJson }}", variables) == value


@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_subscript_paths_reach_any_key(step: str, key: str) -> None:
    variables = build_variables(inputs={}, steps={step: step_entry({key: [key]})})
    text = "{{ steps[" + repr(step) + "].output[" + repr(key) + "][0] }}"
    try:
        result = evaluate(text, variables)
    except TemplateError as exc:  # a key Jinja's lexer cannot spell (e.g. escapes): analysis rejects it too
        assert not analyze(text).ok or "invalid expression" in str(exc)
        return
    assert result == key


_TEMPLATE_ALPHABET = st.sampled_from(
    [*list("{}%#()[]|.,'\"+-*/~<>=! _0123456789"), "inputs", "steps", "a", "n", "x", "output", "default"]
)


@settings(max_examples=300)
@given(st.lists(_TEMPLATE_ALPHABET, max_size=30).map("".join))
def test_evaluation_only_raises_template_errors(body: str) -> None:
    text = "{{" + body
    try:
        evaluate(text, _VARS)
    except Blocked as exc:
        assert exc.step
    except TemplateError as exc:
        assert str(exc)
