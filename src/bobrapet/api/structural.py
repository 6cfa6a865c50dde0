"""Structural validation: does an object have the shape of its kind?

:func:`check` validates a wire dict through the kind's pydantic model and
returns the normalized wire dict (CRD defaults applied, absent optional fields
left out, free-form JSON kept verbatim, key order of the input kept) together
with a list of :class:`~bobrapet.api.errors.Cause`. It never raises: any input,
however malformed, yields causes. :func:`validate_model` does the same for any
wire model that is not a kind (configuration objects), returning the model.

Cause fields are wire paths with indexes (``spec.steps[2].needs``; map keys in
brackets: ``metadata.labels[app]``) and messages say what is wrong and how to
fix it (``unknown field "nedds"; did you mean "needs"?``).
"""

from __future__ import annotations

import difflib
import json
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeGuard, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from bobrapet.api.errors import Cause
from bobrapet.api.kinds import Kind
from bobrapet.api.types.base import DNS_LABEL_PATTERN, ENTRYPOINT_PATTERN

__all__ = ["check", "describe_value", "validate_model", "wire_fields"]

M = TypeVar("M", bound=BaseModel)

_PATTERN_HINTS = {
    DNS_LABEL_PATTERN: (
        "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit"
    ),
    ENTRYPOINT_PATTERN: 'must look like "package.module:callable"',
}

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean (true or false)",
    "bool_parsing": "a boolean (true or false)",
    "dict_type": "an object (a mapping of keys to values)",
    "mapping_type": "an object (a mapping of keys to values)",
    "model_type": "an object (a mapping of fields to values)",
    "model_attributes_type": "an object (a mapping of fields to values)",
    "list_type": "a list",
    "tuple_type": "a list",
    "iterable_type": "a list",
    "set_type": "a list",
}


def check(
    kind: Kind, obj: dict[str, Any], *, include_status: bool = False
) -> tuple[dict[str, Any], list[Cause]]:
    """Validate ``obj`` against ``kind``'s model.

    Returns ``(normalized, causes)``:

    * no causes: ``normalized`` is the model's wire dump (CRD defaults applied,
      nulls of typed fields dropped, free-form JSON untouched) in the input's key
      order; it shares no mutable object with ``obj``;
    * causes: ``normalized`` is the input as given (minus ``status`` unless
      ``include_status``).

    ``status`` is ignored and dropped unless ``include_status``. Only wire
    (camelCase) names are accepted, as by the Kubernetes API server; the models'
    Python attribute names are for Python callers.
    """
    if not isinstance(obj, dict):
        return obj, [Cause("", f"must be an object, got {describe_value(obj)}", "FieldValueTypeInvalid")]
    data = obj if include_status else {k: v for k, v in obj.items() if k != "status"}
    model, causes = validate_model(kind.model, data)
    if model is None:
        return data, causes
    out = model.model_dump(by_alias=True, exclude_none=True)
    if not include_status:
        out.pop("status", None)
    reordered: dict[str, Any] = _reorder(out, data)
    return reordered, []


def validate_model(model_cls: type[M], data: Any) -> tuple[M | None, list[Cause]]:
    """``data`` validated by ``model_cls``: ``(model, [])``, or ``(None, causes)`` (never raises)."""
    try:
        # Wire names only: Python attribute names (max_retries) are not accepted on the wire.
        return model_cls.model_validate(data, by_alias=True, by_name=False), []
    except ValidationError as exc:
        return None, _causes(model_cls, exc)
    except (RecursionError, ValueError, TypeError) as exc:  # pathological input (e.g. nesting)
        return None, [Cause("", f"cannot be validated: {exc}", "FieldValueInvalid")]


def _reorder(out: Any, src: Any) -> Any:
    """``out`` with dict keys in the order ``src`` has them (new keys last)."""
    if isinstance(out, dict) and isinstance(src, dict):
        result: dict[str, Any] = {}
        for key in src:
            if key in out:
                result[key] = _reorder(out[key], src[key])
        for key, value in out.items():
            if key not in result:
                result[key] = value
        return result
    if isinstance(out, list) and isinstance(src, list) and len(out) == len(src):
        return [_reorder(o, s) for o, s in zip(out, src, strict=True)]
    return out


# --------------------------------------------------------------------------- type walking


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """Strip ``Annotated``/``Optional`` layers; also report whether ``None`` was allowed."""
    nullable = False
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
            continue
        if origin is Union or origin is types.UnionType:
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != len(get_args(tp)):
                nullable = True
            if len(args) == 1:
                tp = args[0]
                continue
        return tp, nullable


def _unwrap(tp: Any) -> Any:
    return unwrap_optional(tp)[0]


def is_model(tp: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def wire_fields(model: type[BaseModel]) -> dict[str, Any]:
    """Wire name → annotation of a model's fields, in declaration order."""
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def _field_type(model: type[BaseModel], key: str) -> tuple[bool, Any]:
    for name, info in model.model_fields.items():
        if key in (info.alias, name):
            return True, info.annotation
    return False, None


def _walk(root: type[BaseModel], loc: Sequence[int | str]) -> tuple[str, Any, type[BaseModel] | None, bool]:
    """Render ``loc`` as a wire path.

    Returns ``(path, leaf type or None, model owning the last segment or None,
    last segment is a map key that failed)``.
    """
    path = ""
    cur: Any = root
    owner: type[BaseModel] | None = None
    key_error = False
    for seg in loc:
        tp = _unwrap(cur) if cur is not None else None
        origin = get_origin(tp)
        if seg == "[key]":
            key_error = True
            continue
        if isinstance(seg, int) and (origin in (list, tuple) or tp is None):
            path += f"[{seg}]"
            args = get_args(tp) if tp is not None else ()
            cur = args[0] if args else None
            owner = None
        elif is_model(tp):
            known, cur = _field_type(tp, str(seg))
            owner = tp
            path += f".{seg}" if path else str(seg)
            if not known:
                cur = None
        elif origin is dict:
            path += f"[{seg}]"
            args = get_args(tp)
            cur = args[1] if len(args) == 2 else None
            owner = None
        elif tp is None:
            path += f".{seg}" if path else str(seg)
            owner = None
        else:
            # A tag pydantic adds inside unions/validators: not part of the wire path.
            continue
    return path, cur, owner, key_error


# --------------------------------------------------------------------------- messages


def describe_value(value: Any) -> str:
    """``integer (42)``, ``string ("x")``, ``object``, ``null``: for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        text = str(value) if abs(value) < 10**30 else f"{str(value)[:12]}..."
        return f"integer ({text})"
    if isinstance(value, float):
        return f"number ({value!r})"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"string ({json.dumps(shown)})"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def _quote(value: Any) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(shown)
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _literal_values(tp: Any) -> list[str] | None:
    tp = _unwrap(tp)
    if get_origin(tp) is Literal:
        return [str(a) for a in get_args(tp)]
    return None


def _plural(n: Any, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _message(err: Any, leaf: Any, owner: type[BaseModel] | None, key_error: bool) -> tuple[str, str]:
    etype: str = err.get("type", "")
    value = err.get("input")
    ctx: dict[str, Any] = err.get("ctx") or {}
    loc: tuple[Any, ...] = tuple(err.get("loc") or ())

    if key_error:
        return f"map keys must be strings, got {describe_value(loc[-2] if len(loc) >= 2 else value)}", (
            "FieldValueTypeInvalid"
        )
    if etype == "missing":
        return "required field is missing", "FieldValueRequired"
    if etype == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        valid = list(wire_fields(owner)) if owner is not None else []
        return _unknown_field(name, valid), "FieldValueInvalid"
    if etype == "literal_error":
        values = _literal_values(leaf) or [ctx.get("expected", "")]
        message = f"must be one of: {', '.join(values)} (got {_quote(value)})"
        if isinstance(value, str) and len(values) > 1:
            close = difflib.get_close_matches(value, values, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean {json.dumps(close[0])}?"
        return message, "FieldValueNotSupported"
    if etype in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[etype]}, got {describe_value(value)}", "FieldValueTypeInvalid"
    if etype == "string_too_short":
        n = ctx.get("min_length", 1)
        if n == 1:
            return "must not be empty", "FieldValueInvalid"
        return f"must be at least {_plural(n, 'character')} long (got {len(str(value))})", "FieldValueInvalid"
    if etype == "string_too_long":
        n = ctx.get("max_length")
        return f"must be at most {_plural(n, 'character')} long (got {len(str(value))})", "FieldValueTooLong"
    if etype == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        hint = _PATTERN_HINTS.get(pattern, f"must match the pattern {pattern}")
        return f"{hint} (got {_quote(value)})", "FieldValueInvalid"
    if etype == "too_short":
        n = ctx.get("min_length", 1)
        actual = ctx.get("actual_length", 0)
        if n == 1 and actual == 0:
            return "must not be empty: give at least one item", "FieldValueRequired"
        return f"must have at least {_plural(n, 'item')} (got {actual})", "FieldValueInvalid"
    if etype == "too_long":
        n = ctx.get("max_length")
        return f"must have at most {_plural(n, 'item')} (got {ctx.get('actual_length')})", "FieldValueTooMany"
    bounds = {
        "greater_than_equal": ("greater than or equal to", "ge"),
        "greater_than": ("greater than", "gt"),
        "less_than_equal": ("less than or equal to", "le"),
        "less_than": ("less than", "lt"),
    }
    if etype in bounds:
        words, key = bounds[etype]
        return f"must be {words} {ctx.get(key)} (got {_quote(value)})", "FieldValueInvalid"
    msg = str(err.get("msg", "is invalid"))
    if etype == "value_error" and msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg, "FieldValueInvalid"


def _unknown_field(name: str, valid: list[str]) -> str:
    if not valid:
        return f"unknown field {json.dumps(name)}"
    lowered = {v.lower(): v for v in valid}
    match = lowered.get(name.lower().replace("_", "").replace("-", ""))
    if match is None:
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        match = close[0] if close else None
    if match is not None:
        return f"unknown field {json.dumps(name)}; did you mean {json.dumps(match)}?"
    return f"unknown field {json.dumps(name)}; valid fields are: {', '.join(valid)}"


def _causes(root: type[BaseModel], exc: ValidationError) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        path, leaf, owner, key_error = _walk(root, err.get("loc") or ())
        message, reason = _message(err, leaf, owner, key_error)
        if (path, message) in seen:
            continue
        seen.add((path, message))
        causes.append(Cause(field=path, message=message, reason=reason))
    return causes
