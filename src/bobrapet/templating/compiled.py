"""Compiling template texts, once, into callables (LRU-cached per environment).

Invariants:

* A text is compiled at most once per ``(text, nondeterministic)`` while it stays in the
  LRU cache; compiled objects are immutable and shared between threads.
* An expression that is a plain path (``steps.a.output.items[0].id``, ``steps['x-y'].output``)
  also carries its path, so the evaluator can walk it without running Jinja (a path written
  the simple way is even recognised without Jinja's parser); its Jinja code
  is generated only if a walk ever needs the fallback (:func:`expression_template`) — code
  generation costs about a millisecond per text, and every step of a run has its own texts.
* Every ``{% for %}`` iterable is wrapped in the loop-guard filter; ``recursive`` loops
  are refused (their recursion would bypass the guard).
* Syntax problems raise :class:`TemplateError` naming the problem and the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Template, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.parser import Parser

from bobrapet.api.expressions.environment import RANDOM_FUNCTIONS
from bobrapet.templating.environment import LOOP_GUARD, environment, unavailable_function_message
from bobrapet.templating.errors import TemplateError

_CACHE_SIZE = 1024
Segment = str | int


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    """One expression; ``result`` is stored by ``template`` in its context's ``result`` variable."""

    text: str
    nondeterministic: bool
    template: Template | None  # None for a plain path until the fallback needs it
    globals: dict[str, Any]  # the template's globals, flattened once (context creation is hot)
    root: str | None  # set (with ``segments``) when the expression is a plain path
    segments: tuple[Segment, ...]
    plain_data: bool  # the result is a variable's value as is (no normalisation needed)


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    text: str
    template: Template
    globals: dict[str, Any]
    has_loops: bool


def _syntax_error(exc: TemplateSyntaxError, text: str) -> TemplateError:
    message = exc.message or "syntax error"
    for name in RANDOM_FUNCTIONS:
        if f"No filter named '{name}'" in message or f"No test named '{name}'" in message:
            return TemplateError(unavailable_function_message(name), source=text)
    return TemplateError(f"invalid expression: {message}", source=text)


def _plain_path(expr: nodes.Node) -> tuple[str, tuple[Segment, ...]] | None:
    segments: list[Segment] = []
    cur = expr
    while isinstance(cur, nodes.Getattr | nodes.Getitem):
        if isinstance(cur, nodes.Getattr):
            segments.append(cur.attr)
        else:
            key = cur.arg.value if isinstance(cur.arg, nodes.Const) else None
            if not (type(key) is str or (type(key) is int and key >= 0)):
                return None
            segments.append(key)
        cur = cur.node
    if not isinstance(cur, nodes.Name) or cur.ctx != "load":
        return None
    segments.reverse()
    return cur.name, tuple(segments)


#: A plain path written the simple way: ``name``, then ``.attr``, ``['key']``, ``["key"]`` or
#: ``[index]`` segments (ASCII names, no escapes in keys). Anything else is left to Jinja.
_ROOT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")
_SEGMENT = re.compile(
    r"\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:'([^'\\]*)'|\"([^\"\\]*)\"|(0|[1-9][0-9]*))\s*\])"
)
#: Names Jinja does not parse as a variable where an expression starts.
_NOT_VARIABLES = frozenset(
    {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else"}
)


def _simple_path(text: str) -> tuple[str, tuple[Segment, ...]] | None:
    """The path of a plain-path expression written the simple way, without running Jinja's
    parser (the same result :func:`_plain_path` gives for it); None: ask Jinja."""
    match = _ROOT.match(text)
    if match is None or match.group(1) in _NOT_VARIABLES:
        return None
    root = match.group(1)
    segments: list[Segment] = []
    pos = match.end()
    end = len(text.rstrip())
    while pos < end:
        match = _SEGMENT.match(text, pos)
        if match is None:
            return None
        attr, single, double, index = match.groups()
        if attr is not None:
            segments.append(attr)
        elif index is not None:
            segments.append(int(index))
        else:
            segments.append(single if single is not None else double)
        pos = match.end()
    return root, tuple(segments)


def compile_expression(text: str, nondeterministic: bool) -> CompiledExpression:
    """Compile a bare expression (the inside of ``{{ }}``)."""
    return _compile_expression(text, nondeterministic, False)


def expression_template(compiled: CompiledExpression) -> CompiledExpression:
    """``compiled`` with its Jinja code generated (for a plain path that needs the fallback)."""
    if compiled.template is not None:
        return compiled
    return _compile_expression(compiled.text, compiled.nondeterministic, True)


@lru_cache(maxsize=_CACHE_SIZE)
def _compile_expression(text: str, nondeterministic: bool, generate: bool) -> CompiledExpression:
    if not generate and (simple := _simple_path(text)) is not None:
        return CompiledExpression(text, nondeterministic, None, {}, simple[0], simple[1], True)
    env = environment(nondeterministic)
    try:
        parser = Parser(env, text, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            tok = parser.stream.current
            raise TemplateSyntaxError(f"unexpected '{tok.value}' after the end of the expression", tok.lineno)
        path = _plain_path(expr)
        template: Template | None = None
        if generate or path is None:
            expr.set_environment(env)
            body: list[nodes.Node] = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
            template = env.from_string(nodes.Template(body, lineno=1))
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc, text) from None
    except RecursionError:
        raise TemplateError("expression is nested too deeply", source=text) from None
    root, segments = path if path is not None else (None, ())
    plain = path is not None or isinstance(expr, nodes.Name | nodes.Const)
    globals_ = dict(template.globals) if template is not None else {}
    return CompiledExpression(text, nondeterministic, template, globals_, root, segments, plain)


def _guard_loops(tree: nodes.Template, text: str) -> bool:
    found = False
    for loop in tree.find_all(nodes.For):
        if loop.recursive:
            raise TemplateError("recursive loops are not supported", source=text)
        loop.iter = nodes.Filter(loop.iter, LOOP_GUARD, [], [], None, None, lineno=loop.lineno)
        found = True
    return found


@lru_cache(maxsize=_CACHE_SIZE)
def compile_template(text: str, nondeterministic: bool) -> CompiledTemplate:
    """Compile a text with ``{{ }}``/``{% %}`` blocks that renders to a string."""
    env = environment(nondeterministic)
    try:
        tree = env.parse(text)
        has_loops = _guard_loops(tree, text)
        tree.set_environment(env)
        template = env.from_string(tree)
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc, text) from None
    except RecursionError:
        raise TemplateError("template is nested too deeply", source=text) from None
    return CompiledTemplate(text, template, dict(template.globals), has_loops)


def single_expression(text: str) -> str | None:
    """The inside of ``text`` when it is exactly one ``{{ expr }}`` (after trimming), else None."""
    s = text.strip()
    if len(s) < 4 or not (s.startswith("{{") and s.endswith("}}")):
        return None
    inner = s[2:-2]
    if "{{" in inner or "}}" in inner or "{%" in inner or "{#" in inner:
        return None
    if inner.startswith(("-", "+")):  # whitespace-control markers
        inner = inner[1:]
    if inner.endswith(("-", "+")):
        inner = inner[:-1]
    return inner


@lru_cache(maxsize=_CACHE_SIZE)
def compile_text(text: str, nondeterministic: bool) -> CompiledExpression | CompiledTemplate:
    """A string containing ``{{``: one expression (typed result) or a template (string result)."""
    inner = single_expression(text)
    if inner is not None:
        try:
            return compile_expression(inner, nondeterministic)
        except TemplateError as exc:
            exc.source = text
            raise
    return compile_template(text, nondeterministic)
