"""Building blocks shared by every resource model.

Invariants:

* Every model derives from :class:`WireModel`: Python attribute names are
  snake_case, wire names (aliases) are camelCase, unknown fields are rejected
  (``extra="forbid"``) and validation is strict (no ``"3"`` → ``3`` coercion,
  as the Kubernetes API server does not coerce either).
* A ``null`` given for a field of a model is treated as if the field were absent
  (the API server prunes nulls of non-nullable fields the same way), so CRD
  defaults still apply and required fields report "missing".
* Free-form JSON (:data:`JSONObject`, :data:`JSONValue`) is kept verbatim,
  nulls and empty containers included; it only has to be JSON (no dates, bytes,
  non-string keys, NaN).
* CRD-only annotations (``x-kubernetes-*``) travel through ``json_schema_extra``
  so :mod:`bobrapet.api.crds` can copy them into the generated CRDs.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""RFC 1123 label: lower-case alphanumerics and ``-``, alphanumeric at both ends."""

ENTRYPOINT_PATTERN = (
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)
"""``package.module:callable`` (the callable may be a dotted attribute path)."""

PRESERVE_UNKNOWN: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}


def list_map(*keys: str) -> dict[str, Any]:
    """``json_schema_extra`` marking a list as a Kubernetes list-map keyed by ``keys``."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules as ``(rule, message)`` pairs."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class WireModel(BaseModel):
    """Base of every API model: camelCase wire names, strict, no unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        strict=True,
        validate_default=False,
        frozen=False,
        defer_build=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict) and None in data.values():
            return {k: v for k, v in data.items() if v is not None}
        return data

    def to_wire(self) -> dict[str, Any]:
        """The wire (camelCase) dict, with absent optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True)


# --------------------------------------------------------------------------- free-form JSON


def _json_problem(value: Any, path: str, depth: int) -> str | None:
    if depth > 200:
        return f"nesting is deeper than 200 levels at {path or 'the top'}"
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a JSON number at {path or 'the top'}"
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"object key {k!r} at {path or 'the top'} is not a string; quote it"
            problem = _json_problem(v, f"{path}.{k}", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        for i, v in enumerate(value):
            problem = _json_problem(v, f"{path}[{i}]", depth + 1)
            if problem:
                return problem
        return None
    hint = "; quote it to make it a string" if isinstance(value, (datetime, date)) else ""
    return f"{type(value).__name__} value at {path or 'the top'} is not JSON{hint}"


def _check_json(value: Any) -> Any:
    problem = _json_problem(value, "", 0)
    if problem:
        raise PydanticCustomError("not_json", "must be plain JSON: {problem}", {"problem": problem})
    return value


JSONObject = Annotated[
    dict[str, Any],
    AfterValidator(_check_json),
    WithJsonSchema({"type": "object", **PRESERVE_UNKNOWN}),
]
"""A free-form JSON object (kept verbatim, nulls included)."""

JSONValue = Annotated[Any, AfterValidator(_check_json), WithJsonSchema(dict(PRESERVE_UNKNOWN))]
"""Any JSON value (kept verbatim, nulls included)."""


# --------------------------------------------------------------------------- scalars

DNSLabel = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
"""A DNS-1123 label (1-63 characters)."""

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def _timestamp_before(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        text = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return text
    return value


def _timestamp_after(value: str) -> str:
    m = _RFC3339.match(value)
    ok = m is not None
    if m is not None:
        try:
            datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), min(int(m[6]), 59))
        except ValueError:
            ok = False
    if not ok:
        raise PydanticCustomError(
            "timestamp",
            'must be an RFC 3339 timestamp such as "2024-05-01T12:00:00Z" (got {value!r})',
            {"value": value},
        )
    return value


Timestamp = Annotated[
    str,
    BeforeValidator(_timestamp_before),
    AfterValidator(_timestamp_after),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An RFC 3339 timestamp string (``metav1.Time``/``MicroTime`` on the wire)."""

Duration = Annotated[str, StringConstraints(max_length=64)]
"""A Go-style duration string (``"1s"``, ``"5m30s"``); parsed by admission."""

ConditionStatus = Literal["True", "False", "Unknown"]


# --------------------------------------------------------------------------- metadata


class OwnerReference(WireModel):
    """Identifies an owning object; deleting the owner deletes this object (cascade)."""

    api_version: str = Field(description="API version of the owner.", max_length=253)
    kind: str = Field(description="Kind of the owner.", max_length=63)
    name: str = Field(description="Name of the owner.", max_length=253)
    uid: str = Field(description="UID of the owner.", max_length=64)
    controller: bool | None = Field(None, description="True if the owner is the managing controller.")
    block_owner_deletion: bool | None = Field(
        None, description="If true, the owner cannot be deleted (foreground) before this object."
    )


class ObjectMeta(WireModel):
    """Standard Kubernetes object metadata."""

    name: str | None = Field(None, description="Name of the object, unique within its namespace and kind.")
    generate_name: str | None = Field(
        None, description="Prefix for a server-generated name, used when name is empty."
    )
    namespace: str | None = Field(None, description="Namespace of the object (namespaced kinds only).")
    uid: str | None = Field(None, description="Server-assigned unique identifier (read-only).")
    resource_version: str | None = Field(
        None, description="Opaque version for optimistic concurrency; updates must echo it (read-only)."
    )
    generation: int | None = Field(
        None, description="Sequence number bumped on every spec change (read-only)."
    )
    creation_timestamp: Timestamp | None = Field(None, description="When the object was created (read-only).")
    deletion_timestamp: Timestamp | None = Field(
        None, description="When deletion was requested; the object lingers until its finalizers are gone."
    )
    deletion_grace_period_seconds: int | None = Field(
        None, description="Seconds allowed for graceful termination before deletion."
    )
    labels: dict[str, str] | None = Field(None, description="Key/value labels used by selectors.")
    annotations: dict[str, str] | None = Field(
        None, description="Key/value annotations (not used to select)."
    )
    owner_references: list[OwnerReference] | None = Field(
        None, description="Objects this object depends on; it is deleted when they are."
    )
    finalizers: list[str] | None = Field(
        None, description="Names that must be removed before the object is really deleted."
    )
    managed_fields: list[JSONObject] | None = Field(
        None, description="Server-side-apply field ownership (free-form, kept as given)."
    )


class Condition(WireModel):
    """One observation of an aspect of the object's state (metav1.Condition)."""

    type: str = Field(
        description="Condition type, e.g. Ready, Progressing, Degraded.", min_length=1, max_length=316
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str | None = Field(
        None, description="Machine-readable CamelCase reason code for the last transition.", max_length=1024
    )
    message: str | None = Field(
        None, description="Human-readable details about the transition.", max_length=32768
    )
    last_transition_time: Timestamp | None = Field(
        None, description="When the condition last changed status."
    )
    observed_generation: int | None = Field(
        None, description="metadata.generation the condition was computed from.", ge=0
    )


MAX_CONDITIONS = 32
"""Bound on ``status.conditions`` (keeps CEL cost estimates finite)."""


def conditions_field(description: str = "Current conditions of the object (list-map keyed by type).") -> Any:
    """The ``status.conditions`` field: a list-map keyed by ``type``."""
    return Field(None, description=description, max_length=MAX_CONDITIONS, json_schema_extra=list_map("type"))


def check_conditions_limits(conditions: list[Condition] | None, *, require_ready: bool) -> None:
    """Python twin of the CEL condition rules of StoryRun/StepRun status."""
    if not conditions:
        return
    if require_ready and not any(c.type == "Ready" for c in conditions):
        raise PydanticCustomError(
            "conditions", "status.conditions must include Ready when conditions are set"
        )
    for c in conditions:
        if require_ready and c.last_transition_time is None:
            raise PydanticCustomError("conditions", "status.conditions entries must set lastTransitionTime")
        if c.reason is not None and len(c.reason) > 64:
            raise PydanticCustomError("conditions", "status.conditions reason field must be <= 64 characters")
        if c.message is not None and len(c.message) > 2048:
            raise PydanticCustomError(
                "conditions", "status.conditions message field must be <= 2048 characters"
            )


CONDITION_CEL_RULES: tuple[tuple[str, str], ...] = (
    (
        "!has(self.conditions) || self.conditions.all(c, !has(c.reason) || size(c.reason) <= 64)",
        "status.conditions reason field must be <= 64 characters",
    ),
    (
        "!has(self.conditions) || self.conditions.all(c, !has(c.message) || size(c.message) <= 2048)",
        "status.conditions message field must be <= 2048 characters",
    ),
)
READY_CEL_RULES: tuple[tuple[str, str], ...] = (
    (
        "!has(self.conditions) || size(self.conditions) == 0 || self.conditions.exists(c, c.type == 'Ready')",
        "status.conditions must include Ready when conditions are set",
    ),
    (
        "!has(self.conditions) || self.conditions.all(c, has(c.lastTransitionTime))",
        "status.conditions entries must set lastTransitionTime",
    ),
)


class Resource(WireModel):
    """Common shape of a top-level object: apiVersion, kind, metadata (spec/status per kind).

    Subclasses narrow ``api_version`` and ``kind`` to their constant values (with
    those constants as defaults, so Python code may omit them).
    """

    api_version: str = Field(description="Group/version of the schema of this object.")
    kind: str = Field(description="Kind of this object.")
    metadata: ObjectMeta = Field(description="Standard object metadata (name, namespace, labels, ...).")
