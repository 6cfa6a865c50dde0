"""Validation of EngramTemplate / ImpulseTemplate specs by their controllers (pure).

What the controllers check (reference §1.6, DESIGN "Execution"):

* ``version`` is required — "version is required";
* a template must say how to run: ``image`` (Kubernetes), ``entrypoint`` (Python engram)
  or ``command`` (any program) — "image, entrypoint or command is required";
* ImpulseTemplates run as long-lived workloads: every ``supportedModes`` entry must be
  ``deployment`` or ``statefulset``;
* every schema field must compile as JSON Schema after draft-3 property-level
  ``required: true`` is lifted (the original catalog uses it) —
  "invalid schema(s): <field>: <error>; ...". Compiling includes what the metaschema
  cannot see: every ``$ref`` must resolve inside the schema (no network) and every
  ``pattern`` / ``patternProperties`` key must be a regular expression; otherwise
  admission of every instance using the template would fail with "schema cannot be used".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012, specification_with

from bobrapet.api.jsonschema_util import compile_schema

ENGRAM_TEMPLATE_SCHEMAS = ("configSchema", "inputSchema", "outputSchema", "secretSchema")
IMPULSE_TEMPLATE_SCHEMAS = ("configSchema", "contextSchema", "secretSchema")
IMPULSE_MODES = ("deployment", "statefulset")


# Keywords whose values are schemas: maps of schemas, one schema (or a list, draft 4
# ``items``), lists of schemas. Everything else (enum, const, default, examples…) is data.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies")
_SCHEMA_ONE = (
    "additionalProperties", "items", "additionalItems", "contains", "propertyNames", "not",
    "if", "then", "else", "unevaluatedItems", "unevaluatedProperties",
)  # fmt: skip
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_ROOT_URI = "urn:bobrapet:template-schema"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _subschemas(schema: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(field path, schema object)`` for the schema and every schema nested in it."""
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        yield path, node
        for key in _SCHEMA_MAPS:
            children = node.get(key)
            if isinstance(children, dict):
                stack.extend((_join(path, f"{key}.{name}"), child) for name, child in children.items())
        for key in _SCHEMA_ONE:
            child = node.get(key)
            if isinstance(child, list):
                stack.extend((f"{_join(path, key)}[{i}]", item) for i, item in enumerate(child))
            else:
                stack.append((_join(path, key), child))
        for key in _SCHEMA_LISTS:
            children = node.get(key)
            if isinstance(children, list):
                stack.extend((f"{_join(path, key)}[{i}]", item) for i, item in enumerate(children))


def _regex_error(pattern: Any) -> str | None:
    if not isinstance(pattern, str):
        return None
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"invalid regular expression {pattern!r}: {exc}"
    return None


def usability_errors(schema: Any) -> list[str]:
    """Problems the metaschema does not catch: unresolvable ``$ref``, invalid regexes.

    ``$ref`` checks are skipped for schemas with a nested ``$id`` (their base URI changes
    below the root); remote references are unresolvable (nothing is fetched).
    """
    if not isinstance(schema, dict):
        return []
    nodes = list(_subschemas(schema))
    errors: list[str] = []
    for path, node in nodes:
        problem = _regex_error(node.get("pattern"))
        if problem:
            errors.append(f"{_join(path, 'pattern')}: {problem}")
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict):
            for pattern in patterns:
                problem = _regex_error(pattern)
                if problem:
                    errors.append(f"{_join(path, 'patternProperties')}: {problem}")
    if any(path and isinstance(node.get("$id", node.get("id")), str) for path, node in nodes):
        return errors
    specification = specification_with(str(schema.get("$schema", "")), default=DRAFT202012)
    resource = specification.create_resource(schema)
    base = resource.id() or _ROOT_URI
    resolver = Registry().with_resource(base, resource).resolver(base_uri=base)
    for path, node in nodes:
        ref = node.get("$ref")
        if not isinstance(ref, str):
            continue
        try:
            resolver.lookup(ref)
        except Unresolvable:
            errors.append(f"{_join(path, '$ref')}: cannot resolve {ref!r} within the schema")
        except Exception:  # a shape the resolver cannot crawl: no verdict here
            continue
    return errors


def schema_errors(spec: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    """``"<field>: <error>"`` for every schema field that does not compile."""
    problems: list[str] = []
    for field in fields:
        schema = spec.get(field)
        if schema is None:
            continue
        errors = compile_schema(schema) or usability_errors(schema)
        if errors:
            problems.append(f"{field}: {', '.join(errors)}")
    return problems


def validate_template(
    spec: dict[str, Any],
    *,
    schema_fields: tuple[str, ...],
    allowed_modes: tuple[str, ...] | None = None,
) -> list[str]:
    """The validation errors of a template spec (empty when valid)."""
    errors: list[str] = []
    if not spec.get("version"):
        errors.append("version is required")
    if not (spec.get("image") or spec.get("entrypoint") or spec.get("command")):
        errors.append("image, entrypoint or command is required")
    if allowed_modes is not None:
        bad = [str(m) for m in spec.get("supportedModes") or () if m not in allowed_modes]
        if bad:
            errors.append(
                f"supportedModes: {', '.join(repr(m) for m in bad)} not supported "
                f"(allowed: {', '.join(allowed_modes)})"
            )
    problems = schema_errors(spec, schema_fields)
    if problems:
        errors.append("invalid schema(s): " + "; ".join(problems))
    return errors
