"""Turning an expression's Python result into JSON-like data.

Invariants:

* The result contains only ``dict`` (string keys), ``list``, ``str``, ``int``, ``float``,
  ``bool`` and ``None``: tuples, generators, ranges and other iterables become lists,
  dates become ISO 8601 strings, other mappings become dicts.
* Containers that are already data are returned as is (no copy); only the parts that
  change are rebuilt.
* An undefined value anywhere in the result raises its error; nesting deeper than
  :data:`MAX_DEPTH` and non-data values (functions, objects) raise :class:`TemplateError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from jinja2 import Undefined

from bobrapet.api.expressions.environment import to_string
from bobrapet.templating.errors import TemplateError

MAX_DEPTH = 128
_SCALARS = (str, int, float, bool, type(None))


def depth_error() -> TemplateError:
    return TemplateError(f"value is nested deeper than {MAX_DEPTH} levels")


def to_data(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-like data (see the module invariants)."""
    if type(value) in _SCALARS:
        return value
    if depth >= MAX_DEPTH:
        raise depth_error()
    if type(value) is dict:
        return _dict(value, depth)
    if type(value) is list:
        return _list(value, depth)
    return _convert(value, depth)


def _dict(value: dict[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] | None = None
    for i, (k, v) in enumerate(value.items()):
        nv = to_data(v, depth + 1)
        if out is None and (nv is not v or type(k) is not str):
            out = {str(kk): vv for kk, vv in list(value.items())[:i]}
        if out is not None:
            out[k if type(k) is str else to_string(k)] = nv
    return value if out is None else out


def _list(value: list[Any], depth: int) -> list[Any]:
    out: list[Any] | None = None
    for i, v in enumerate(value):
        nv = to_data(v, depth + 1)
        if out is None and nv is not v:
            out = value[:i]
        if out is not None:
            out.append(nv)
    return value if out is None else out


def _convert(value: Any, depth: int) -> Any:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, str):  # Markup and other str subclasses
        return str(value)
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return _dict(dict(value), depth)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Iterable) and not callable(value):
        return _list(list(value), depth)
    raise TemplateError(f"the expression's result is a {type(value).__name__}, not data")
