"""The subset of kubectl's JSONPath templates that ``get -o jsonpath=…`` and ``--sort-by`` accept.

A template is text with ``{…}`` expressions. Supported:

* paths from the current object (inside ``range``: the item; ``$`` is the root):
  ``{.metadata.name}``, ``{.items[*].metadata.name}``,
  ``{.items[0].status.phase}``, ``{.items[-1]}``, ``{.items[1:3]}``, ``{.spec.*}``; keys
  with dots or slashes as ``{.metadata.labels['bubustack.io/story-name']}`` or with
  escaped dots (``{.metadata.labels.bubustack\\.io/story-name}``); ``@`` / ``$`` for
  the current / root object;
* ``{range .items[*]}…{end}`` (nestable): the body once per result, ``@`` bound to it;
* string literals: ``{"\\n"}``, ``{"\\t"}``, ``{","}``.

Anything else (filters ``[?(…)]``, recursive descent ``..``, functions) is rejected with
:class:`JsonPathError` naming the unsupported part. Rendering follows kubectl: the results
of one expression are joined by a space; strings print raw, booleans as ``true``/``false``,
objects and lists as compact JSON; a missing field prints nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_MISSING = object()


class JsonPathError(ValueError):
    """A template outside the supported subset, or malformed."""


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class _Key:
    name: str


@dataclass(frozen=True)
class _Index:
    start: int | None
    stop: int | None
    single: bool  # [n] (one element) versus a slice or [*]


_Segment = _Key | _Index


def _parse_brackets(text: str, i: int, expr: str) -> tuple[_Segment, int]:
    end = text.find("]", i)
    if end < 0:
        raise JsonPathError(f'"{expr}": unclosed "["')
    inner = text[i + 1 : end].strip()
    if inner.startswith("?") or inner.startswith("("):
        raise JsonPathError(
            f'"{expr}": filters like [?(...)] are not supported; select with -l or --field-selector'
        )
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return _Key(inner[1:-1]), end + 1
    if inner == "*":
        return _Index(None, None, False), end + 1
    if re.fullmatch(r"-?\d+", inner):
        return _Index(int(inner), None, True), end + 1
    match = re.fullmatch(r"(-?\d+)?:(-?\d+)?", inner)
    if match:
        start, stop = match.groups()
        return _Index(int(start) if start else None, int(stop) if stop else None, False), end + 1
    raise JsonPathError(f"\"{expr}\": unsupported subscript [{inner}] (use [N], [A:B], [*] or ['key'])")


def parse_path(expr: str) -> tuple[bool, list[_Segment]]:
    """``(from_root, segments)`` of a path such as ``.items[*].metadata.name``.

    Like kubectl, a path is relative to the current object (the ``range`` item, at the top
    the object itself); only ``$`` starts at the root.
    """
    text = expr.strip()
    from_root = text.startswith("$")
    if text.startswith(("$", "@")):
        text = text[1:]
    if ".." in text.replace("\\.", ""):
        raise JsonPathError(f'"{expr}": recursive descent ("..") is not supported')
    segments: list[_Segment] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == ".":
            i += 1
            name = []
            while i < len(text) and text[i] not in ".[":
                if text[i] == "\\" and i + 1 < len(text):
                    i += 1
                name.append(text[i])
                i += 1
            key = "".join(name)
            if not key:
                if i >= len(text):
                    break  # "{.}": the object itself
                continue
            if key == "*":
                segments.append(_Index(None, None, False))
            elif re.search(r"[()\s]", key):
                raise JsonPathError(f'"{expr}": unsupported expression "{key}" (functions are not supported)')
            else:
                segments.append(_Key(key))
        elif char == "[":
            segment, i = _parse_brackets(text, i, expr)
            segments.append(segment)
        else:
            raise JsonPathError(
                f'"{expr}": expected "." or "[" at "{text[i:]}"; paths look like .metadata.name'
            )
    return from_root, segments


def _step(value: Any, segment: _Segment) -> Iterator[Any]:
    if isinstance(segment, _Key):
        if isinstance(value, dict) and segment.name in value:
            yield value[segment.name]
        return
    if isinstance(value, dict) and not segment.single and segment.start is None and segment.stop is None:
        yield from value.values()  # [*] / .* over an object: its values
        return
    if not isinstance(value, list):
        return
    if segment.single:
        assert segment.start is not None
        if -len(value) <= segment.start < len(value):
            yield value[segment.start]
        return
    yield from value[segment.start : segment.stop]


def evaluate(expr: str, root: Any, current: Any = _MISSING) -> list[Any]:
    """Every value ``expr`` selects (``@`` is ``current``, the root object when not given)."""
    from_root, segments = parse_path(expr)
    values = [root if from_root or current is _MISSING else current]
    for segment in segments:
        values = [found for value in values for found in _step(value, segment)]
    return values


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Expr:
    path: str


@dataclass(frozen=True)
class _Range:
    path: str
    body: list[_Node]


_Node = _Text | _Expr | _Range

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _literal(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def _tokens(template: str) -> Iterator[tuple[str, str]]:
    """``("text", …)`` and ``("expr", …)`` pieces of ``template``."""
    i = 0
    while i < len(template):
        start = template.find("{", i)
        if start < 0:
            yield "text", template[i:]
            return
        if start > i:
            yield "text", template[i:start]
        end, quote = start + 1, None
        while end < len(template) and (template[end] != "}" or quote):
            if template[end] == "\\":
                end += 1
            elif template[end] in "'\"":
                quote = None if quote == template[end] else (quote or template[end])
            end += 1
        if end >= len(template):
            raise JsonPathError(f'"{template}": unclosed "{{"')
        yield "expr", template[start + 1 : end].strip()
        i = end + 1


def parse_template(template: str) -> list[_Node]:
    """The template as a tree; raises :class:`JsonPathError` when outside the subset."""
    stack: list[tuple[str | None, list[_Node]]] = [(None, [])]
    for kind, value in _tokens(template):
        body = stack[-1][1]
        if kind == "text":
            body.append(_Text(value))
        elif value == "end":
            if len(stack) == 1:
                raise JsonPathError(f'"{template}": {{end}} without {{range …}}')
            path, nodes = stack.pop()
            assert path is not None
            stack[-1][1].append(_Range(path, nodes))
        elif value.startswith("range ") or value == "range":
            path = value[len("range") :].strip()
            if not path:
                raise JsonPathError(f'"{template}": {{range}} needs a path, e.g. {{range .items[*]}}')
            parse_path(path)
            stack.append((path, []))
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            body.append(_Text(_literal(value[1:-1])))
        elif value.startswith((".", "@", "$", "[")):
            parse_path(value)
            body.append(_Expr(value))
        else:
            raise JsonPathError(
                f'"{template}": unsupported expression {{{value}}}; supported: {{.path}}, '
                '{range .path}…{end} and string literals such as {"\\n"}'
            )
    if len(stack) != 1:
        raise JsonPathError(f'"{template}": {{range …}} without {{end}}')
    return stack[0][1]


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _render(nodes: list[_Node], root: Any, current: Any, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Expr):
            out.append(" ".join(format_value(v) for v in evaluate(node.path, root, current)))
        else:
            for item in evaluate(node.path, root, current):
                _render(node.body, root, item, out)


def render(template: str, obj: Any) -> str:
    """``template`` applied to ``obj`` (see the module docstring)."""
    out: list[str] = []
    _render(parse_template(template), obj, obj, out)
    return "".join(out)


def sort_key_path(expr: str) -> str:
    """The path of a ``--sort-by`` value: ``.a.b`` or ``{.a.b}``; one path, no ``range``."""
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if not text.startswith((".", "[", "@", "$")):
        raise JsonPathError(f'--sort-by "{expr}": expected a JSONPath such as .metadata.creationTimestamp')
    parse_path(text)
    return text
