"""Condition fields: bare and braced expressions, literal words, boolean coercion."""

from __future__ import annotations

from typing import Any

import pytest

from bobrapet.templating import (
    Blocked,
    TemplateError,
    as_boolean,
    build_variables,
    evaluate_condition,
    step_entry,
)


@pytest.fixture
def variables() -> dict[str, Any]:
    return build_variables(
        inputs={"ready": True, "mode": "fast", "n": 3, "answer": "Yes", "empty": ""},
        steps={"a": step_entry({"ok": False, "count": 2})},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, True),
        ("", True),
        ("   ", True),
        ("inputs.ready == true", True),
        ("{{ inputs.ready }}", True),
        ("{{ inputs.ready == true }}", True),
        ("inputs.mode == 'fast'", True),
        ("inputs.mode == 'slow'", False),
        ("not steps.a.output.ok", True),
        ("steps.a.output.count > 1 and inputs.ready", True),
        ("{{ steps.a.output.ok }}", False),
        ("true", True),
        ("false", False),
        ("True", True),
        ("FALSE", False),
        ("yes", True),
        ("No", False),
        ("y", True),
        ("n", False),
        ("1", True),
        ("0", False),
        ("{{ inputs.answer }}", True),
        ("{{ inputs.empty }}", False),
        ("{{ 'no' }}", False),
        ("{{ inputs.n }}{{ inputs.n }} == 33", False),  # mixed text: "33 == 33" is not a boolean word
        ("steps.a.output.missing | default(true)", True),
        ("steps.a.output.missing is defined", False),
    ],
)
def test_conditions(variables: dict[str, Any], text: str | None, expected: bool) -> None:
    if text == "{{ inputs.n }}{{ inputs.n }} == 33":
        with pytest.raises(TemplateError, match="condition did not resolve to boolean, got string"):
            evaluate_condition(text, variables)
        return
    assert evaluate_condition(text, variables) is expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("inputs.n", "got number: 3"),
        ("{{ inputs.mode }}", "got string: 'fast'"),
        ("{{ steps.a.output }}", 'got object: {"ok":false,"count":2}'),
        ("[1]", "got array: [1]"),
        ("none", "got null: null"),
    ],
)
def test_non_boolean_results_are_errors(variables: dict[str, Any], text: str, needle: str) -> None:
    with pytest.raises(TemplateError) as err:
        evaluate_condition(text, variables)
    assert "condition did not resolve to boolean, got" in str(err.value)
    assert needle in str(err.value)


def test_missing_step_blocks(variables: dict[str, Any]) -> None:
    with pytest.raises(Blocked) as err:
        evaluate_condition("steps.later.output.ok", variables)
    assert err.value.step == "later"
    with pytest.raises(Blocked):
        evaluate_condition("{{ steps['b-c'].output.ok }}", variables)


def test_missing_input_is_an_error(variables: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match=r"inputs\.nope is undefined"):
        evaluate_condition("inputs.nope", variables)


def test_invalid_bare_expression(variables: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="invalid expression"):
        evaluate_condition("inputs.ready ==", variables)


def test_as_boolean() -> None:
    assert as_boolean(True) is True
    assert as_boolean(" YES ") is True
    with pytest.raises(TemplateError, match="got number: 1"):
        as_boolean(1)
    with pytest.raises(TemplateError, match="got string: 'maybe'"):
        as_boolean("maybe")
