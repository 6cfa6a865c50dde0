"""CustomResourceDefinitions generated from the pydantic models.

``crd_for(kind)`` builds the ``apiextensions.k8s.io/v1`` CRD of one registry
kind; ``generate_crds()`` returns all of :data:`bobrapet.api.kinds.CRD_KINDS` in
registry order; ``render_crds_yaml()`` renders them as one multi-document YAML
stream (``---`` before every document).

The OpenAPI schema is converted from the model's JSON schema into a
*structural* schema, the subset the Kubernetes API server accepts:

* every ``$ref`` is inlined (``$defs`` disappear); a model that refers to itself
  is cut at the second visit into a free-form object (structural schemas cannot
  recurse);
* ``title``, ``$schema``, ``discriminator``, ``examples`` and other annotations
  the server does not know are dropped; ``const`` becomes a one-value ``enum``;
  JSON-Schema-2020 numeric ``exclusiveMinimum``/``exclusiveMaximum`` become the
  OpenAPI-v3 boolean form;
* ``X | None`` becomes ``X``: the server prunes ``null`` from non-nullable fields,
  which is what "absent" means to the models (and keeps CEL ``has()`` honest);
* unions of several types are merged into one node: objects into one object whose
  properties are the union (required = intersection), ``int | str`` into
  ``x-kubernetes-int-or-string``, anything else into "any JSON";
* free-form values (``Any``, ``dict[str, Any]``, models with ``extra="allow"``)
  carry ``x-kubernetes-preserve-unknown-fields: true`` (typed ``object`` when the
  model says object, untyped when any JSON is allowed); ``dict[str, X]`` becomes
  ``additionalProperties: X``;
* every ``x-kubernetes-*`` key of the model schema (list-map annotations, CEL
  ``x-kubernetes-validations``) is passed through unchanged;
* ``null``, ``[]`` and ``{}`` defaults are dropped (they mean "unset"), other
  defaults are kept and applied by the server;
* at the root ``apiVersion``/``kind`` are plain strings, ``metadata`` is
  ``{type: object}`` and ``spec`` is required.

Invariant (checked by :func:`structural_problems`, asserted by the tests): every
node of a generated schema has a ``type`` or is an ``x-kubernetes-preserve-
unknown-fields`` / ``x-kubernetes-int-or-string`` node, no node has ``$ref``,
``anyOf``, ``oneOf``, ``allOf`` or ``not``, and no node has both ``properties``
and ``additionalProperties``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from bobrapet.api.kinds import CRD_KINDS, Kind

JSON = dict[str, Any]

__all__ = [
    "CRDSchemaError",
    "crd_for",
    "generate_crds",
    "render_crds_yaml",
    "structural_problems",
    "structural_schema",
]

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
VALIDATIONS = "x-kubernetes-validations"

# Keys copied as they are (after their children are converted).
_SCALAR_KEYS = (
    "description",
    "format",
    "default",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)
# Annotations of the model schema that mean nothing to the API server.
_DROPPED_KEYS = frozenset(
    {
        "title",
        "$schema",
        "$id",
        "$comment",
        "discriminator",
        "examples",
        "example",
        "deprecated",
        "readOnly",
        "writeOnly",
        "propertyNames",
        "contentMediaType",
        "contentEncoding",
        "contentSchema",
        "not",
    }
)
# Structural keys handled explicitly by the converter.
_HANDLED_KEYS = frozenset(
    {
        "$ref",
        "$defs",
        "definitions",
        "allOf",
        "anyOf",
        "oneOf",
        "type",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "items",
        "prefixItems",
        "uniqueItems",
        "nullable",
        *_SCALAR_KEYS,
    }
)
# String formats the API server validates the same way the models do.
_KEPT_FORMATS = frozenset(
    {"date-time", "date", "int32", "int64", "float", "double", "byte", "uuid", "email", "hostname",
     "ipv4", "ipv6"}
)  # fmt: skip
# Every key a node of a structural schema we generate may carry (checked by structural_problems).
_ALLOWED_OUTPUT_KEYS = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "nullable", *_SCALAR_KEYS}
)
_SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean"})


class CRDSchemaError(ValueError):
    """A model's JSON schema holds something that cannot become a structural schema."""


def _empty_default(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _json_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return None


def _is_null_schema(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "null" and len(node) == 1


def _is_free_form(node: JSON) -> bool:
    """An untyped "any JSON" node."""
    return "type" not in node and node.get(PRESERVE) is True


def _any_json(description: str | None = None) -> JSON:
    node: JSON = {}
    if description:
        node["description"] = description
    node[PRESERVE] = True
    return node


def _free_object(description: str | None = None) -> JSON:
    node: JSON = {}
    if description:
        node["description"] = description
    node["type"] = "object"
    node[PRESERVE] = True
    return node


def _overlay(base: JSON, extra: JSON) -> JSON:
    """``base`` updated by ``extra``; CEL rule lists are concatenated, not replaced."""
    out = dict(base)
    for key, value in extra.items():
        if key == VALIDATIONS and key in out:
            out[key] = [*out[key], *[rule for rule in value if rule not in out[key]]]
        else:
            out[key] = value
    return out


class _Converter:
    """Converts one pydantic JSON schema (with its ``$defs``) to a structural schema."""

    def __init__(self, schema: JSON) -> None:
        self.defs: dict[str, JSON] = {**schema.get("definitions", {}), **schema.get("$defs", {})}
        self.stack: list[str] = []

    def _definition(self, ref: str, path: str) -> tuple[str, JSON]:
        for prefix in ("#/$defs/", "#/definitions/"):
            if ref.startswith(prefix):
                name = ref[len(prefix) :]
                if name in self.defs:
                    return name, self.defs[name]
        raise CRDSchemaError(f"{path}: cannot resolve $ref {ref!r}")

    def convert(self, node: Any, path: str) -> JSON:
        if node is True or node == {}:
            return _any_json()
        if not isinstance(node, dict):
            raise CRDSchemaError(f"{path}: expected a schema object, got {node!r}")

        if "$ref" in node:
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            name, target = self._definition(node["$ref"], path)
            if name in self.stack:
                # A recursive model: structural schemas are finite, so the inner
                # occurrence accepts any object (admission validates it fully).
                return _free_object(siblings.get("description") or target.get("description"))
            self.stack.append(name)
            try:
                return self.convert(_overlay(target, siblings), path)
            finally:
                self.stack.pop()

        if "allOf" in node:
            merged: JSON = {k: v for k, v in node.items() if k != "allOf"}
            base: JSON = {}
            for part in node["allOf"]:
                base = _overlay(base, part)
            return self.convert(_overlay(base, merged), path)

        for union_key in ("anyOf", "oneOf"):
            if union_key in node:
                rest = {k: v for k, v in node.items() if k != union_key}
                variants = [v for v in node[union_key] if not _is_null_schema(v)]
                converted = [self.convert(v, f"{path}|{i}") for i, v in enumerate(variants)]
                union = _merge_variants(converted) if converted else _any_json()
                outer = self.convert(rest, path) if rest else {}
                if _is_free_form(outer):
                    # `rest` only held annotations (description, default, ...).
                    outer.pop(PRESERVE)
                return _finish(_overlay(union, outer))

        return self._convert_plain(node, path)

    def _convert_plain(self, node: JSON, path: str) -> JSON:
        for key in node:
            if key in _HANDLED_KEYS or key in _DROPPED_KEYS or key.startswith("x-"):
                continue
            raise CRDSchemaError(f"{path}: JSON-schema keyword {key!r} has no structural equivalent")

        out: JSON = {}
        types = node.get("type")
        if isinstance(types, list):
            non_null = [t for t in types if t != "null"]
            types = non_null[0] if len(non_null) == 1 else (non_null or None)
            if isinstance(types, list):
                return _finish(
                    _overlay(
                        _merge_variants([{"type": t} for t in types]),
                        self._convert_plain({k: v for k, v in node.items() if k != "type"}, path),
                    )
                )
        enum: list[Any] | None = None
        if "const" in node:
            enum = [node["const"]]
        elif "enum" in node:
            enum = [v for v in node["enum"] if v is not None] or None
        if types is None and enum:
            value_types = {_json_type(v) for v in enum}
            types = value_types.pop() if len(value_types) == 1 else None
            if types is None:
                enum = None  # mixed-type literal: any JSON
        if types is None:
            if "properties" in node or "additionalProperties" in node or "patternProperties" in node:
                types = "object"
            elif "items" in node or "prefixItems" in node:
                types = "array"
        if types == "null":
            types = None

        if types is not None:
            out["type"] = types
        for key in _SCALAR_KEYS:
            if key in node:
                out[key] = node[key]
        if enum is not None:
            out["enum"] = enum
        else:
            out.pop("enum", None)
        if out.get("format") not in _KEPT_FORMATS:
            out.pop("format", None)
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = out.get(bound)
            if isinstance(value, bool):
                if not value:
                    out.pop(bound)
            elif value is not None:
                out[limit] = value
                out[bound] = True
        if "default" in out and _empty_default(out["default"]):
            out.pop("default")

        if types == "object":
            self._object(node, out, path)
        elif types == "array":
            self._array(node, out, path)
        for key, value in node.items():
            if key.startswith("x-kubernetes-") and not (key == PRESERVE and value is not True):
                out[key] = value
        if types is None and INT_OR_STRING not in out:
            out[PRESERVE] = True
        return _finish(out)

    def _object(self, node: JSON, out: JSON, path: str) -> None:
        props = node.get("properties")
        extra: Any = node.get("additionalProperties")
        if props is None and extra is None and "patternProperties" in node:
            # Key patterns have no structural form: the values' schema is kept.
            values = [self.convert(v, f"{path}[*]") for v in node["patternProperties"].values()]
            extra = _merge_variants(values) if values else True
        elif isinstance(extra, dict) and extra != {}:
            extra = self.convert(extra, f"{path}[*]")
        if props:
            out["properties"] = {
                name: self.convert(schema, f"{path}.{name}") for name, schema in props.items()
            }
            required = [r for r in node.get("required", []) if r in out["properties"]]
            if required:
                out["required"] = required
            if extra is not None and extra is not False:
                out[PRESERVE] = True  # known properties plus free extra keys
        elif extra is True or extra == {} or (isinstance(extra, dict) and _is_free_form(extra)):
            out[PRESERVE] = True
        elif isinstance(extra, dict):
            out["additionalProperties"] = extra

    def _array(self, node: JSON, out: JSON, path: str) -> None:
        if "items" in node and node["items"] is not False:
            out["items"] = self.convert(node["items"], f"{path}[]")
        elif "prefixItems" in node:
            out["items"] = _merge_variants(
                [self.convert(v, f"{path}[{i}]") for i, v in enumerate(node["prefixItems"])]
            )
        else:
            out["items"] = _any_json()
        # The server forbids uniqueItems (quadratic); scalar sets are list-type "set".
        if (
            node.get("uniqueItems") is True
            and "x-kubernetes-list-type" not in node
            and out["items"].get("type") in _SCALAR_TYPES
        ):
            out["x-kubernetes-list-type"] = "set"


def _finish(node: JSON) -> JSON:
    """Normalise a converted node: drop contradictions a merge or overlay may leave."""
    if "properties" in node and "additionalProperties" in node:
        node.pop("additionalProperties")
        node[PRESERVE] = True
    if node.get(INT_OR_STRING) is True:
        node.pop("type", None)
        node.pop(PRESERVE, None)
    if "type" not in node and INT_OR_STRING not in node:
        for key in ("properties", "additionalProperties", "items", "required", "enum"):
            node.pop(key, None)
        node[PRESERVE] = True
    if "default" in node and _empty_default(node["default"]):
        node.pop("default")
    return _ordered(node)


_KEY_ORDER = {key: i for i, key in enumerate(("description", "type", *_SCALAR_KEYS[1:], "required"))}


def _ordered(node: JSON) -> JSON:
    """Keys in a stable, readable order: annotations and type first, then children."""
    return dict(sorted(node.items(), key=lambda item: _KEY_ORDER.get(item[0], len(_KEY_ORDER))))


def _merge_variants(variants: list[JSON]) -> JSON:
    """One structural node accepting (at least) every variant of a union."""
    if len(variants) == 1:
        return variants[0]
    if any(_is_free_form(v) for v in variants):
        return _any_json()
    types = {"int-or-string" if v.get(INT_OR_STRING) is True else v.get("type") for v in variants}
    if len(types) > 1:
        if types <= {"integer", "string", "int-or-string"}:
            return {INT_OR_STRING: True}
        if types == {"integer", "number"}:
            return {"type": "number"}
        return _any_json()
    if types == {"int-or-string"}:
        return {INT_OR_STRING: True}
    merged: JSON = {"type": types.pop()}
    keys: list[str] = []
    for variant in variants:
        keys.extend(k for k in variant if k not in keys and k != "type")
    for key in keys:
        present = [v[key] for v in variants if key in v]
        everywhere = len(present) == len(variants)
        if key == "properties":
            names: list[str] = []
            for props in present:
                names.extend(n for n in props if n not in names)
            merged["properties"] = {}
            for n in names:
                holders = [p[n] for p in present if n in p]
                prop = _merge_variants(holders)
                if len(holders) < len(variants) and "default" in prop:
                    # A default of one variant must not leak into the others.
                    prop = {k: v for k, v in prop.items() if k != "default"}
                merged["properties"][n] = prop
        elif key == "required":
            common = set.intersection(*(set(v.get("required", [])) for v in variants))
            required = [r for r in present[0] if r in common]
            if required:
                merged["required"] = required
        elif key == "enum":
            if everywhere:
                merged["enum"] = list(dict.fromkeys(x for values in present for x in values))
        elif key in ("items", "additionalProperties"):
            if everywhere:
                merged[key] = _merge_variants(present)
            else:
                merged[PRESERVE] = True
        elif key == PRESERVE:
            merged[PRESERVE] = True
        elif key == VALIDATIONS:
            shared = [r for r in present[0] if all(r in p for p in present)] if everywhere else []
            if shared:
                merged[VALIDATIONS] = shared
        elif everywhere and all(p == present[0] for p in present):
            merged[key] = present[0]
    if merged["type"] == "object" and any("properties" not in v for v in variants):
        # One variant is a map or a free object: the merge has to accept any key.
        merged.pop("additionalProperties", None)
        merged[PRESERVE] = True
    return _finish(merged)


def structural_schema(model_schema: JSON) -> JSON:
    """Convert a pydantic JSON schema (``model_json_schema()``) to a structural schema."""
    return _Converter(model_schema).convert(
        {k: v for k, v in model_schema.items() if k not in ("$defs", "definitions")}, "$"
    )


def _root_schema(kind: Kind) -> JSON:
    model_schema = kind.model.model_json_schema(by_alias=True, mode="validation")
    schema = structural_schema(model_schema)
    if schema.get("type") != "object" or "properties" not in schema:
        raise CRDSchemaError(f"{kind.kind}: the model's schema is not an object with properties")
    props: JSON = dict(schema["properties"])
    root_props: JSON = {
        "apiVersion": {
            "description": "APIVersion defines the versioned schema of this representation of an object.",
            "type": "string",
        },
        "kind": {
            "description": "Kind is a string value representing the REST resource this object represents.",
            "type": "string",
        },
        "metadata": {"type": "object"},
    }
    for name, value in props.items():
        if name not in root_props:
            root_props[name] = value
    required = [
        r for r in schema.get("required", []) if r not in ("apiVersion", "kind", "metadata", "status")
    ]
    if "spec" in root_props and "spec" not in required:
        required.insert(0, "spec")
    root: JSON = {}
    if "description" in schema:
        root["description"] = schema["description"]
    root["type"] = "object"
    root["properties"] = root_props
    if required:
        root["required"] = required
    if VALIDATIONS in schema:
        root[VALIDATIONS] = schema[VALIDATIONS]
    return root


def crd_for(kind: Kind) -> JSON:
    """The ``apiextensions.k8s.io/v1`` CustomResourceDefinition of ``kind``."""
    if not kind.crd:
        raise CRDSchemaError(f"{kind.kind} is a built-in kind, not a custom resource")
    names: JSON = {
        "plural": kind.plural,
        "singular": kind.singular,
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
    }
    if kind.short_names:
        names["shortNames"] = list(kind.short_names)
    if kind.categories:
        names["categories"] = list(kind.categories)
    version: JSON = {
        "name": kind.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": _root_schema(kind)},
    }
    if kind.status_subresource:
        version["subresources"] = {"status": {}}
    if kind.columns:
        version["additionalPrinterColumns"] = [_column(*column) for column in kind.columns]
    if kind.selectable_fields:
        version["selectableFields"] = [{"jsonPath": path} for path in kind.selectable_fields]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.qualified_plural,
            "labels": {"app.kubernetes.io/name": "bobrapet", "app.kubernetes.io/part-of": "bobrapet"},
        },
        "spec": {
            "group": kind.group,
            "names": names,
            "scope": "Namespaced" if kind.namespaced else "Cluster",
            "versions": [version],
        },
    }


def _column(name: str, type_: str, json_path: str, priority: int) -> JSON:
    column: JSON = {"name": name, "type": type_, "jsonPath": json_path}
    if priority:
        column["priority"] = priority
    return column


def generate_crds(kinds: Iterable[Kind] = CRD_KINDS) -> list[JSON]:
    """The CRDs of ``kinds`` (default: every custom kind, in registry order)."""
    return [crd_for(kind) for kind in kinds]


def render_crds_yaml(kinds: Iterable[Kind] = CRD_KINDS) -> str:
    """All CRDs as one multi-document YAML stream, each document starting with ``---``."""
    return yaml.safe_dump_all(
        generate_crds(kinds), sort_keys=False, explicit_start=True, allow_unicode=True, width=100
    )


def structural_problems(schema: JSON, path: str = "openAPIV3Schema") -> list[str]:
    """Every violation of the structural-schema rules in a generated schema (empty = fine).

    Checks: no ``$ref``/``$defs``/``anyOf``/``oneOf``/``allOf``/``not``; every node
    typed unless it preserves unknown fields or is int-or-string; no node with both
    ``properties`` and ``additionalProperties``; arrays have ``items``; no ``null``
    defaults; only keys the generator is allowed to emit; list-map keys exist and
    are required or defaulted.
    """
    problems: list[str] = []
    for key in schema:
        if key not in _ALLOWED_OUTPUT_KEYS and not key.startswith("x-kubernetes-"):
            problems.append(f"{path}: key {key!r} not allowed")
    typed = "type" in schema
    if not typed and schema.get(PRESERVE) is not True and schema.get(INT_OR_STRING) is not True:
        problems.append(f"{path}: no type")
    if typed and schema["type"] not in (*_SCALAR_TYPES, "object", "array"):
        problems.append(f"{path}: bad type {schema['type']!r}")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{path}: both properties and additionalProperties")
    if schema.get("type") == "array" and "items" not in schema:
        problems.append(f"{path}: array without items")
    if "default" in schema and schema["default"] is None:
        problems.append(f"{path}: null default")
    if "additionalProperties" in schema and not isinstance(schema["additionalProperties"], dict):
        problems.append(f"{path}: additionalProperties must be a schema")
    for name in schema.get("required", []):
        if name not in schema.get("properties", {}):
            problems.append(f"{path}: required {name!r} is not a property")
    if schema.get("x-kubernetes-list-type") == "map":
        item = schema.get("items", {})
        for key in schema.get("x-kubernetes-list-map-keys", []):
            prop = item.get("properties", {}).get(key)
            if prop is None:
                problems.append(f"{path}: list-map key {key!r} is not a property of the items")
            elif key not in item.get("required", []) and "default" not in prop:
                problems.append(f"{path}: list-map key {key!r} must be required or defaulted")
    for name, sub in schema.get("properties", {}).items():
        problems.extend(structural_problems(sub, f"{path}.properties[{name}]"))
    if isinstance(schema.get("items"), dict):
        problems.extend(structural_problems(schema["items"], f"{path}.items"))
    if isinstance(schema.get("additionalProperties"), dict):
        problems.extend(structural_problems(schema["additionalProperties"], f"{path}.additionalProperties"))
    return problems
