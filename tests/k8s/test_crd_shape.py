"""The generated CRDs, checked without a server: structural schema rules, names, columns.

The first half converts small pydantic models of its own, one conversion rule per
test; the second half checks every real CRD of :data:`bobrapet.api.kinds.CRD_KINDS`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import WithJsonSchema

from bobrapet.api import kinds
from bobrapet.api.crds import (
    CRDSchemaError,
    crd_for,
    generate_crds,
    render_crds_yaml,
    structural_problems,
    structural_schema,
)
from bobrapet.api.kinds import CRD_KINDS, Kind

PRESERVE = "x-kubernetes-preserve-unknown-fields"


def convert(model: type[BaseModel]) -> dict[str, Any]:
    schema = structural_schema(model.model_json_schema(by_alias=True))
    assert structural_problems(schema) == []
    return schema


def prop(model: type[BaseModel], name: str) -> dict[str, Any]:
    result: dict[str, Any] = convert(model)["properties"][name]
    return result


# --------------------------------------------------------------------------- conversion rules


class Ref(BaseModel):
    """A reference."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-map-type": "atomic"})
    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z]+$", description="The name.")


def test_ref_is_inlined_with_constraints_and_field_description_wins() -> None:
    class M(BaseModel):
        ref: Ref = Field(description="Where to look.")

    schema = convert(M)
    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)
    assert schema["properties"]["ref"] == {
        "description": "Where to look.",
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {
                "description": "The name.",
                "type": "string",
                "pattern": "^[a-z]+$",
                "minLength": 1,
                "maxLength": 253,
            }
        },
        "x-kubernetes-map-type": "atomic",
    }
    assert schema["required"] == ["ref"]


def test_optional_becomes_the_plain_type_and_null_default_is_dropped() -> None:
    class M(BaseModel):
        ref: Ref | None = None
        text: str | None = Field(None, max_length=5)

    assert prop(M, "ref")["type"] == "object"
    assert prop(M, "text") == {"type": "string", "maxLength": 5}
    assert "required" not in convert(M)


def test_literal_const_and_enum_become_typed_enums() -> None:
    class M(BaseModel):
        one: Literal["only"] = "only"
        many: Literal["batch", "realtime"] = "batch"
        number: Literal[1, 2] | None = None

    assert prop(M, "one") == {"type": "string", "default": "only", "enum": ["only"]}
    assert prop(M, "many") == {"type": "string", "default": "batch", "enum": ["batch", "realtime"]}
    assert prop(M, "number") == {"type": "integer", "enum": [1, 2]}


def test_title_is_dropped_everywhere() -> None:
    class M(BaseModel):
        ref: Ref

    assert '"title"' not in json.dumps(convert(M))


def test_typed_map_becomes_additional_properties() -> None:
    class M(BaseModel):
        secrets: dict[str, str] | None = None
        refs: dict[str, Ref] = {}

    assert prop(M, "secrets") == {"type": "object", "additionalProperties": {"type": "string"}}
    refs = prop(M, "refs")
    assert refs["additionalProperties"]["properties"]["name"]["type"] == "string"
    assert "default" not in refs  # {} means "unset"


def test_free_form_values_preserve_unknown_fields() -> None:
    class M(BaseModel):
        anything: Any = None
        obj: dict[str, Any] | None = None
        marked: Annotated[dict[str, Any], WithJsonSchema({"type": "object", PRESERVE: True})] = {}
        value: Annotated[Any, WithJsonSchema({PRESERVE: True})] = None

    assert prop(M, "anything") == {PRESERVE: True}
    assert prop(M, "obj") == {"type": "object", PRESERVE: True}
    assert prop(M, "marked") == {"type": "object", PRESERVE: True}
    assert prop(M, "value") == {PRESERVE: True}


def test_extra_allow_keeps_properties_and_preserves_the_rest() -> None:
    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        known: int = 1

    class Closed(BaseModel):
        model_config = ConfigDict(extra="forbid")
        known: int = 1

    class M(BaseModel):
        open: Open
        closed: Closed

    assert prop(M, "open") == {
        "type": "object",
        "properties": {"known": {"type": "integer", "default": 1}},
        PRESERVE: True,
    }
    assert prop(M, "closed") == {"type": "object", "properties": {"known": {"type": "integer", "default": 1}}}


def test_kubernetes_extensions_pass_through_from_fields_and_models() -> None:
    rule: Any = {"rule": "self.size() > 0", "message": "must not be empty"}

    class Item(BaseModel):
        model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [rule]})
        name: str = Field(max_length=10)

    class M(BaseModel):
        items: list[Item] = Field(
            max_length=7,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        )

    items = prop(M, "items")
    assert items["maxItems"] == 7
    assert items["x-kubernetes-list-type"] == "map"
    assert items["x-kubernetes-list-map-keys"] == ["name"]
    assert items["items"]["x-kubernetes-validations"] == [rule]


def test_validations_on_a_field_and_its_model_are_concatenated() -> None:
    model_rule: Any = {"rule": "has(self.name)", "message": "m"}
    field_rule: Any = {"rule": "self.name != 'x'", "message": "f"}

    class Inner(BaseModel):
        model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [model_rule]})
        name: str | None = None

    class M(BaseModel):
        inner: Inner = Field(json_schema_extra={"x-kubernetes-validations": [field_rule]})

    assert prop(M, "inner")["x-kubernetes-validations"] == [model_rule, field_rule]


def test_exclusive_bounds_become_openapi_v3_booleans() -> None:
    class M(BaseModel):
        positive: int = Field(1, gt=0, lt=100)
        ratio: float = Field(0.5, ge=0, le=1)

    assert prop(M, "positive") == {
        "type": "integer",
        "default": 1,
        "minimum": 0,
        "maximum": 100,
        "exclusiveMinimum": True,
        "exclusiveMaximum": True,
    }
    assert prop(M, "ratio") == {"type": "number", "default": 0.5, "minimum": 0, "maximum": 1}


def test_scalar_sets_become_list_type_set_without_unique_items() -> None:
    class M(BaseModel):
        tags: set[str] = set()

    assert prop(M, "tags") == {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}


def test_discriminated_union_merges_into_one_object() -> None:
    class A(BaseModel):
        kind: Literal["a"]
        x: int = 0

    class B(BaseModel):
        kind: Literal["b"]
        y: str

    class M(BaseModel):
        choice: Annotated[A | B, Field(discriminator="kind")]

    choice = prop(M, "choice")
    assert choice["type"] == "object"
    assert choice["properties"]["kind"] == {"type": "string", "enum": ["a", "b"]}
    assert choice["required"] == ["kind"]
    assert "default" not in choice["properties"]["x"]  # A's default must not apply to B
    assert choice["properties"]["y"] == {"type": "string"}


def test_int_or_string_and_mixed_unions() -> None:
    class M(BaseModel):
        port: int | str = 80
        mixed: str | list[str] | None = None
        numeric: int | float = 1

    assert prop(M, "port") == {"default": 80, "x-kubernetes-int-or-string": True}
    assert prop(M, "mixed") == {PRESERVE: True}
    assert prop(M, "numeric") == {"type": "number", "default": 1}


def test_recursive_models_are_cut_into_free_objects() -> None:
    class Node(BaseModel):
        name: str
        children: list[Node] = []

    class Tree(BaseModel):
        root: Node

    root = prop(Tree, "root")
    assert root["properties"]["name"] == {"type": "string"}
    assert root["properties"]["children"]["items"] == {"type": "object", PRESERVE: True}
    assert convert(Node)["properties"]["children"]["items"] == {"type": "object", PRESERVE: True}


def test_tuples_become_arrays_of_a_merged_item() -> None:
    class M(BaseModel):
        pair: tuple[str, str] | None = None

    assert prop(M, "pair") == {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "string"}}


def test_unsupported_keyword_is_a_clear_error() -> None:
    class M(BaseModel):
        odd: Annotated[str, WithJsonSchema({"type": "string", "if": {"minLength": 1}})] = ""

    with pytest.raises(CRDSchemaError, match=r"\$\.odd: JSON-schema keyword 'if'"):
        structural_schema(M.model_json_schema())


def test_structural_problems_reports_violations() -> None:
    bad = {
        "type": "object",
        "properties": {
            "a": {"description": "untyped"},
            "b": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
            "c": {"type": "array"},
            "d": {"anyOf": [{"type": "string"}]},
            "e": {"type": "string", "default": None},
            "f": {
                "type": "array",
                "items": {"type": "object", "properties": {"k": {"type": "string"}}},
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["k"],
            },
        },
    }
    problems = "\n".join(structural_problems(bad))
    assert "properties[a]: no type" in problems
    assert "properties[b]: both properties and additionalProperties" in problems
    assert "properties[c]: array without items" in problems
    assert "properties[d]: key 'anyOf' not allowed" in problems
    assert "properties[e]: null default" in problems
    assert "list-map key 'k' must be required or defaulted" in problems


def test_crd_for_a_custom_kind_uses_every_registry_attribute() -> None:
    class ThingSpec(BaseModel):
        size: int

    class Thing(BaseModel):
        """A thing."""

        apiVersion: Literal["x.io/v1"] = "x.io/v1"
        kind: Literal["Thing"] = "Thing"
        metadata: dict[str, Any] = {}
        spec: ThingSpec
        status: dict[str, Any] | None = None

    kind = Kind(
        "x.io", "v1", "Thing", "things", False, "unused:Thing",
        short_names=("th",), categories=("bubu",),
        columns=(("Size", "integer", ".spec.size", 1), ("Age", "date", ".metadata.creationTimestamp", 0)),
        selectable_fields=(".spec.size",),
    )  # fmt: skip
    object.__setattr__(kind, "model", Thing)  # bypass the lazy import of model_path
    crd = crd_for(kind)
    assert crd["metadata"]["name"] == "things.x.io"
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"] == {
        "plural": "things",
        "singular": "thing",
        "kind": "Thing",
        "listKind": "ThingList",
        "shortNames": ["th"],
        "categories": ["bubu"],
    }
    (version,) = crd["spec"]["versions"]
    assert version["additionalPrinterColumns"] == [
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    assert version["selectableFields"] == [{"jsonPath": ".spec.size"}]
    root = version["schema"]["openAPIV3Schema"]
    assert root["description"] == "A thing."
    assert root["properties"]["apiVersion"]["type"] == "string"
    assert "enum" not in root["properties"]["apiVersion"]
    assert root["properties"]["metadata"] == {"type": "object"}
    assert root["required"] == ["spec"]


def test_built_in_kinds_have_no_crd() -> None:
    with pytest.raises(CRDSchemaError, match="built-in"):
        crd_for(kinds.CONFIG_MAP)


# --------------------------------------------------------------------------- the real CRDs

# The reference's table (§1.1): kind -> (group, scope, shortNames, categories).
EXPECTED_NAMES = {
    "Story": ("bubustack.io", "Namespaced", ["story"], ["bubu", "ai", "workflows"]),
    "Engram": ("bubustack.io", "Namespaced", ["engram"], ["bubu", "ai"]),
    "Impulse": ("bubustack.io", "Namespaced", ["imp"], ["bubu", "ai"]),
    "EngramTemplate": ("catalog.bubustack.io", "Cluster", ["etpl"], ["bubu", "ai", "catalog"]),
    "ImpulseTemplate": ("catalog.bubustack.io", "Cluster", ["itpl"], ["bubu", "ai", "catalog"]),
    "StoryRun": ("runs.bubustack.io", "Namespaced", ["srun"], ["bubu", "ai", "runs"]),
    "StepRun": ("runs.bubustack.io", "Namespaced", ["step"], ["bubu", "ai", "runs"]),
    "StoryTrigger": ("runs.bubustack.io", "Namespaced", ["trig"], ["bubu", "ai", "runs"]),
    "EffectClaim": ("runs.bubustack.io", "Namespaced", ["eff"], ["bubu", "ai", "runs"]),
    "Transport": ("transport.bubustack.io", "Cluster", ["transport"], ["bubu", "ai"]),
    "TransportBinding": ("transport.bubustack.io", "Namespaced", ["tb", "tbind"], ["bubu", "transport"]),
    "ReferenceGrant": ("policy.bubustack.io", "Namespaced", ["refgrant"], ["bubu", "ai"]),
}


@pytest.fixture(scope="module")
def crds() -> list[dict[str, Any]]:
    return generate_crds()


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return result


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node (not default/enum values) with its path."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}[*]")


def test_one_crd_per_custom_kind_in_registry_order(crds: list[dict[str, Any]]) -> None:
    assert [c["spec"]["names"]["kind"] for c in crds] == [k.kind for k in CRD_KINDS]
    assert set(EXPECTED_NAMES) == {k.kind for k in CRD_KINDS}
    assert generate_crds() == crds  # stable


@pytest.mark.parametrize("kind", CRD_KINDS, ids=str)
def test_names_scope_and_version(kind: Kind, crds: list[dict[str, Any]]) -> None:
    crd = crds[CRD_KINDS.index(kind)]
    group, scope, short_names, categories = EXPECTED_NAMES[kind.kind]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{kind.plural}.{group}"
    assert crd["spec"]["group"] == group
    assert crd["spec"]["scope"] == scope
    names = crd["spec"]["names"]
    assert names["shortNames"] == short_names
    assert names["categories"] == categories
    assert names["listKind"] == f"{kind.kind}List"
    assert names["singular"] == kind.kind.lower()
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("kind", CRD_KINDS, ids=str)
def test_printer_columns_and_selectable_fields(kind: Kind, crds: list[dict[str, Any]]) -> None:
    version = crds[CRD_KINDS.index(kind)]["spec"]["versions"][0]
    columns = [
        (c["name"], c["type"], c["jsonPath"], c.get("priority", 0))
        for c in version["additionalPrinterColumns"]
    ]
    assert columns == list(kind.columns)
    assert columns[-1] == ("Age", "date", ".metadata.creationTimestamp", 0)
    assert [f["jsonPath"] for f in version.get("selectableFields", [])] == list(kind.selectable_fields)


def test_selectable_fields_of_the_reference(crds: list[dict[str, Any]]) -> None:
    by_kind = {c["spec"]["names"]["kind"]: c["spec"]["versions"][0] for c in crds}
    assert by_kind["StoryRun"]["selectableFields"] == [
        {"jsonPath": ".spec.storyRef.name"},
        {"jsonPath": ".status.phase"},
    ]
    assert by_kind["StepRun"]["selectableFields"] == [
        {"jsonPath": ".spec.storyRunRef.name"},
        {"jsonPath": ".spec.stepId"},
        {"jsonPath": ".status.phase"},
    ]


@pytest.mark.parametrize("kind", CRD_KINDS, ids=str)
def test_schema_is_structural(kind: Kind, crds: list[dict[str, Any]]) -> None:
    schema = schema_of(crds[CRD_KINDS.index(kind)])
    assert structural_problems(schema) == []
    for path, node in walk(schema):
        for key in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "title", "const", "discriminator"):
            assert key not in node, f"{kind}{path}: {key}"
        typed = "type" in node
        free = node.get(PRESERVE) is True or node.get("x-kubernetes-int-or-string") is True
        assert typed or free, f"{kind}{path}: untyped node {node}"
        assert not ("properties" in node and "additionalProperties" in node), f"{kind}{path}"
        if "default" in node:
            assert node["default"] is not None, f"{kind}{path}: null default"


@pytest.mark.parametrize("kind", CRD_KINDS, ids=str)
def test_root_shape(kind: Kind, crds: list[dict[str, Any]]) -> None:
    schema = schema_of(crds[CRD_KINDS.index(kind)])
    props = schema["properties"]
    assert schema["type"] == "object"
    assert props["apiVersion"]["type"] == "string" and "enum" not in props["apiVersion"]
    assert props["kind"]["type"] == "string" and "enum" not in props["kind"]
    assert props["metadata"] == {"type": "object"}
    assert "spec" in schema["required"]
    assert props["spec"]["type"] == "object"
    assert "status" in props
    assert "status" not in schema["required"]


@pytest.mark.parametrize("kind", CRD_KINDS, ids=str)
def test_status_conditions_are_a_list_map_keyed_by_type(kind: Kind, crds: list[dict[str, Any]]) -> None:
    status = schema_of(crds[CRD_KINDS.index(kind)])["properties"]["status"]
    conditions = status.get("properties", {}).get("conditions")
    assert conditions is not None, f"{kind} has no status.conditions"
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]


def test_no_crd_defaults_automount_service_account_token(crds: list[dict[str, Any]]) -> None:
    seen = 0
    for crd in crds:
        for path, node in walk(schema_of(crd)):
            if path.endswith(".automountServiceAccountToken"):
                seen += 1
                assert "default" not in node, f"{crd['metadata']['name']}{path}"
    assert seen > 0  # the field exists (ExecutionOverrides), so the check is not vacuous


def test_story_steps_are_a_list_map_keyed_by_name_up_to_1000(crds: list[dict[str, Any]]) -> None:
    steps = schema_of(crds[CRD_KINDS.index(kinds.STORY)])["properties"]["spec"]["properties"]["steps"]
    assert steps["x-kubernetes-list-type"] == "map"
    assert steps["x-kubernetes-list-map-keys"] == ["name"]
    assert steps["maxItems"] == 1000
    assert "name" in steps["items"]["required"]


def test_rendered_yaml_is_every_crd_as_separate_documents(crds: list[dict[str, Any]]) -> None:
    text = render_crds_yaml()
    assert text.startswith("---\n")
    assert text.count("\n---\n") == len(crds) - 1
    assert list(yaml.safe_load_all(text)) == crds
