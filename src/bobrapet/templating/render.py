"""Rendering JSON-like values and single strings (reference §3.2, §3.4; DESIGN "Expressions").

Invariants:

* Only strings containing ``{{`` are evaluated; dict keys are never templated; every
  other value is returned as is.
* A string that is exactly one ``{{ expr }}`` (after trimming) yields the typed value;
  any other template yields a string.
* ``{"$bubuTemplate": t, "$bubuTemplateVars": v}`` (``t`` a string) is replaced by the
  result of ``t`` evaluated with ``v`` (rendered first; must be an object) merged over the
  variables.
* The input is never mutated; dicts and lists are rebuilt, typed results may share
  structure with ``variables``.
* Nesting deeper than :data:`~bobrapet.templating.results.MAX_DEPTH` is an error (this
  also stops cycles).
* ``now()`` and random helpers exist only when ``now`` is given and ``deterministic`` is
  false.
* Errors carry the field path of the failing string (``with.items[2]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bobrapet.api.expressions.environment import type_of
from bobrapet.api.expressions.walk import TEMPLATE_KEY, TEMPLATE_VARS_KEY, join_path
from bobrapet.templating.errors import TemplateError
from bobrapet.templating.evaluator import Evaluator
from bobrapet.templating.offload import OffloadedData
from bobrapet.templating.results import MAX_DEPTH, depth_error

DEFAULT_MAX_OUTPUT_BYTES = 65536


def _value(ev: Evaluator, value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is str:
        return ev.text(value) if "{{" in value else value
    if kind is dict:
        if depth >= MAX_DEPTH:
            raise depth_error()
        if type(value.get(TEMPLATE_KEY)) is str:
            return _wrapper(ev, value, depth)
        out: dict[Any, Any] = {}
        for key, item in value.items():
            try:
                out[key] = _value(ev, item, depth + 1)
            except TemplateError as exc:
                exc.trail.append(str(key))
                raise
        return out
    if kind is list:
        if depth >= MAX_DEPTH:
            raise depth_error()
        items: list[Any] = []
        for index, item in enumerate(value):
            try:
                items.append(_value(ev, item, depth + 1))
            except TemplateError as exc:
                exc.trail.append(index)
                raise
        return items
    if isinstance(value, Mapping):
        return _value(ev, dict(value), depth)
    if isinstance(value, tuple):
        return _value(ev, list(value), depth)
    return value


def _wrapper(ev: Evaluator, value: dict[str, Any], depth: int) -> Any:
    text: str = value[TEMPLATE_KEY]
    raw_vars = value.get(TEMPLATE_VARS_KEY)
    try:
        extra = _value(ev, raw_vars, depth + 1) if raw_vars is not None else {}
        if not isinstance(extra, dict):
            raise TemplateError(f"{TEMPLATE_VARS_KEY} must be an object, got {type_of(extra)}")
    except TemplateError as exc:
        exc.trail.append(TEMPLATE_VARS_KEY)
        raise
    try:
        if "{{" not in text:
            return text
        if not extra:
            return ev.text(text)
        inner = ev.derived(extra)
        inner.activate()
        try:
            return inner.text(text)
        finally:
            inner.deactivate()
    except TemplateError as exc:
        exc.trail.append(TEMPLATE_KEY)
        raise


def _field_path(base: str, trail: list[str | int]) -> str | None:
    path = base
    for key in reversed(trail):
        path = join_path(path, key)
    return path or None


def render(
    value: Any,
    variables: Mapping[str, Any],
    *,
    now: Callable[[], datetime] | None = None,
    deterministic: bool = False,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    path: str = "",
    seed: str | None = None,
    offload: OffloadedData | None = None,
) -> Any:
    """Evaluate every template string inside ``value`` (see the module invariants).

    ``path`` is the field path of ``value`` itself (e.g. ``"with"``), used in error paths.
    ``seed`` seeds the random helpers (``uuidv4()``, ``randInt``, ``random``): rendering the
    same value with the same seed gives the same result. ``offload``: how compound templates
    treat offloaded data (:mod:`bobrapet.templating.offload`).
    """
    if type(value) is str and "{{" not in value:
        return value
    ev = Evaluator(
        variables,
        now=now,
        deterministic=deterministic,
        max_output_bytes=max_output_bytes,
        seed=seed,
        offload=offload,
    )
    ev.activate()
    try:
        return _value(ev, value, 0)
    except TemplateError as exc:
        if exc.path is None:
            exc.path = _field_path(path, exc.trail)
        raise
    finally:
        ev.deactivate()


def evaluate(
    text: str,
    variables: Mapping[str, Any],
    *,
    now: Callable[[], datetime] | None = None,
    deterministic: bool = False,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    seed: str | None = None,
    offload: OffloadedData | None = None,
) -> Any:
    """One string: typed result for ``{{ expr }}``, rendered string for mixed text, else ``text``."""
    if "{{" not in text:
        return text
    ev = Evaluator(
        variables,
        now=now,
        deterministic=deterministic,
        max_output_bytes=max_output_bytes,
        seed=seed,
        offload=offload,
    )
    ev.activate()
    try:
        return ev.text(text)
    finally:
        ev.deactivate()
