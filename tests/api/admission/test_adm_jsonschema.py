"""JSON-Schema normalization (reference §3.6), compilation, validation and defaults."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bobrapet.api.jsonschema_util import (
    apply_defaults,
    compile_schema,
    lift_required,
    normalize,
    prepare,
    validate,
    validate_templated,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "required": True},
        "opts": {
            "type": "object",
            "properties": {"n": {"type": "integer", "required": True}, "tag": {"enum": ["a", "b"]}},
        },
        "items": {"type": "array", "items": {"type": "number"}},
    },
    "required": ["items"],
}


def test_inline_required_is_lifted() -> None:
    lifted = lift_required(SCHEMA)
    assert lifted["required"] == ["items", "url"]
    assert lifted["properties"]["opts"]["required"] == ["n"]
    assert "required" not in lifted["properties"]["url"]
    assert SCHEMA["properties"]["url"]["required"] is True  # input untouched


def test_draft3_schema_compiles_only_after_lifting() -> None:
    assert compile_schema(SCHEMA) == []
    assert compile_schema({"type": "objekt"})[0].startswith("type:")
    assert compile_schema("nope") == ["schema must be an object or boolean, got str"]


def test_normalized_schema_accepts_templates_and_refs_anywhere() -> None:
    norm = normalize(SCHEMA)
    value = {
        "url": "{{ inputs.url }}",
        "opts": {"n": {"$bubuConfigMapRef": "cfg:n"}, "tag": "{{ inputs.tag }}"},
        "items": [1, "{{ steps.a.output.n }}", {"$bubuStorageRef": "outputs/x/output.json"}],
    }
    assert validate(value, norm) == []
    assert validate("{{ inputs }}", norm) == []


def test_normalized_validation_reports_original_messages() -> None:
    errors = validate({"opts": {"n": "x", "tag": "c"}, "items": ["no"]}, normalize(SCHEMA))
    assert ("", "'url' is a required property") in errors
    assert ("opts.n", "'x' is not of type 'integer'") in errors
    assert ("opts.tag", "'c' is not one of ['a', 'b']") in errors
    assert ("items[0]", "'no' is not of type 'number'") in errors


def test_malformed_refs_are_not_accepted() -> None:
    errors = validate({"url": {"$bubuSecretRef": "no-colon"}, "items": []}, normalize(SCHEMA))
    assert errors and errors[0][0] == "url"


def test_apply_defaults_recursive_with_allof() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer", "default": 1}, "o": {"type": "object", "default": {}}},
        "allOf": [{"properties": {"o": {"properties": {"deep": {"default": "x"}}}}}],
    }
    inputs: dict[str, Any] = {}
    assert apply_defaults(inputs, schema) == {"a": 1, "o": {"deep": "x"}}
    assert inputs == {}
    assert apply_defaults({"a": 5, "o": {"deep": "y"}}, schema) == {"a": 5, "o": {"deep": "y"}}


VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=5)
    | st.sampled_from(["{{ inputs.x }}", "a", "b"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["url", "opts", "items", "n", "tag"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(VALUES)
def test_fast_templated_validation_equals_normalized(value: Any) -> None:
    assert validate_templated(value, SCHEMA) == validate(value, normalize(SCHEMA))


def test_compile_schema_checks_a_schema_once_and_returns_fresh_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    from bobrapet.api import jsonschema_util

    calls: list[Any] = []
    real = jsonschema_util._compile

    def counting(schema: Any) -> list[str]:
        calls.append(schema)
        return real(schema)

    monkeypatch.setattr(jsonschema_util, "_compile", counting)
    monkeypatch.setattr(jsonschema_util, "_COMPILED", {})
    bad = {"type": "object", "properties": {"a": {"type": "strng"}}}
    first = compile_schema(bad)
    first.append("mutated by the caller")
    again = compile_schema(json.loads(json.dumps(bad)))  # equal content, another object
    assert again == ["properties.a.type: 'strng' is not valid under any of the given schemas"]
    assert len(calls) == 1
    # Not plain JSON (a cycle) or keys JSON cannot tell apart from strings: checked each time.
    cyclic: dict[str, Any] = {"type": "object"}
    cyclic["properties"] = {"a": cyclic}
    compile_schema(cyclic)
    compile_schema(cyclic)
    assert compile_schema({"properties": {1: {}}}) == compile_schema({"properties": {"1": {}}})
    assert len(calls) == 5


def test_prepare_shares_one_result_per_exact_schema() -> None:
    first = prepare(SCHEMA)
    again = prepare(json.loads(json.dumps(SCHEMA)))  # equal content, another object
    assert again is first
    assert first.lifted == lift_required(SCHEMA) and first.normalized == normalize(SCHEMA)
    reordered = prepare(dict(reversed(list(SCHEMA.items()))))
    assert reordered is not first  # key order can show in messages: another entry
    assert prepare({"enum": [1]}) is not prepare({"enum": ["1"]})
