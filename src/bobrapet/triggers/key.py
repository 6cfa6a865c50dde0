"""The delivery key of ``mode: key`` (reference §5.4).

Invariants: the key template is rendered with the deterministic evaluator (no ``now()``, no
randomness) over ``{inputs, story{name, namespace}, impulse{name, namespace}}``; a result
that is not a string is JSON-encoded as Go's ``encoding/json`` writes it; the key is the
lowercase hex sha256 of the rendered text with surrounding whitespace removed, so the same
event gives the same key in every implementation. An empty rendering is an error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from bobrapet.api.admission.identity import canonical_json
from bobrapet.templating import TemplateError, evaluate
from bobrapet.triggers.errors import DeliveryError


def key_variables(
    inputs: Mapping[str, Any],
    story: str,
    story_namespace: str,
    impulse: str = "",
    impulse_namespace: str = "",
) -> dict[str, Any]:
    """The variables a key template sees."""
    return {
        "inputs": dict(inputs),
        "story": {"name": story, "namespace": story_namespace},
        "impulse": {"name": impulse, "namespace": impulse_namespace},
    }


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    return canonical_json(value)


def render_key(template: str, variables: Mapping[str, Any]) -> str:
    """sha256 hex of the trimmed rendering of ``template`` (see the module invariants)."""
    try:
        value = evaluate(template, variables, deterministic=True)
    except TemplateError as err:
        raise DeliveryError(f"key template: {err}") from None
    text = _as_text(value).strip()
    if not text:
        raise DeliveryError(f"key template {template!r} rendered an empty key; make it depend on the event")
    return hashlib.sha256(text.encode()).hexdigest()
