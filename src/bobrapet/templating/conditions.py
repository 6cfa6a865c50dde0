"""Condition fields (``if``, ``wait.until``, ``postExecution.condition``, condition steps).

Invariants:

* ``None`` or a blank text is true.
* A text containing ``{{`` is a template; any other text is a bare Jinja expression
  (``inputs.ready == true``), except the literal words ``true/yes/y/1`` and
  ``false/no/n/0`` (any case), which are their boolean.
* The result must be a bool, or a string spelling a boolean (``true|1|yes|y`` /
  ``false|0|no|n|""``, case-insensitive); anything else is a :class:`TemplateError`.
* :class:`Blocked` propagates unchanged (the caller waits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bobrapet.api.expressions.environment import to_json, type_of
from bobrapet.templating.errors import TemplateError
from bobrapet.templating.evaluator import Evaluator
from bobrapet.templating.offload import OffloadedData

_TRUE = frozenset({"true", "1", "yes", "y"})
_FALSE = frozenset({"false", "0", "no", "n", ""})


def _preview(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else to_json(value)
    text = repr(text) if isinstance(value, str) else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_boolean(result: Any, source: str | None = None) -> bool:
    """The truth of a condition's result (see the module invariants)."""
    if result is True or result is False:
        return result
    if isinstance(result, str):
        word = result.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise TemplateError(
        f"condition did not resolve to boolean, got {type_of(result)}: {_preview(result)}", source=source
    )


def evaluate_condition(
    text: str | None,
    variables: Mapping[str, Any],
    *,
    now: Callable[[], datetime] | None = None,
    deterministic: bool = False,
    seed: str | None = None,
    offload: OffloadedData | None = None,
) -> bool:
    """Evaluate a condition field to a bool (``seed``, ``offload``: as for :func:`render`)."""
    if text is None:
        return True
    source = text.strip()
    if not source:
        return True
    if "{{" not in source:
        word = source.lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    ev = Evaluator(
        variables, now=now, deterministic=deterministic, max_output_bytes=1 << 20, seed=seed, offload=offload
    )
    ev.activate()
    try:
        result = ev.text(source) if "{{" in source else ev.bare_expression(source)
    finally:
        ev.deactivate()
    return as_boolean(result, source)
