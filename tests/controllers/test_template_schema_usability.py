"""Template schemas that pass the metaschema but cannot be used are invalid (reference §1.6).

A ``$ref`` that resolves nowhere or a ``pattern`` that is not a regular expression makes a
schema fail to compile in the original operator; admission of every Engram that uses the
template then fails. The template itself must say so in its status.
"""

from __future__ import annotations

from typing import Any

import pytest

from bobrapet.controllers.template_validation import ENGRAM_TEMPLATE_SCHEMAS, validate_template

BASE: dict[str, Any] = {"version": "1", "image": "x", "supportedModes": ["job"]}


def errors_for(schema: Any) -> list[str]:
    return validate_template({**BASE, "configSchema": schema}, schema_fields=ENGRAM_TEMPLATE_SCHEMAS)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"$ref": "#/nope"}, "$ref: cannot resolve '#/nope'"),
        ({"properties": {"a": {"$ref": "#/$defs/missing"}}}, "properties.a.$ref: cannot resolve"),
        ({"$ref": "http://example.com/remote.json"}, "cannot resolve 'http://example.com/remote.json'"),
        ({"properties": {"a": {"type": "string", "pattern": "["}}}, "properties.a.pattern: invalid regular"),
        (
            {"patternProperties": {"(": {"type": "string"}}},
            "patternProperties: invalid regular expression '('",
        ),
        ({"prefixItems": [{"pattern": "*"}]}, "prefixItems[0].pattern: invalid regular"),
        ({"allOf": [{"not": {"pattern": "(?P<"}}]}, "allOf[0].not.pattern: invalid regular"),
    ],
)
def test_unusable_schemas_are_invalid(schema: Any, expected: str) -> None:
    errors = errors_for(schema)
    assert len(errors) == 1, errors
    assert errors[0].startswith("invalid schema(s): configSchema: ")
    assert expected in errors[0]


@pytest.mark.parametrize(
    "schema",
    [
        {"$defs": {"a": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/a"}}},
        {"definitions": {"a": {"type": "string"}}, "items": {"$ref": "#/definitions/a"}},
        {"properties": {"x": {"type": "string"}}, "additionalProperties": {"$ref": "#/properties/x"}},
        {"properties": {"pattern": {"type": "string"}, "$ref": {"type": "string"}}},
        {"enum": [{"pattern": "["}], "const": {"$ref": "#/nope"}, "default": {"pattern": "("}},
        {"properties": {"a": {"pattern": "^[a-z]+$", "required": True}}},
        {"$id": "https://example.com/s.json", "$defs": {"a": {}}, "$ref": "#/$defs/a"},
        {"$ref": "#"},
        True,
    ],
)
def test_usable_schemas_stay_valid(schema: Any) -> None:
    assert errors_for(schema) == []
