"""From one delivery to the inputs of the StoryRun it starts (``Impulse.spec.mapping``).

With a mapping, the inputs are the mapping rendered with the project's templates over the
delivery's variables: ``body``, ``headers``, ``query`` (HTTP impulses; ``{}`` otherwise),
``key`` (the delivery key or ``null``) and any extras of the impulse kind (GitHub: ``event``,
``action``, ``delivery``). A value that is exactly one ``{{ expr }}`` gives the typed value
(``"{{ body.order }}"`` is the object), mixed text renders to a string, text without ``{{``
is a literal. Without a mapping, the inputs are the body itself, which must be a JSON object.

Invariants: rendering is deterministic (no ``now()``, no randomness: a redelivered event
gives the same inputs, so its dedupe identity holds); every failure is a
:class:`MappingError` whose message names the mapping field (``spec.mapping.orderId``) or
says what the body must be, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bobrapet.api.admission.impulse import mapping_problems
from bobrapet.templating import TemplateError, render

BASE_VARIABLES = ("body", "headers", "query", "key")
"""What every mapping sees (an impulse kind may add more)."""
MAPPING_PATH = "spec.mapping"


class MappingError(ValueError):
    """A delivery cannot be turned into inputs; the message says why and how to fix it."""


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


class InputMapping:
    """The mapping of one Impulse (``None``: the body is the inputs)."""

    def __init__(
        self, mapping: Mapping[str, Any] | None, variables: tuple[str, ...] = BASE_VARIABLES
    ) -> None:
        self.mapping = dict(mapping) if mapping is not None else None
        self.variables = variables

    def check(self) -> None:
        """Raise :class:`MappingError` when an expression cannot work (syntax, unknown variable)."""
        if self.mapping is None:
            return
        problems = mapping_problems(self.mapping, self.variables)
        if problems:
            raise MappingError("; ".join(f"{field}: {message}" for field, message in problems))

    def inputs(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The StoryRun inputs for one delivery (see the module docstring)."""
        if self.mapping is None:
            body = variables.get("body")
            if isinstance(body, dict):
                return body
            raise MappingError(
                f"the body is {kind_of(body)}, not a JSON object, and the Impulse has no spec.mapping: "
                "send a JSON object, or add a spec.mapping that builds the inputs "
                '(e.g. mapping: {value: "{{ body }}"})'
            )
        try:
            rendered = render(self.mapping, variables, deterministic=True, path=MAPPING_PATH)
        except TemplateError as exc:
            raise MappingError(str(exc)) from None
        assert isinstance(rendered, dict)
        return rendered
