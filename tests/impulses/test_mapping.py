"""``spec.mapping``: from a delivery to StoryRun inputs, and the admission check of its expressions."""

from __future__ import annotations

from typing import Any

import pytest

from bobrapet.api.admission.impulse import context_variables, mapping_problems
from bobrapet.impulses.mapping import BASE_VARIABLES, InputMapping, MappingError

VARIABLES: dict[str, Any] = {
    "body": {"order": {"id": 7, "items": [1, 2]}, "user": "ada"},
    "headers": {"x-source": "shop"},
    "query": {"dry": "1"},
    "key": "k-1",
}


def test_expressions_give_typed_values_and_text_stays_literal() -> None:
    mapping = InputMapping(
        {
            "order": "{{ body.order }}",
            "id": "{{ body.order.id }}",
            "who": "user {{ body.user }} from {{ headers['x-source'] }}",
            "dry": "{{ query.dry == '1' }}",
            "source": "webhook",
            "nested": {"first": "{{ body.order.items[0] }}", "key": "{{ key }}"},
        }
    )
    mapping.check()
    assert mapping.inputs(VARIABLES) == {
        "order": {"id": 7, "items": [1, 2]},
        "id": 7,
        "who": "user ada from shop",
        "dry": True,
        "source": "webhook",
        "nested": {"first": 1, "key": "k-1"},
    }


def test_without_a_mapping_the_body_is_the_inputs() -> None:
    assert InputMapping(None).inputs(VARIABLES) == VARIABLES["body"]


@pytest.mark.parametrize(
    ("body", "kind"), [([1, 2], "an array"), ("text", "text"), (None, "null"), (3, "a number")]
)
def test_a_body_that_is_not_an_object_needs_a_mapping(body: Any, kind: str) -> None:
    with pytest.raises(MappingError) as info:
        InputMapping(None).inputs({**VARIABLES, "body": body})
    assert str(info.value).startswith(
        f"the body is {kind}, not a JSON object, and the Impulse has no spec.mapping"
    )
    assert "add a spec.mapping" in str(info.value)


def test_an_expression_that_fails_names_its_field() -> None:
    mapping = InputMapping({"id": "{{ body.missing.id }}"})
    with pytest.raises(MappingError, match=r"^spec\.mapping\.id: "):
        mapping.inputs(VARIABLES)


def test_checks_refuse_syntax_errors_unknown_variables_and_now() -> None:
    problems = mapping_problems(
        {"a": "{{ body.x ", "b": "{{ inputs.x }}", "c": "{{ now() }}", "d": "{{ body.x }}"}, BASE_VARIABLES
    )
    assert sorted(field for field, _ in problems) == ["spec.mapping.a", "spec.mapping.b", "spec.mapping.c"]
    messages = dict(problems)
    assert messages["spec.mapping.b"] == "unknown variable inputs; a mapping sees body, headers, key, query"
    assert "now() and random helpers are not allowed here" in messages["spec.mapping.c"]
    with pytest.raises(MappingError, match=r"spec\.mapping\.b: unknown variable inputs"):
        InputMapping({"b": "{{ inputs.x }}"}).check()


def test_a_template_declares_the_variables_in_its_context_schema() -> None:
    template = {"spec": {"contextSchema": {"properties": {"body": {}, "event": {}}}}}
    assert context_variables(template) == ("body", "event")
    assert context_variables({"spec": {}}) is None
    assert mapping_problems({"a": "{{ event }}"}, context_variables(template)) == []
