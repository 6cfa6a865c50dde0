"""``bobrapet explain``: kubectl-explain-like documentation of a kind's fields.

The text is generated from the pydantic models (field descriptions, types,
required markers, enum values, defaults, bounds), so it cannot drift from what
validation accepts; ``ACTS:`` says where a field takes effect (:mod:`bobrapet.api.acts`).
"""

from __future__ import annotations

import difflib
import json
import textwrap
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bobrapet.api.acts import BOTH, where
from bobrapet.api.kinds import Kind
from bobrapet.api.structural import is_model, unwrap_optional

__all__ = ["explain", "type_name"]

_INDENT = "    "


def type_name(tp: Any) -> str:
    """kubectl-style type name: ``string``, ``integer``, ``[]Step``, ``map[string]string``, ``Object``."""
    tp, _ = unwrap_optional(tp)
    origin = get_origin(tp)
    if tp is str:
        return "string"
    if tp is bool:
        return "boolean"
    if tp is int:
        return "integer"
    if tp is float:
        return "number"
    if tp is Any:
        return "JSON"
    if origin is Literal:
        kinds = {type(a) for a in get_args(tp)}
        return "string" if kinds == {str} else "enum"
    if origin in (list, tuple):
        args = get_args(tp)
        return f"[]{type_name(args[0]) if args else 'JSON'}"
    if origin is dict:
        args = get_args(tp)
        if len(args) == 2 and unwrap_optional(args[1])[0] is Any:
            return "Object"
        return f"map[string]{type_name(args[1]) if len(args) == 2 else 'JSON'}"
    if is_model(tp):
        return str(tp.__name__)
    return "JSON"


def _element(tp: Any) -> Any:
    """The model (if any) the next path segment descends into: through lists and maps."""
    tp, _ = unwrap_optional(tp)
    while True:
        origin = get_origin(tp)
        if origin in (list, tuple):
            args = get_args(tp)
            tp = unwrap_optional(args[0])[0] if args else None
            continue
        if origin is dict:
            args = get_args(tp)
            tp = unwrap_optional(args[1])[0] if len(args) == 2 else None
            continue
        return tp


def _wire_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {(info.alias or name): info for name, info in model.model_fields.items()}


def _enum_values(tp: Any) -> list[str] | None:
    inner = _element(tp)
    if get_origin(inner) is Literal:
        return [str(a) for a in get_args(inner)]
    return None


def _constraints(info: FieldInfo) -> list[str]:
    """``MAX LENGTH: 63``-style lines from the field's own and its type's constraints."""
    metadata = list(info.metadata)
    raw = info.annotation
    while True:
        origin = get_origin(raw)
        if origin is Annotated:
            metadata.extend(get_args(raw)[1:])
            raw = get_args(raw)[0]
        elif origin is Union or origin is types.UnionType:
            non_none = [a for a in get_args(raw) if a is not type(None)]
            if len(non_none) != 1:
                break
            raw = non_none[0]
        else:
            break
    container = get_origin(raw) in (list, tuple, dict)
    unit = "ITEMS" if container else "LENGTH"
    labels = (
        ("min_length", f"MIN {unit}"),
        ("max_length", f"MAX {unit}"),
        ("ge", "MINIMUM"),
        ("le", "MAXIMUM"),
        ("pattern", "PATTERN"),
    )
    notes: list[str] = []
    for meta in metadata:
        for attr, label in labels:
            value = getattr(meta, attr, None)
            if value is not None and f"{label}: {value}" not in notes:
                notes.append(f"{label}: {value}")
    return notes


def _default(info: FieldInfo) -> str | None:
    if info.default is PydanticUndefined or info.default is None:
        return None
    try:
        return json.dumps(info.default)
    except (TypeError, ValueError):
        return repr(info.default)


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split("\n\n")[0].split())


def _resolve(model: type[BaseModel], path: Sequence[str]) -> tuple[list[str], FieldInfo | None, Any]:
    """Follow ``path`` from ``model``; returns (wire path, last FieldInfo, its annotation)."""
    segments = [s for part in path for s in part.split(".") if s]
    current: Any = model
    walked: list[str] = []
    info: FieldInfo | None = None
    annotation: Any = model
    for seg in segments:
        target = _element(current)
        if not is_model(target):
            where = ".".join(walked)
            raise KeyError(f'field "{where}" is free-form JSON or a scalar; it has no sub-field "{seg}"')
        fields = _wire_fields(target)
        found = fields.get(seg)
        if found is None:
            by_name = {name: f for name, f in target.model_fields.items()}
            found = by_name.get(seg)
        if found is None:
            close = difflib.get_close_matches(seg, list(fields), n=1, cutoff=0.6)
            where = ".".join(walked) or "the top level"
            hint = f'; did you mean "{close[0]}"?' if close else f"; valid fields: {', '.join(fields)}"
            raise KeyError(f'field "{seg}" does not exist in {where}{hint}')
        info = found
        annotation = found.annotation
        current = annotation
        walked.append(found.alias or seg)
    return walked, info, annotation


def _acts(model: type[BaseModel], path: Sequence[str], walked: list[str]) -> str:
    """Where the field at ``path`` acts: the first field on the way that is not "both" decides."""
    segments = [s for part in path for s in part.split(".") if s]
    for depth, wire in enumerate(walked):
        owner = _element(_resolve(model, segments[:depth])[2])
        acts = where(owner if is_model(owner) else None, wire)
        if acts != BOTH:
            return acts
    return BOTH


def explain(kind: Kind, path: Sequence[str] = ()) -> str:
    """Describe ``kind`` (or the field at ``path``, wire names, e.g. ``("spec", "steps")``).

    Raises ``KeyError`` naming the closest field when a segment does not exist.
    """
    model = kind.model
    walked, info, annotation = _resolve(model, path)
    lines = [
        f"GROUP:      {kind.group or '(core)'}",
        f"KIND:       {kind.kind}",
        f"VERSION:    {kind.version}",
        "",
    ]
    if info is None:
        lines.append(f"DESCRIPTION:\n{_INDENT}{_doc(model)}")
        target: Any = model
    else:
        lines.append(f"FIELD: {'.'.join(walked)} <{type_name(annotation)}>")
        lines.append("")
        lines.append("DESCRIPTION:")
        description = info.description or ""
        lines.extend(
            textwrap.wrap(description, 90, initial_indent=_INDENT, subsequent_indent=_INDENT) or [_INDENT]
        )
        target = _element(annotation)
        if is_model(target) and _doc(target) and _doc(target) != description:
            lines.extend(textwrap.wrap(_doc(target), 90, initial_indent=_INDENT, subsequent_indent=_INDENT))
        enum = _enum_values(annotation)
        if enum:
            lines.append(f"{_INDENT}ENUM: {', '.join(enum)}")
        default = _default(info)
        if default is not None:
            lines.append(f"{_INDENT}DEFAULT: {default}")
        lines.extend(f"{_INDENT}{note}" for note in _constraints(info))
        lines.append(f"{_INDENT}ACTS: {_acts(model, path, walked)}")
    if is_model(target):
        lines.append("")
        lines.append("FIELDS:")
        for wire, field in _wire_fields(target).items():
            required = " -required-" if field.is_required() else ""
            lines.append(f"  {wire}\t<{type_name(field.annotation)}>{required}")
            first = (field.description or "").split("\n")[0]
            if first:
                lines.append(f"{_INDENT}{first}")
            acts = where(target, wire)
            if acts != BOTH:
                lines.append(f"{_INDENT}ACTS: {acts}")
            lines.append("")
        while lines and lines[-1] == "":
            lines.pop()
    return "\n".join(lines) + "\n"
