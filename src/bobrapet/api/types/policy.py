"""ReferenceGrant: allows references from other namespaces into this one (§1.12)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bobrapet.api.types.base import Condition, DNSLabel, Resource, WireModel, conditions_field


class ReferenceGrantFrom(WireModel):
    """Who may refer: objects of a group/kind in a namespace."""

    group: str = Field(description="API group of the referring objects.", min_length=1, max_length=253)
    kind: str = Field(description="Kind of the referring objects.", min_length=1, max_length=63)
    namespace: DNSLabel = Field(description="Namespace of the referring objects.")


class ReferenceGrantTo(WireModel):
    """What may be referred to: objects of a group/kind in this namespace."""

    group: str = Field(description="API group of the referenced objects.", max_length=253)
    kind: str = Field(description="Kind of the referenced objects.", min_length=1, max_length=63)
    name: str | None = Field(
        None, description="Only this object (empty: all objects of the kind).", max_length=253
    )


class ReferenceGrantSpec(WireModel):
    """Allowed sources and targets."""

    from_: list[ReferenceGrantFrom] = Field(
        alias="from", description="Referrers allowed.", min_length=1, max_length=16
    )
    to: list[ReferenceGrantTo] = Field(description="Targets allowed.", min_length=1, max_length=16)


class ReferenceGrantStatus(WireModel):
    """Observed state (no controller writes it today)."""

    observed_generation: int | None = Field(None, description="Generation the status reflects.", ge=0)
    conditions: list[Condition] | None = conditions_field()


class ReferenceGrant(Resource):
    """Lets objects in other namespaces refer to objects in this namespace."""

    api_version: Literal["policy.bubustack.io/v1alpha1"] = Field(
        "policy.bubustack.io/v1alpha1",
        description="API version of this object: policy.bubustack.io/v1alpha1.",
    )
    kind: Literal["ReferenceGrant"] = Field(
        "ReferenceGrant", description="Kind of this object: ReferenceGrant."
    )
    spec: ReferenceGrantSpec = Field(description="Allowed referrers and targets.")
    status: ReferenceGrantStatus | None = Field(None, description="Observed state.")
