"""Evaluating compiled templates against one variable map (shared by render/evaluate/conditions).

Invariants:

* The variable map is never copied or mutated; typed results may share structure with it
  (callers treat results as read-only data).
* A plain path that goes *through* an offloaded value (``{"$bubuStorageRef": ...}``)
  yields a lazy selector (the ref plus ``$bubuStoragePath``) instead of the data; any
  other use of offloaded content raises :class:`Offloaded`.
* A plain-path expression is walked directly over dicts and lists (no Jinja call), with
  the same semantics as the Jinja lookups in :mod:`bobrapet.templating.environment`:
  missing ``steps.<name>`` or a ``None`` output → :class:`Blocked`, other missing keys →
  :class:`TemplateError` naming the path. Anything else (strings, objects) runs in Jinja.
* Every failure surfaces as :class:`TemplateError` (or :class:`Blocked`) carrying the
  template text; Jinja and Python exceptions never escape.
* A rendered or computed string longer than ``max_output_bytes`` (UTF-8) is an error;
  template output is counted while it is produced, so a runaway loop stops early. Values
  read as they are from the variables (plain paths) are data, not output: no limit.
* Context variables (current ``steps``, clock, loop budget) are set for the duration of
  one call and always restored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from jinja2 import Template
from jinja2.exceptions import SecurityError, TemplateRuntimeError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import Context

from bobrapet.api.expressions.environment import RANDOM_FUNCTIONS
from bobrapet.templating.compiled import (
    CompiledExpression,
    CompiledTemplate,
    Segment,
    compile_expression,
    compile_text,
    expression_template,
)
from bobrapet.templating.environment import (
    CURRENT_NOW,
    CURRENT_RANDOM,
    CURRENT_STEPS,
    LOOP_BUDGET,
    MAX_LOOP_ITERATIONS,
    OUTPUT_KEYS,
    STORAGE_PATH_KEY,
    STORAGE_REF_KEY,
    SeededRandom,
    available_keys,
    unavailable_function_message,
)
from bobrapet.templating.errors import Blocked, TemplateError
from bobrapet.templating.offload import OffloadedData, hydrated_variables
from bobrapet.templating.results import to_data

_DATA_TYPES = (dict, list, str, int, float, bool, type(None))
_MAPPING_METHODS = frozenset({"items", "keys", "values", "get"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NO_FILTER = re.compile(r"No (?:filter|test) named '([^']+)'")
_FALLBACK = object()


def path_text(root: str, segments: tuple[Segment, ...]) -> str:
    """``steps['fetch-data'].output.items[0]`` — a path spelled as in an expression."""
    out = root
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif _IDENTIFIER.match(seg):
            out += f".{seg}"
        else:
            out += f"[{seg!r}]"
    return out


def lazy_selector(ref: Mapping[str, Any], rest: tuple[Segment, ...]) -> dict[str, Any]:
    """``ref`` narrowed to ``rest`` (``items[0].id``), for the consumer to hydrate (reference §3.2)."""
    selector = path_text("", rest).lstrip(".")
    base = ref.get(STORAGE_PATH_KEY) or ""
    if base and selector:
        selector = base + ("" if selector.startswith("[") else ".") + selector
    out = dict(ref)
    out[STORAGE_PATH_KEY] = selector or base
    return out


def as_template_error(exc: Exception, source: str) -> TemplateError:
    """A user-facing error for any exception raised while evaluating ``source``."""
    if isinstance(exc, TemplateError):
        return exc.within(source)
    if isinstance(exc, UndefinedError):
        message = exc.message or "undefined value"
    elif isinstance(exc, SecurityError):
        message = f"not allowed: {exc}"
    elif isinstance(exc, TemplateSyntaxError):
        message = f"invalid expression: {exc.message}"
    elif isinstance(exc, TemplateRuntimeError):
        match = _NO_FILTER.search(str(exc))
        if match and match.group(1) in RANDOM_FUNCTIONS:
            message = unavailable_function_message(match.group(1))
        else:
            message = str(exc)
    elif isinstance(exc, ZeroDivisionError):
        message = "division by zero"
    elif isinstance(exc, RecursionError):
        message = "evaluation is nested too deeply"
    elif isinstance(exc, MemoryError):
        message = "evaluation needs too much memory"
    elif isinstance(exc, json.JSONDecodeError):
        message = f"invalid JSON: {exc}"
    elif isinstance(exc, TypeError | ValueError | LookupError | ArithmeticError | AttributeError):
        message = str(exc) or type(exc).__name__
    else:
        message = f"evaluation failed: {type(exc).__name__}: {exc}"
    return TemplateError(message, source=source)


class Evaluator:
    """Evaluates texts against ``variables``; use :meth:`activate`/:meth:`deactivate` around calls."""

    __slots__ = (
        "_source",
        "_tokens",
        "max_output_bytes",
        "nondeterministic",
        "now",
        "offload",
        "random",
        "variables",
    )

    def __init__(
        self,
        variables: Mapping[str, Any],
        *,
        now: Callable[[], datetime] | None,
        deterministic: bool,
        max_output_bytes: int,
        seed: str | SeededRandom | None = None,
        offload: OffloadedData | None = None,
    ) -> None:
        self.variables = variables
        #: Offloaded data policy and loaded blobs (``None``: references are plain data).
        self.offload = offload
        #: The text being evaluated and whether it is a bare condition (for :meth:`context`).
        self._source: tuple[str, bool] | None = None
        self.now = None if deterministic else now
        self.nondeterministic = self.now is not None
        self.max_output_bytes = max_output_bytes
        #: Source of the random helpers (``None``: unseeded); shared with derived evaluators.
        self.random = SeededRandom(seed) if isinstance(seed, str) else seed
        self._tokens: tuple[Any, ...] = ()

    # ----------------------------------------------------------------- context

    def activate(self) -> None:
        steps = CURRENT_STEPS.set(self.variables.get("steps"))
        now = CURRENT_NOW.set(self.now)
        rng = CURRENT_RANDOM.set(self.random)
        self._tokens = (steps, now, rng)

    def deactivate(self) -> None:
        steps, now, rng = self._tokens
        CURRENT_RANDOM.reset(rng)
        CURRENT_NOW.reset(now)
        CURRENT_STEPS.reset(steps)

    def derived(self, extra: Mapping[str, Any]) -> Evaluator:
        """An evaluator over ``extra`` merged over this one's variables."""
        return Evaluator(
            {**self.variables, **extra},
            now=self.now,
            deterministic=False,
            max_output_bytes=self.max_output_bytes,
            seed=self.random,
            offload=self.offload,
        )

    # ----------------------------------------------------------------- entry points

    def text(self, text: str) -> Any:
        """A string containing ``{{``: typed result for one expression, else a rendered string."""
        self._source = (text, False)
        try:
            compiled = compile_text(text, self.nondeterministic)
            if isinstance(compiled, CompiledExpression):
                result = self.expression(compiled)
            else:
                result = self.template(compiled)
        except Exception as exc:
            raise as_template_error(exc, text) from None
        return result

    def bare_expression(self, source: str) -> Any:
        """An expression written without braces (condition fields)."""
        self._source = (source, True)
        try:
            return self.expression(compile_expression(source, self.nondeterministic))
        except Exception as exc:
            raise as_template_error(exc, source) from None

    # ----------------------------------------------------------------- evaluation

    def expression(self, compiled: CompiledExpression) -> Any:
        if compiled.root is not None:
            value = self.walk(compiled.root, compiled.segments)
            if value is not _FALLBACK:
                return value
            compiled = expression_template(compiled)
        template = compiled.template
        assert template is not None
        context = self.context(template, compiled.globals)
        for _ in template.root_render_func(context):
            pass
        result = context.vars["result"]
        if compiled.plain_data and type(result) in _DATA_TYPES:
            return result
        if type(result) is str:
            self.check_size(result)
            return result
        return to_data(result)

    def walk(self, root: str, segments: tuple[Segment, ...]) -> Any:
        """The value at ``root.segments`` over dicts/lists, or ``_FALLBACK`` for anything else."""
        try:
            cur = self.variables[root]
        except KeyError:
            return _FALLBACK
        is_steps = root == "steps"
        for i, seg in enumerate(segments):
            if type(cur) is dict or isinstance(cur, Mapping):
                if STORAGE_REF_KEY in cur and seg not in cur:
                    return lazy_selector(cur, segments[i:])
                if seg in cur:
                    cur = cur[seg]
                    if cur is None and is_steps and i == 1 and seg in OUTPUT_KEYS:
                        raise Blocked(str(segments[0]))
                    continue
                if is_steps and i == 0:
                    if seg in _MAPPING_METHODS:
                        return _FALLBACK
                    raise Blocked(str(seg))
                if is_steps and i == 1 and seg in OUTPUT_KEYS:
                    raise Blocked(str(segments[0]))
                missing = path_text(root, segments[: i + 1])
                raise TemplateError(f"{missing} is undefined: key {seg!r} not found{available_keys(cur)}")
            if type(cur) is list and type(seg) is int:
                if seg < len(cur):
                    cur = cur[seg]
                    continue
                missing = path_text(root, segments[: i + 1])
                raise TemplateError(
                    f"{missing} is undefined: index {seg} is out of range (length {len(cur)})"
                )
            return _FALLBACK
        return cur

    def context(self, template: Template, globals_: dict[str, Any]) -> Context:
        """What ``template.new_context(variables)`` builds, without re-flattening the globals.

        Jinja runs only for compound templates: with an offloaded-data policy, the data they
        read is hydrated (or refused) here (:mod:`bobrapet.templating.offload`).
        """
        variables = self.variables
        if self.offload is not None and self._source is not None:
            variables = hydrated_variables(self.offload, *self._source, variables)
            if variables is not self.variables:
                CURRENT_STEPS.set(variables.get("steps"))  # reset by deactivate()
        env = template.environment
        return env.context_class(env, {**globals_, **variables}, template.name, template.blocks)

    def template(self, compiled: CompiledTemplate) -> str:
        template = compiled.template
        limit = self.max_output_bytes
        budget = LOOP_BUDGET.set([MAX_LOOP_ITERATIONS]) if compiled.has_loops else None
        try:
            chunks: list[str] = []
            total = 0
            for chunk in template.root_render_func(self.context(template, compiled.globals)):
                total += len(chunk)
                if total > limit:
                    raise self.size_error()
                chunks.append(chunk)
        finally:
            if budget is not None:
                LOOP_BUDGET.reset(budget)
        out = "".join(chunks)
        self.check_size(out)
        return out

    def check_size(self, text: str) -> None:
        limit = self.max_output_bytes
        if len(text) > limit or (len(text) * 4 > limit and len(text.encode("utf-8")) > limit):
            raise self.size_error()

    def size_error(self) -> TemplateError:
        return TemplateError(f"rendered output is larger than the limit of {self.max_output_bytes} bytes")
