"""Static analysis of template strings (Jinja2), without evaluating them.

``analyze(text)`` parses a template (a string containing ``{{``) or, with
``condition=True`` and no ``{{``, a bare expression (``inputs.ready == true``) and returns an
:class:`Analysis`: the variable roots used, the steps referenced (and how), functions,
filters and tests called, whether ``now()``/random helpers are used, and errors with a
line/column position and the offending snippet.

Invariants:

* Dependencies come only from the Jinja AST (``Getattr``/``Getitem`` chains rooted at the
  ``steps`` variable), never from regular expressions over the text.
* ``analyze`` never raises, whatever the input; problems become :class:`ExpressionError`.
* Go ``text/template`` syntax (leading-dot roots, ``eq a b``, ``index .steps "x"``,
  ``printf``, ``and (..) (..)``) is recognised on the token stream and reported with a
  concrete Jinja rewrite where one can be derived.
* Results are cached by ``(text, condition)`` (texts up to 4 KiB) and are immutable.
"""

from __future__ import annotations

import difflib
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.lexer import Token, TokenStream
from jinja2.parser import Parser

from bobrapet.api.expressions.environment import (
    CLOCK_FUNCTIONS,
    DENIED_FUNCTIONS,
    RANDOM_FUNCTIONS,
    known_filters,
    known_functions,
    known_tests,
    make_environment,
)

#: Go template / Sprig function names used to recognise Go-style calls.
GO_FUNCTIONS: frozenset[str] = frozenset(
    {
        "and",
        "or",
        "not",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "index",
        "printf",
        "print",
        "println",
        "len",
        "slice",
        "call",
        "html",
        "js",
        "urlquery",
        "default",
        "empty",
        "coalesce",
        "ternary",
        "toJson",
        "fromJson",
        "toPrettyJson",
        "toRawJson",
        "trim",
        "upper",
        "lower",
        "title",
        "contains",
        "hasPrefix",
        "hasSuffix",
        "replace",
        "quote",
        "squote",
        "split",
        "splitList",
        "join",
        "list",
        "dict",
        "get",
        "hasKey",
        "keys",
        "first",
        "last",
        "add",
        "sub",
        "mul",
        "div",
        "mod",
        "int",
        "atoi",
        "toString",
        "b64enc",
        "b64dec",
        "sha256sum",
        "sha1sum",
        "now",
        "date",
        "typeOf",
        "kindIs",
        "hash_of",
        "type_of",
        "exists",
        "sample",
        "dig",
        "pluck",
        "include",
        "required",
        "env",
        "expandenv",
        "getHostByName",
        "cat",
        "trunc",
        "substr",
        "regexMatch",
    }
)
_GO_CONTROL: frozenset[str] = frozenset(
    {"if", "range", "with", "end", "else", "template", "block", "define", "break", "continue"}
)
_INCLUSION_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Include,
    nodes.Extends,
    nodes.Import,
    nodes.FromImport,
    nodes.Block,
)
_MAX_TEXT = 1 << 20


@dataclass(frozen=True)
class ExpressionError:
    """One problem in a template: message, 1-based line/column, and the offending text."""

    message: str
    line: int = 1
    column: int = 1
    snippet: str = ""

    def __str__(self) -> str:
        return f"{self.message} (line {self.line}, column {self.column})"


@dataclass(frozen=True)
class StepRef:
    """A reference to ``steps.<name>`` (``how='attribute'``) or ``steps['<name>']`` (``'subscript'``).

    ``path`` is the constant part of the access after the step name (``('output', 'items', 0)``).
    """

    name: str
    how: str
    path: tuple[str | int, ...]
    line: int
    column: int


@dataclass(frozen=True)
class Analysis:
    """What a template string uses. ``is_template`` is false for literal strings."""

    text: str
    is_template: bool = False
    roots: frozenset[str] = frozenset()
    root_positions: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False)
    step_refs: tuple[StepRef, ...] = ()
    dynamic_steps: bool = False
    functions: frozenset[str] = frozenset()
    filters: frozenset[str] = frozenset()
    tests: frozenset[str] = frozenset()
    uses_now: bool = False
    uses_random: bool = False
    errors: tuple[ExpressionError, ...] = ()
    extra_roots: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def step_names(self) -> frozenset[str]:
        return frozenset(r.name for r in self.step_refs)


_ENV = make_environment()
_FILTERS = known_filters()
_FUNCTIONS = known_functions()
_TESTS = known_tests()
_LOCAL_GLOBALS = frozenset({"range", "dict", "cycler", "joiner", "namespace", "loop", "true", "false"})


def analyze(text: Any, *, condition: bool = False) -> Analysis:
    """Analyse ``text``; never raises (errors are in ``Analysis.errors``)."""
    if not isinstance(text, str):
        return Analysis(text=str(text))
    if len(text) > _MAX_CACHED_TEXT:
        return _analyze_safe(text, condition)
    return _analyze_cached(text, condition)


#: Longer texts are analysed without caching, so the cache holds at most ~32 MiB of text.
_MAX_CACHED_TEXT = 4096


@lru_cache(maxsize=8192)
def _analyze_cached(text: str, condition: bool) -> Analysis:
    return _analyze_safe(text, condition)


def _analyze_safe(text: str, condition: bool) -> Analysis:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # jinja string escapes like "\\_"
            return _analyze(text, condition)
    except RecursionError:
        return Analysis(
            text=text,
            is_template=True,
            errors=(ExpressionError("expression is nested too deeply; simplify it", 1, 1, text[:80]),),
        )
    except Exception as exc:  # defensive: analysis must never crash admission
        return Analysis(
            text=text,
            is_template=True,
            errors=(ExpressionError(f"could not analyse expression: {exc}", 1, 1, text[:80]),),
        )


def is_template_text(text: str, *, condition: bool = False) -> bool:
    """Whether ``text`` is evaluated (contains ``{{``, or is a non-empty condition)."""
    return "{{" in text or (condition and text.strip() != "")


# --------------------------------------------------------------------------- tokens


@dataclass
class _Tok:
    lineno: int
    type: str
    value: str
    offset: int


def _lex(source: str, state: str | None) -> tuple[list[_Tok], TemplateSyntaxError | None, int]:
    toks: list[_Tok] = []
    pos = 0
    try:
        for lineno, ttype, value in _ENV.lexer.tokeniter(source, None, None, state):
            idx = source.find(value, pos) if value else pos
            if idx < 0:
                idx = pos
            toks.append(_Tok(lineno, ttype, value, idx))
            pos = idx + len(value)
    except TemplateSyntaxError as exc:
        return toks, exc, pos
    return toks, None, pos


def _line_col(source: str, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    start = source.rfind("\n", 0, offset) + 1
    return line, offset - start + 1


def _position_of_name(toks: list[_Tok], source: str, name: str, lineno: int) -> tuple[int, int]:
    for t in toks:
        if t.type == "name" and t.value == name and t.lineno == lineno:
            return _line_col(source, t.offset)
    for t in toks:
        if t.type == "name" and t.value == name:
            return _line_col(source, t.offset)
    return lineno, 1


# --------------------------------------------------------------------------- parsing


def _parse(source: str, state: str | None, toks: list[_Tok]) -> tuple[nodes.Node | None, int, str]:
    """Parse; on failure return (None, error offset, message)."""
    parser = Parser(_ENV, source, state=state)
    offsets: dict[int, int] = {}
    keep: list[Token] = []
    current = [0]

    def raw_iter() -> Iterator[tuple[int, str, str]]:
        for t in toks:
            current[0] = t.offset
            yield t.lineno, t.type, t.value

    def wrapped() -> Iterator[Token]:
        for tok in _ENV.lexer.wrap(raw_iter(), None, None):
            offsets[id(tok)] = current[0]
            keep.append(tok)
            yield tok

    parser.stream = TokenStream(wrapped(), None, None)
    try:
        if state == "variable":
            expr: nodes.Node = parser.parse_expression()
            if not parser.stream.current.test("eof"):
                tok = parser.stream.current
                raise TemplateSyntaxError(
                    f"unexpected {_describe(tok)} after the end of the expression", tok.lineno
                )
            return expr, 0, ""
        return parser.parse(), 0, ""
    except TemplateSyntaxError as exc:
        tok = parser.stream.current
        off = offsets.get(id(tok), len(source) if tok.type == "eof" else 0)
        return None, off, exc.message or "syntax error"


def _describe(tok: Token) -> str:
    if tok.type == "name":
        return f"name '{tok.value}'"
    if tok.type in ("string", "integer", "float"):
        return f"{tok.type} {tok.value!r}"
    return f"'{tok.value}'" if tok.value else tok.type


# --------------------------------------------------------------------------- analysis


def _analyze(text: str, condition: bool) -> Analysis:
    if "{{" not in text:
        if not condition or text.strip() == "":
            return Analysis(text=text)
        state: str | None = "variable"
    else:
        state = None
    if len(text) > _MAX_TEXT:
        return Analysis(
            text=text[:80],
            is_template=True,
            errors=(ExpressionError("template exceeds max validation size of 1048576 bytes", 1, 1),),
        )
    toks, lex_error, lex_pos = _lex(text, state)
    if lex_error is not None:
        return _syntax_failure(text, state, toks, lex_pos, lex_error.message or "syntax error")
    go_errors = _go_blocks(text, toks, state)
    if go_errors:
        return Analysis(text=text, is_template=True, errors=tuple(go_errors))
    hyphen_errors = _hyphenated_step_names(text, toks)
    if hyphen_errors:
        return Analysis(text=text, is_template=True, errors=tuple(hyphen_errors))
    fast = _fast_paths(text, toks, state)
    if fast is not None:
        return fast
    tree, err_off, err_msg = _parse(text, state, toks)
    if tree is None:
        return _syntax_failure(text, state, toks, err_off, err_msg)
    return _walk(text, tree, toks)


def _adjacent(a: _Tok, b: _Tok) -> bool:
    return a.offset + len(a.value) == b.offset


def _hyphenated_step_names(text: str, toks: list[_Tok]) -> list[ExpressionError]:
    """``steps.fetch-data`` (no spaces around ``-``) is Jinja for ``steps.fetch - data``: report it.

    Only the unspaced spelling is flagged, so real subtraction (``steps.a.output.n - 1``)
    is untouched.
    """
    errors: list[ExpressionError] = []
    sig = [t for t in toks if t.type != "whitespace"]
    for i in range(len(sig) - 4):
        root, dot, first = sig[i], sig[i + 1], sig[i + 2]
        if not (
            root.type == "name"
            and root.value == "steps"
            and dot.type == "operator"
            and dot.value == "."
            and first.type == "name"
            and _adjacent(root, dot)
            and _adjacent(dot, first)
        ):
            continue
        parts = [first.value]
        j = i + 3
        last = first
        while (
            j + 1 < len(sig)
            and sig[j].type == "operator"
            and sig[j].value == "-"
            and sig[j + 1].type in ("name", "integer")
            and _adjacent(last, sig[j])
            and _adjacent(sig[j], sig[j + 1])
        ):
            parts.append(sig[j + 1].value)
            last = sig[j + 1]
            j += 2
        if len(parts) < 2:
            continue
        name = "-".join(parts)
        line, col = _line_col(text, root.offset)
        errors.append(
            ExpressionError(
                f"step names containing '-' must be written steps['{name}'] "
                f"(steps.{name} is read as a subtraction)",
                line,
                col,
                text[root.offset : last.offset + len(last.value)],
            )
        )
    return errors


_PATH_TOKENS = frozenset({"name", "operator", "string", "integer", "whitespace", "data"})
_NOT_ROOTS = frozenset(
    {"true", "false", "none", "True", "False", "None", "not", "and", "or", "in", "is", "if"}
)


def _fast_paths(text: str, toks: list[_Tok], state: str | None) -> Analysis | None:
    """Analysis of templates made only of plain paths (``{{ steps['a'].output.x }}``), or None.

    This is a token-level parse of the same grammar Jinja uses for these expressions; anything
    else (filters, calls, operators, statements) returns None and takes the full parser.
    """
    blocks: list[list[_Tok]] = []
    cur: list[_Tok] | None = [] if state == "variable" else None
    for t in toks:
        if t.type == "variable_begin":
            cur = []
        elif t.type == "variable_end":
            if cur is None:
                return None
            blocks.append(cur)
            cur = None
        elif t.type == "whitespace":
            continue
        elif cur is None:
            if t.type != "data":
                return None
        elif t.type not in _PATH_TOKENS or t.type == "data":
            return None
        else:
            cur.append(t)
    if cur is not None:
        if state != "variable":
            return None  # unterminated block: let the parser report it
        blocks.append(cur)
    roots: dict[str, tuple[int, int]] = {}
    refs: list[StepRef] = []
    for block in blocks:
        parsed = _simple_path(block)
        if parsed is None:
            return None
        root, segments = parsed
        roots.setdefault(root.value, _line_col(text, root.offset))
        if root.value == "steps":
            if not segments:
                return None
            (first, how, first_tok), rest = segments[0], segments[1:]
            if not isinstance(first, str):
                return None
            col = _line_col(text, (first_tok if how == "attribute" else root).offset)[1]
            refs.append(StepRef(first, how, tuple(s for s, _, _ in rest), first_tok.lineno, col))
    return Analysis(
        text=text,
        is_template=True,
        roots=frozenset(roots),
        root_positions=roots,
        step_refs=tuple(refs),
        dynamic_steps="steps" in roots and not refs,
    )


def _simple_path(block: list[_Tok]) -> tuple[_Tok, list[tuple[str | int, str, _Tok]]] | None:
    if not block or block[0].type != "name" or block[0].value in _NOT_ROOTS:
        return None
    root = block[0]
    if root.value in DENIED_FUNCTIONS or root.value in _FUNCTIONS:
        return None
    segments: list[tuple[str | int, str, _Tok]] = []
    i = 1
    while i < len(block):
        t = block[i]
        if t.type == "operator" and t.value == "." and i + 1 < len(block) and block[i + 1].type == "name":
            name = block[i + 1].value
            if name.startswith("_"):
                return None
            segments.append((name, "attribute", block[i + 1]))
            i += 2
        elif (
            t.type == "operator"
            and t.value == "["
            and i + 2 < len(block)
            and block[i + 2].type == "operator"
            and block[i + 2].value == "]"
        ):
            key = block[i + 1]
            if key.type == "integer" and key.value.isdigit():
                segments.append((int(key.value), "subscript", key))
            elif key.type == "string" and "\\" not in key.value and len(key.value) >= 2:
                segments.append((key.value[1:-1], "subscript", key))
            else:
                return None
            i += 3
        else:
            return None
    return root, segments


def _go_blocks(text: str, toks: list[_Tok], state: str | None) -> list[ExpressionError]:
    """Go-template errors for every ``{{ }}`` block (or the whole expression) written in Go style."""
    blocks: list[tuple[int, int, list[_Tok]]] = []
    if state == "variable":
        blocks.append((0, len(text), toks))
    else:
        start: int | None = None
        for i, t in enumerate(toks):
            if t.type == "variable_begin":
                start = i
            elif t.type == "variable_end" and start is not None:
                blocks.append((toks[start].offset, t.offset + len(t.value), toks[start + 1 : i]))
                start = None
    errors: list[ExpressionError] = []
    for begin, end, inner in blocks:
        if _looks_go(inner):
            block = text[begin:end]
            hint = go_template_hint(block, braces=state is None)
            if hint is not None:
                line, col = _line_col(text, begin)
                errors.append(ExpressionError(hint, line, col, block))
    return errors


def _syntax_failure(text: str, state: str | None, toks: list[_Tok], offset: int, message: str) -> Analysis:
    block, block_off = _enclosing_block(text, state, offset)
    go = go_template_hint(block, braces=state is None)
    if go is not None:
        line, col = _line_col(text, block_off)
        return Analysis(text=text, is_template=True, errors=(ExpressionError(go, line, col, block),))
    line, col = _line_col(text, offset)
    snippet = text[offset : offset + 40] if offset < len(text) else text[max(0, offset - 40) :]
    msg = f"invalid expression: {message}"
    if snippet:
        msg += f" near {snippet.splitlines()[0] if snippet.strip() else snippet!r}"
    return Analysis(text=text, is_template=True, errors=(ExpressionError(msg, line, col, snippet),))


def _enclosing_block(text: str, state: str | None, offset: int) -> tuple[str, int]:
    """The ``{{ ... }}`` (or ``{% ... %}``) block around ``offset``; the whole text for expressions."""
    if state == "variable":
        return text, 0
    best = -1
    for opener in ("{{", "{%"):
        idx = text.rfind(opener, 0, min(len(text), offset + 2))
        best = max(best, idx)
    if best < 0:
        return text, 0
    closer = "}}" if text.startswith("{{", best) else "%}"
    end = text.find(closer, best + 2)
    end = len(text) if end < 0 else end + 2
    return text[best:end], best


class _Walker:
    def __init__(self, text: str, toks: list[_Tok]) -> None:
        self.text = text
        self.toks = toks
        self.locals: set[str] = set()
        self.roots: dict[str, tuple[int, int]] = {}
        self._index: dict[tuple[str, int], int] | None = None
        self.step_refs: list[StepRef] = []
        self.dynamic_steps = False
        self.functions: set[str] = set()
        self.filters: set[str] = set()
        self.tests: set[str] = set()
        self.uses_now = False
        self.uses_random = False
        self.errors: list[ExpressionError] = []

    def pos(self, name: str, lineno: int) -> tuple[int, int]:
        if self._index is None:
            self._index = {}
            for t in self.toks:
                if t.type == "name":
                    self._index.setdefault((t.value, t.lineno), t.offset)
                    self._index.setdefault((t.value, 0), t.offset)
        off = self._index.get((name, lineno), self._index.get((name, 0)))
        return _line_col(self.text, off) if off is not None else (lineno, 1)

    def error(self, message: str, name: str, lineno: int) -> None:
        line, col = self.pos(name, lineno)
        self.errors.append(ExpressionError(message, line, col, name))

    def collect_locals(self, tree: nodes.Node) -> None:
        for n in tree.find_all(nodes.Name):
            if n.ctx in ("store", "param"):
                self.locals.add(n.name)
        for m in tree.find_all(nodes.Macro):
            self.locals.add(m.name)

    def visit(self, node: nodes.Node) -> None:
        if isinstance(node, _INCLUSION_NODES):
            kind = type(node).__name__.lower()
            self.error(f"template inclusion is not supported ({kind})", kind, node.lineno)
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            self.visit_chain(node)
            return
        if isinstance(node, nodes.Name):
            self.visit_name(node)
            return
        if isinstance(node, nodes.Filter | nodes.Test):
            self.visit_filter_or_test(node)
        if isinstance(node, nodes.Call):
            self.visit_call(node)
        for child in node.iter_child_nodes():
            self.visit(child)

    def visit_name(self, node: nodes.Name) -> None:
        if node.ctx != "load" or node.name in self.locals:
            return
        if node.name in DENIED_FUNCTIONS:
            self.error(f"function '{node.name}' is not allowed in templates", node.name, node.lineno)
            return
        if node.name in _FUNCTIONS or node.name in _LOCAL_GLOBALS or node.name in ("none", "None"):
            return
        self.roots.setdefault(node.name, self.pos(node.name, node.lineno))

    def visit_filter_or_test(self, node: nodes.Filter | nodes.Test) -> None:
        name = node.name
        is_filter = isinstance(node, nodes.Filter)
        what = "filter" if is_filter else "test"
        (self.filters if is_filter else self.tests).add(name)
        if name in DENIED_FUNCTIONS:
            self.error(f"function '{name}' is not allowed in templates", name, node.lineno)
            return
        if name in RANDOM_FUNCTIONS:
            self.uses_random = True
        if name in CLOCK_FUNCTIONS:
            self.uses_now = True
        known = _FILTERS if is_filter else _TESTS
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            self.error(f"unknown {what} '{name}'{hint}", name, node.lineno)

    def visit_call(self, node: nodes.Call) -> None:
        target = node.node
        if not isinstance(target, nodes.Name):
            return
        name = target.name
        if name in self.locals:
            return
        self.functions.add(name)
        if name in DENIED_FUNCTIONS:
            return  # reported by visit_name
        if name in CLOCK_FUNCTIONS:
            self.uses_now = True
        if name in RANDOM_FUNCTIONS:
            self.uses_random = True
        if name not in _FUNCTIONS and name not in _LOCAL_GLOBALS:
            known = sorted(_FUNCTIONS | {"range", "dict"})
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            self.error(f"unknown function '{name}'{hint}", name, target.lineno)
            self.roots.pop(name, None)

    def visit_chain(self, node: nodes.Getattr | nodes.Getitem) -> None:
        segments: list[tuple[str | int | None, str]] = []
        dynamic_args: list[nodes.Node] = []
        cur: nodes.Node = node
        while isinstance(cur, nodes.Getattr | nodes.Getitem):
            if isinstance(cur, nodes.Getattr):
                if cur.attr.startswith("_"):
                    self.error(
                        f"access to private attribute '{cur.attr}' is not allowed", cur.attr, cur.lineno
                    )
                segments.append((cur.attr, "attribute"))
            else:
                arg = cur.arg
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str | int):
                    segments.append((arg.value, "subscript"))
                else:
                    segments.append((None, "subscript"))
                    dynamic_args.append(arg)
            cur = cur.node
        segments.reverse()
        base = cur
        is_steps = isinstance(base, nodes.Name) and base.name == "steps" and base.ctx == "load"
        if is_steps and "steps" not in self.locals:
            first, how = segments[0]
            if isinstance(first, str):
                path: list[str | int] = []
                for seg, _ in segments[1:]:
                    if seg is None:
                        break
                    path.append(seg)
                _, col = self.pos(first if how == "attribute" else "steps", base.lineno)
                self.step_refs.append(StepRef(first, how, tuple(path), base.lineno, col))
            else:
                self.dynamic_steps = True
        self.visit(base)
        for dyn in dynamic_args:
            self.visit(dyn)


def _walk(text: str, tree: nodes.Node, toks: list[_Tok]) -> Analysis:
    w = _Walker(text, toks)
    w.collect_locals(tree)
    w.visit(tree)
    if "steps" in w.roots and not w.step_refs:
        w.dynamic_steps = True
    # a bare `steps` used as a whole (e.g. `steps | toJson`) depends on every step
    return Analysis(
        text=text,
        is_template=True,
        roots=frozenset(w.roots),
        root_positions=dict(w.roots),
        step_refs=tuple(w.step_refs),
        dynamic_steps=w.dynamic_steps,
        functions=frozenset(w.functions),
        filters=frozenset(w.filters),
        tests=frozenset(w.tests),
        uses_now=w.uses_now,
        uses_random=w.uses_random,
        errors=tuple(w.errors),
    )


# --------------------------------------------------------------------------- Go templates


def go_template_hint(block: str, *, braces: bool) -> str | None:
    """If ``block`` looks like Go ``text/template``, the error message with a Jinja rewrite."""
    inner = block
    if braces:
        inner = block.strip()
        if inner.startswith("{{"):
            inner = inner[2:]
        if inner.endswith("}}"):
            inner = inner[:-2]
        inner = inner.strip().removeprefix("-").removesuffix("-").strip()
        if inner.startswith("/*"):
            return (
                f'Go-template comments are not supported: "{block.strip()}" — write a Jinja '
                'comment instead, e.g. "{# note #}"'
            )
    inner = _GO_ROOT_VAR.sub(r"\1.", inner)  # `$.inputs.a` is `.inputs.a` at the top level
    toks, lex_error, _ = _lex(inner, "variable")
    sig = [t for t in toks if t.type != "whitespace"]
    go_like = lex_error is not None and ("$" in inner or "`" in inner) and _looks_go_text(inner)
    go_like = go_like or _looks_go(toks)
    if not go_like:
        return None
    suggestion: str | None = None
    shown = block.strip()
    if sig and sig[0].type == "name" and sig[0].value in _GO_CONTROL:
        return (
            f'Go-template syntax is not supported: "{shown}" — write Jinja statements instead, '
            'e.g. "{% if inputs.flag %}...{% endif %}" or "{% for item in inputs.items %}...{% endfor %}"'
        )
    if lex_error is None:
        try:
            suggestion = _GoConverter(sig).convert()
        except _NotGo:
            suggestion = None
    if suggestion is not None and not _valid_jinja(suggestion):
        suggestion = None  # never suggest a rewrite that would itself be rejected
    if suggestion is None and ":=" in inner:
        return (
            f'Go-template syntax is not supported: "{shown}" — Jinja has no $variables; '
            'assign with a statement instead, e.g. "{% set x = inputs.a %}{{ x }}"'
        )
    if suggestion is None:
        example = "{{ inputs.a == 'x' }}" if braces else "inputs.a == 'x'"
        return (
            f'Go-template syntax is not supported: "{shown}" — write Jinja instead, '
            f'e.g. "{example}" (no leading dots; operators instead of eq/ne/and/or; '
            f"steps['x'] instead of index)"
        )
    rewritten = "{{ " + suggestion + " }}" if braces else suggestion
    return f'Go-template syntax is not supported: "{shown}" — write Jinja instead, e.g. "{rewritten}"'


def _valid_jinja(expr: str) -> bool:
    """Whether ``expr`` is a Jinja expression that analysis accepts (no Go style, known names)."""
    toks, lex_error, _ = _lex(expr, "variable")
    if lex_error is not None or _looks_go(toks):
        return False
    tree, _, _ = _parse(expr, "variable", toks)
    if tree is None:
        return False
    walker = _Walker(expr, toks)
    walker.collect_locals(tree)
    walker.visit(tree)
    return not walker.errors


def _looks_go_text(inner: str) -> bool:
    stripped = inner.strip()
    return stripped.startswith("$") or stripped.startswith(".") or ":=" in stripped or " $" in stripped


def _looks_go(toks: list[_Tok]) -> bool:
    sig: list[tuple[_Tok, bool]] = []  # (token, preceded by whitespace)
    ws = True
    for t in toks:
        if t.type == "whitespace":
            ws = True
            continue
        sig.append((t, ws))
        ws = False
    if len(sig) == 1 and sig[0][0].type == "name" and sig[0][0].value in ("end", "else"):
        return True
    for i, (t, spaced) in enumerate(sig):
        prev = sig[i - 1][0] if i > 0 else None
        starts_operand = prev is None or (prev.type == "operator" and prev.value in "(|,") or spaced
        if t.type == "operator" and t.value == "." and starts_operand:
            nxt = sig[i + 1][0] if i + 1 < len(sig) else None
            names_follow = nxt is None or nxt.type == "name" or (nxt.type == "operator" and nxt.value == ")")
            if names_follow and (prev is None or prev.type != "name" or spaced):
                return True
        at_command_start = prev is None or (prev.type == "operator" and prev.value in "(|")
        if t.type == "name" and at_command_start and i + 1 < len(sig):
            nxt, nxt_spaced = sig[i + 1]
            if prev is None and t.value in _GO_CONTROL:
                return True
            operand = nxt.type in ("name", "string", "integer", "float") or (
                nxt.type == "operator" and nxt.value in "(."
            )
            if nxt_spaced and operand and t.value in GO_FUNCTIONS:
                if t.value == "not" and not (nxt.type == "operator" and nxt.value in "(."):
                    continue
                return True
    return False


_GO_ROOT_VAR = re.compile(r"(^|[\s(])\$\.")


class _NotGo(Exception):
    pass


_SIMPLE_FILTERS = ("upper", "lower", "trim", "toJson", "b64enc", "b64dec", "sha256sum", "first", "last")
_GO_OPS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


class _GoConverter:
    """Rewrite a Go template pipeline (as Jinja lexer tokens) into a Jinja expression."""

    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        t = self.peek()
        if t is None:
            raise _NotGo
        self.i += 1
        return t

    def convert(self) -> str:
        expr, _ = self.pipeline()
        if self.peek() is not None:
            raise _NotGo
        return expr

    def pipeline(self) -> tuple[str, bool]:
        expr, atomic = self.command(None)
        while (t := self.peek()) is not None and t.type == "operator" and t.value == "|":
            self.take()
            expr, atomic = self.command((expr, atomic))
        return expr, atomic

    def command(self, piped: tuple[str, bool] | None) -> tuple[str, bool]:
        head = self.peek()
        if head is None:
            raise _NotGo
        if head.type == "name" and head.value in GO_FUNCTIONS | set(_GO_OPS):
            self.take()
            args: list[tuple[str, bool]] = []
            while self.at_operand():
                args.append(self.operand())
            if piped is not None:
                args.append(piped)
            return self.call(head.value, args)
        operands = []
        while self.at_operand():
            operands.append(self.operand())
        if len(operands) != 1 or piped is not None:
            raise _NotGo
        return operands[0]

    def at_operand(self) -> bool:
        t = self.peek()
        if t is None:
            return False
        if t.type in ("name", "string", "integer", "float"):
            return True
        return t.type == "operator" and t.value in "(."

    def operand(self) -> tuple[str, bool]:
        t = self.take()
        if t.type == "operator" and t.value == "(":
            inner, atomic = self.pipeline()
            close = self.take()
            if close.value != ")":
                raise _NotGo
            base = inner if atomic else f"({inner})"
            return self.fields(base), True
        if t.type == "operator" and t.value == ".":
            nxt = self.peek()
            if nxt is None or nxt.type != "name" or not _adjacent(t, nxt):
                return "inputs", True
            return self.fields(""), True
        if t.type == "string":
            return _jinja_string(t.value), True
        if t.type in ("integer", "float"):
            return t.value, True
        if t.type == "name":
            if t.value in ("true", "false", "nil"):
                return {"nil": "none"}.get(t.value, t.value), True
            return self.fields(t.value), True
        raise _NotGo

    def fields(self, base: str) -> str:
        """A field chain ``.a.b-c.0`` glued to the previous token (a space ends the operand)."""
        out = base
        if base == "":
            out = self.segment(self.take())
            if out.startswith("'"):
                raise _NotGo  # `.fetch-data` at the root has no direct Jinja spelling
        while (t := self.peek()) is not None and t.type == "operator" and t.value == ".":
            nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
            if (
                nxt is None
                or nxt.type not in ("name", "integer")
                or not _adjacent(self.toks[self.i - 1], t)
                or not _adjacent(t, nxt)
            ):
                break
            self.i += 2
            key = self.segment(nxt)
            if key.startswith("'"):
                out += f"[{key}]"
            else:
                out += f".{key}" if nxt.type == "name" else f"[{key}]"
        return out

    def segment(self, first: _Tok) -> str:
        """A field name, joining an unspaced ``fetch-data`` into the subscript ``'fetch-data'``."""
        parts = [first.value]
        last = first
        while (
            self.i + 1 < len(self.toks)
            and self.toks[self.i].type == "operator"
            and self.toks[self.i].value == "-"
            and self.toks[self.i + 1].type in ("name", "integer")
            and _adjacent(last, self.toks[self.i])
            and _adjacent(self.toks[self.i], self.toks[self.i + 1])
        ):
            last = self.toks[self.i + 1]
            parts.append(last.value)
            self.i += 2
        return parts[0] if len(parts) == 1 else "'" + "-".join(parts) + "'"

    @staticmethod
    def call(name: str, args: list[tuple[str, bool]]) -> tuple[str, bool]:
        def p(arg: tuple[str, bool]) -> str:
            return arg[0] if arg[1] else f"({arg[0]})"

        if name in _GO_OPS and len(args) == 2:
            return f"{p(args[0])} {_GO_OPS[name]} {p(args[1])}", False
        if name == "eq" and len(args) > 2:
            return f"{p(args[0])} in [{', '.join(a[0] for a in args[1:])}]", False
        if name in ("and", "or") and len(args) >= 2:
            return f" {name} ".join(p(a) for a in args), False
        if name == "not" and len(args) == 1:
            return f"not {p(args[0])}", False
        if name == "index" and len(args) >= 2:
            out = p(args[0])
            for key in args[1:]:
                out += f"[{key[0]}]"
            return out, True
        if name == "len" and len(args) == 1:
            return f"{p(args[0])} | length", False
        if name == "printf" and args:
            rest = ", ".join(a[0] for a in args[1:])
            return f"{p(args[0])} | format({rest})", False
        if name == "default" and len(args) == 2:
            return f"{p(args[1])} | default({args[0][0]})", False
        if name in ("print", "toString") and len(args) == 1:
            return f"{p(args[0])} | string", False
        if name in _SIMPLE_FILTERS and len(args) == 1:
            return f"{p(args[0])} | {name}", False
        if name == "hasKey" and len(args) == 2:
            return f"{p(args[1])} in {p(args[0])}", False
        if name == "contains" and len(args) == 2:
            return f"{p(args[0])} in {p(args[1])}", False
        if name in ("hasPrefix", "hasSuffix") and len(args) == 2:
            method = "startswith" if name == "hasPrefix" else "endswith"
            return f"{p(args[1])}.{method}({args[0][0]})", True
        if name in DENIED_FUNCTIONS:
            raise _NotGo
        return f"{name}({', '.join(a[0] for a in args)})", True


def _jinja_string(raw: str) -> str:
    try:
        value = json.loads(raw) if raw.startswith('"') else raw[1:-1]
    except ValueError:
        value = raw[1:-1]
    if not isinstance(value, str):
        value = raw[1:-1]
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
