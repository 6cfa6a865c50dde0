"""Comparing the immutable request of two StoryTriggers, and references in general.

Invariants: references are compared resolved (a missing namespace is the owner's
namespace; empty version/uid are absent); inputs are compared by their canonical JSON
(reference §5.2), so key order and ``None`` versus ``{}`` do not count as differences; the
delivery identity is compared field by field (``mode`` absent is ``none``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bobrapet.api.admission.identity import canonical_json

IDENTITY_FIELDS = ("mode", "key", "inputHash", "submissionId")


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def resolved_ref(ref: Any, namespace: str) -> tuple[str, str, str, str] | None:
    """``(namespace, name, version, uid)`` of a reference map, or None when it is absent."""
    if not isinstance(ref, Mapping) or not ref.get("name"):
        return None
    return (
        str(ref.get("namespace") or namespace),
        str(ref["name"]),
        str(ref.get("version") or "").strip(),
        str(ref.get("uid") or ""),
    )


def same_inputs(left: Any, right: Any) -> bool:
    return canonical_json(left) == canonical_json(right)


def _identity(spec: Mapping[str, Any]) -> dict[str, str]:
    ident = _dict(spec.get("deliveryIdentity"))
    values = {field: str(ident.get(field) or "") for field in IDENTITY_FIELDS}
    values["mode"] = values["mode"] or "none"
    return values


def request_differences(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Field paths where the two triggers' immutable requests differ (empty: the same request)."""
    old_spec, new_spec = _dict(existing.get("spec")), _dict(desired.get("spec"))
    old_ns = str(_dict(existing.get("metadata")).get("namespace") or "default")
    new_ns = str(_dict(desired.get("metadata")).get("namespace") or "default")
    differences: list[str] = []
    for field in ("storyRef", "impulseRef"):
        if resolved_ref(old_spec.get(field), old_ns) != resolved_ref(new_spec.get(field), new_ns):
            differences.append(f"spec.{field}")
    old_ident, new_ident = _identity(old_spec), _identity(new_spec)
    differences += [f"spec.deliveryIdentity.{f}" for f in IDENTITY_FIELDS if old_ident[f] != new_ident[f]]
    if not same_inputs(old_spec.get("inputs"), new_spec.get("inputs")):
        differences.append("spec.inputs")
    return differences
