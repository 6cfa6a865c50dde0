"""Admission never crashes: any document yields an admitted object or a StatusError."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bobrapet.api.admission import MemoryLookup, admit
from bobrapet.api.errors import StatusError

KEYS = st.sampled_from(
    [
        "name",
        "ref",
        "type",
        "needs",
        "with",
        "if",
        "requires",
        "runtime",
        "transport",
        "until",
        "timeout",
        "pollInterval",
        "onTimeout",
        "storyRef",
        "steps",
        "phase",
        "duration",
        "execution",
        "retry",
        "postExecution",
        "condition",
        "idempotencyKeyTemplate",
        "sideEffects",
        "inputs",
        "stepRunRef",
        "effectKey",
        "completedAt",
        "completionStatus",
        "acquireTime",
        "renewTime",
    ]
)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.sampled_from(
        [
            "a",
            "b",
            "{{ steps.a.output }}",
            "1s",
            "-1s",
            "x",
            "steps.a.b",
            "wait",
            "gate",
            "2025-01-01T00:00:00Z",
        ]
    )
)
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)
KINDS = st.sampled_from(
    [
        ("bubustack.io/v1alpha1", "Story"),
        ("runs.bubustack.io/v1alpha1", "StoryRun"),
        ("runs.bubustack.io/v1alpha1", "StepRun"),
        ("runs.bubustack.io/v1alpha1", "EffectClaim"),
        ("runs.bubustack.io/v1alpha1", "StoryTrigger"),
        ("bubustack.io/v1alpha1", "Engram"),
        ("bubustack.io/v1alpha1", "Impulse"),
        ("catalog.bubustack.io/v1alpha1", "EngramTemplate"),
        ("transport.bubustack.io/v1alpha1", "TransportBinding"),
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(KINDS, JSON, st.lists(st.dictionaries(KEYS, JSON, max_size=6), max_size=4))
async def test_any_document_is_admitted_or_rejected_cleanly(
    kind: tuple[str, str], spec: Any, steps: Any
) -> None:
    if isinstance(spec, dict):
        spec = {**spec, "steps": steps}
    doc = {
        "apiVersion": kind[0],
        "kind": kind[1],
        "metadata": {"name": "x", "namespace": "default"},
        "spec": spec,
    }
    with contextlib.suppress(StatusError):  # a clean rejection is fine; anything else fails
        await admit(doc, None, MemoryLookup())
