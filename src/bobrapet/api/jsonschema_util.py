"""JSON-Schema helpers: normalization (reference §3.6), compilation, validation, defaults.

Invariants:

* :func:`lift_required` turns draft-3 style property-level ``required: true`` into the
  parent's ``required`` list (``required: false`` is dropped); nothing else changes.
* :func:`normalize` = ``lift_required`` + every sub-schema ``S`` becomes
  ``{"anyOf": [S, storage-ref, configMap-ref, secret-ref, template-string]}`` so a value
  that is still a template or a reference map validates wherever any type is expected.
  Root-level keywords that must stay at the root (``$schema``, ``$id``, ``$defs``,
  ``definitions``) are kept outside the wrapper. Inputs are never mutated.
* :func:`compile_schema` returns human-readable errors (empty list = usable schema).
* :func:`validate` returns ``(path, message)`` pairs; for normalized schemas the message of
  the original branch is reported, not "is not valid under any of the given schemas".
* :func:`prepare` returns ``(lifted, normalized)`` of a schema, one shared result per exact
  schema text (so its compiled validators are reused); callers never mutate them.
* :func:`apply_defaults` returns a copy with ``default`` values filled recursively
  (``properties``, ``items``, ``allOf``); it never overwrites a present value.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012, specification_with

TEMPLATE_PATTERN = r"^\s*\$?\{\{[\s\S]+\}\}\s*$"
_TEMPLATE_RE = re.compile(TEMPLATE_PATTERN)
_MARK = "x-bubu-normalized"

STORAGE_REF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["$bubuStorageRef"],
    "properties": {
        "$bubuStorageRef": {"type": "string", "minLength": 1},
        "$bubuStoragePath": {"type": "string"},
        "$bubuStorageContentType": {"type": "string"},
        "$bubuStorageSchema": {"type": "string"},
        "$bubuStorageSchemaVersion": {"type": "string"},
    },
    "additionalProperties": False,
}
_KUBE_REF_VALUE: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": "^[^:]+:.+$"},
        {
            "type": "object",
            "required": ["name", "key"],
            "properties": {
                "name": {"type": "string"},
                "key": {"type": "string"},
                "namespace": {"type": "string"},
                "format": {"enum": ["auto", "json", "raw"]},
            },
            "additionalProperties": False,
        },
    ]
}
CONFIGMAP_REF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["$bubuConfigMapRef"],
    "properties": {"$bubuConfigMapRef": _KUBE_REF_VALUE},
    "additionalProperties": False,
}
SECRET_REF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["$bubuSecretRef"],
    "properties": {"$bubuSecretRef": _KUBE_REF_VALUE},
    "additionalProperties": False,
}
TEMPLATE_STRING_SCHEMA: dict[str, Any] = {"type": "string", "pattern": TEMPLATE_PATTERN}
STORAGE_METADATA_KEYS = (
    "$bubuStoragePath",
    "$bubuStorageContentType",
    "$bubuStorageSchema",
    "$bubuStorageSchemaVersion",
)

_SCHEMA_MAP_KEYS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_KEYS = (
    "additionalProperties",
    "items",
    "additionalItems",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
)
_SCHEMA_LIST_KEYS = ("allOf", "anyOf", "oneOf", "prefixItems")
_ROOT_ONLY = ("$schema", "$id", "$defs", "definitions")


def lift_required(schema: Any) -> Any:
    """Copy of ``schema`` with draft-3 ``required: true`` lifted into parents' ``required``."""
    if isinstance(schema, list):
        return [lift_required(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {k: lift_required(v) for k, v in value.items()}
        elif key in _SCHEMA_KEYS or key in _SCHEMA_LIST_KEYS:
            out[key] = lift_required(value)
        else:
            out[key] = copy.deepcopy(value)
    source = schema.get("properties")
    if isinstance(source, dict):
        # read the flags from the source: the recursive copies have already dropped them
        lifted = [n for n, s in source.items() if isinstance(s, dict) and s.get("required") is True]
        if lifted:
            existing = out.get("required")
            base = list(existing) if isinstance(existing, list) else []
            out["required"] = base + [n for n in lifted if n not in base]
    if isinstance(out.get("required"), bool):
        del out["required"]
    return out


def _wrap(schema: Any) -> Any:
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        return schema
    inner: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            inner[key] = {k: _wrap(v) for k, v in value.items()}
        elif key in _SCHEMA_KEYS:
            inner[key] = _wrap(value) if not isinstance(value, list) else [_wrap(v) for v in value]
        elif key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            inner[key] = [_wrap(v) for v in value]
        else:
            inner[key] = value
    if not inner:
        return inner
    return {
        _MARK: True,
        "anyOf": [
            inner,
            STORAGE_REF_SCHEMA,
            CONFIGMAP_REF_SCHEMA,
            SECRET_REF_SCHEMA,
            TEMPLATE_STRING_SCHEMA,
        ],
    }


def normalize(schema: Any) -> Any:
    """The normalized copy of ``schema`` (see module docstring)."""
    lifted = lift_required(schema)
    if not isinstance(lifted, dict):
        return lifted
    root_extra = {k: lifted[k] for k in _ROOT_ONLY if k in lifted}
    body = {k: v for k, v in lifted.items() if k not in _ROOT_ONLY}
    wrapped = _wrap(body)
    if not isinstance(wrapped, dict):
        return wrapped
    for key in ("$defs", "definitions"):
        if isinstance(root_extra.get(key), dict):
            root_extra[key] = {k: _wrap(v) for k, v in root_extra[key].items()}
    return {**root_extra, **wrapped}


def _validator_class(schema: Any) -> Any:
    if isinstance(schema, dict) and "$schema" in schema:
        return validator_for(schema, default=Draft202012Validator)
    return Draft202012Validator


_COMPILED: dict[str, list[str]] = {}


def _content_key(schema: Any) -> str | None:
    """The memo key of a schema: its exact content (key order included, so messages quoting
    a schema value are this schema's; ``1`` and ``"1"`` differ, as they do to the
    metaschema), or ``None`` when it is not plain JSON (cycles, foreign objects)."""
    try:
        json.dumps(schema)
    except (TypeError, ValueError, RecursionError):
        return None
    return repr(schema)


def compile_schema(schema: Any) -> list[str]:
    """Problems that make ``schema`` unusable (after lifting draft-3 ``required``).

    The verdict is remembered by content (bounded): admission and the template controllers
    check the same schemas, and a run checks them again on every re-apply.
    """
    if schema is None:
        return []
    if not isinstance(schema, dict | bool):
        return [f"schema must be an object or boolean, got {type(schema).__name__}"]
    key = _content_key(schema)
    if key is not None and key in _COMPILED:
        return list(_COMPILED[key])
    errors = _compile(schema)
    if key is not None:
        if len(_COMPILED) >= 256:
            _COMPILED.clear()
        _COMPILED[key] = list(errors)
    return errors


def _compile(schema: Any) -> list[str]:
    errors: list[str] = []
    try:
        lifted = lift_required(schema)
        cls = _validator_class(lifted)
        meta = cls(cls.META_SCHEMA)
        for err in sorted(meta.iter_errors(lifted), key=lambda e: list(e.absolute_path)):
            where = _format_path(err.absolute_path)
            errors.append(f"{where}: {err.message}" if where else err.message)
    except RecursionError:
        errors.append(
            "schema is nested too deeply to check; flatten it (use $defs and $ref for deep structures)"
        )
    except SchemaError as exc:  # pragma: no cover - defensive
        errors.append(str(exc))
    return errors


def _format_path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out = f"{out}.{p}" if out else str(p)
    return out


def scrub_storage_metadata(value: Any) -> Any:
    """Copy of ``value`` with storage-ref metadata keys removed from reference maps."""
    if isinstance(value, dict):
        if "$bubuStorageRef" in value:
            return {k: v for k, v in value.items() if k not in STORAGE_METADATA_KEYS}
        return {k: scrub_storage_metadata(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_storage_metadata(v) for v in value]
    return value


def _leaf_errors(err: ValidationError) -> list[ValidationError]:
    """For a normalized anyOf wrapper, descend into the original branch's errors."""
    if err.validator == "anyOf" and isinstance(err.schema, dict) and err.schema.get(_MARK):
        branch = [e for e in (err.context or []) if e.schema_path and e.schema_path[0] == 0]
        if branch:
            out: list[ValidationError] = []
            for b in branch:
                out.extend(_leaf_errors(b))
            return out
    return [err]


_VALIDATORS: dict[int, tuple[Any, Any]] = {}


def _validator(schema: Any) -> Any:
    """A (cached) validator instance for ``schema`` (keyed by identity; the schema is kept alive)."""
    hit = _VALIDATORS.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    if len(_VALIDATORS) > 512:
        _VALIDATORS.clear()
    validator = _validator_class(schema)(schema)
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


def validate(instance: Any, schema: Any) -> list[tuple[str, str]]:
    """``(path, message)`` for every violation of ``schema`` (no schema → no errors)."""
    if schema is None or schema == {}:
        return []
    try:
        validator = _validator(schema)
        if validator.is_valid(instance):
            return []
        raw = list(validator.iter_errors(instance))
    except (SchemaError, RecursionError) as exc:
        return [("", f"schema cannot be used: {exc}")]
    except Exception as exc:  # unresolvable $ref and similar
        return [("", f"schema cannot be used: {exc}")]
    result: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for err in raw:
        for leaf in _leaf_errors(err):
            item = (_format_path(leaf.absolute_path), leaf.message)
            if item not in seen:
                seen.add(item)
                result.append(item)
    result.sort()
    return result


_COMBINATORS = frozenset({"anyOf", "oneOf", "not", "contains", "if", "then", "else", "dependentSchemas"})


class Prepared(NamedTuple):
    """A schema made ready once: see :func:`prepare`."""

    lifted: Any
    normalized: Any


_PREPARED: dict[str, Prepared] = {}
_PREPARED_BY_ID: dict[int, tuple[Any, str]] = {}


def _is_placeholder(value: Any) -> bool:
    """A template string or reference map: accepted wherever a schema expects any value."""
    if isinstance(value, str):
        return _TEMPLATE_RE.match(value) is not None
    return isinstance(value, dict) and any(
        k in value for k in ("$bubuStorageRef", "$bubuConfigMapRef", "$bubuSecretRef")
    )


def prepare(schema: Any) -> Prepared:
    """``(lift_required(schema), normalize(schema))``, shared by every equal schema.

    Remembered (bounded) by content (:func:`_content_key`, as :func:`compile_schema`). Equal
    schemas get the *same* normalized object, so :func:`validate` reuses its compiled
    validator: a Story's ``inputsSchema`` is normalized and compiled once, not once per
    StoryRun. The returned schemas are shared: callers must not mutate them. A schema that
    is not plain JSON is prepared afresh each time.
    """
    hit = _PREPARED_BY_ID.get(id(schema))
    if hit is not None and hit[0] is schema:
        return _PREPARED[hit[1]]
    key = _content_key(schema)
    if key is None:
        return Prepared(lift_required(schema), normalize(schema))
    if key not in _PREPARED:
        if len(_PREPARED) > 256:
            _PREPARED.clear()
            _PREPARED_BY_ID.clear()
        _PREPARED[key] = Prepared(lift_required(schema), normalize(schema))
    if len(_PREPARED_BY_ID) > 1024:
        _PREPARED_BY_ID.clear()
    _PREPARED_BY_ID[id(schema)] = (schema, key)
    return _PREPARED[key]


def validate_templated(instance: Any, schema: Any) -> list[tuple[str, str]]:
    """Like ``validate(instance, normalize(schema))`` but fast for the common cases.

    The value is first checked against the plain (lifted) schema; errors whose value is a
    template string or a reference map are dropped (normalization would accept them). Only
    when a combinator (anyOf/oneOf/not/contains/if) is involved does it fall back to the
    fully normalized schema, so the result always equals the normalized validation.
    """
    if schema is None or schema == {}:
        return []
    lifted, normalized = prepare(schema)
    if _is_placeholder(instance):
        return []
    try:
        validator = _validator(lifted)
        if validator.is_valid(instance):
            return []
        errors = list(validator.iter_errors(instance))
    except Exception:
        return validate(instance, normalized)
    result: list[tuple[str, str]] = []
    for err in errors:
        if err.validator in _COMBINATORS:
            return validate(instance, normalized)
        if _is_placeholder(err.instance) or any(
            _is_placeholder(_at(instance, list(err.absolute_path)[:n])) for n in range(len(err.absolute_path))
        ):
            continue
        result.append((_format_path(err.absolute_path), err.message))
    return sorted(set(result))


def _at(value: Any, path: list[Any]) -> Any:
    for p in path:
        try:
            value = value[p]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def apply_defaults(instance: Any, schema: Any) -> Any:
    """Copy of ``instance`` with schema ``default`` values filled in (never overwriting)."""
    return _defaults(copy.deepcopy(instance), lift_required(schema), 0)


def apply_lifted_defaults(instance: Any, lifted: Any) -> Any:
    """:func:`apply_defaults` for a schema already lifted (``prepare(schema)[0]``)."""
    return _defaults(copy.deepcopy(instance), lifted, 0)


def _defaults(instance: Any, schema: Any, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > 64:
        return instance
    raw_props = schema.get("properties")
    props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
    if isinstance(instance, dict):
        for name, sub in props.items():
            if isinstance(sub, dict) and name not in instance and "default" in sub:
                instance[name] = copy.deepcopy(sub["default"])
    for sub in schema.get("allOf") or []:
        instance = _defaults(instance, sub, depth + 1)
    if isinstance(instance, dict):
        for name, sub in props.items():
            if name in instance:
                instance[name] = _defaults(instance[name], sub, depth + 1)
    elif isinstance(instance, list):
        items = schema.get("items")
        if isinstance(items, dict):
            instance = [_defaults(v, items, depth + 1) for v in instance]
    return instance


__all__ = [
    "CONFIGMAP_REF_SCHEMA",
    "SECRET_REF_SCHEMA",
    "STORAGE_REF_SCHEMA",
    "TEMPLATE_PATTERN",
    "Prepared",
    "apply_defaults",
    "apply_lifted_defaults",
    "compile_schema",
    "lift_required",
    "normalize",
    "prepare",
    "scrub_storage_metadata",
    "validate",
    "validate_templated",
]


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
