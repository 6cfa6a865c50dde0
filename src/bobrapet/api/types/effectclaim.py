"""EffectClaim: a lease making one side effect of a step happen at most once (§1.10)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bobrapet.api.types.base import Condition, JSONObject, Resource, Timestamp, WireModel, conditions_field
from bobrapet.api.types.enums import EffectClaimPhase, EffectCompletionStatus
from bobrapet.api.types.shared import StepRunReference


class EffectClaimSpec(WireModel):
    """The claimed effect and its lease."""

    step_run_ref: StepRunReference = Field(description="The StepRun performing the effect (same namespace).")
    effect_key: str = Field(description="Key of the effect within the StepRun.", min_length=1, max_length=256)
    idempotency_key: str | None = Field(None, description="Idempotency key of the StepRun.", max_length=256)
    holder_identity: str | None = Field(None, description="Who holds the lease.", max_length=253)
    lease_duration_seconds: int | None = Field(None, description="Lease duration in seconds.", ge=1)
    acquire_time: Timestamp | None = Field(None, description="When the lease was acquired.")
    renew_time: Timestamp | None = Field(None, description="When the lease was last renewed.")
    lease_transitions: int | None = Field(None, description="How many times the lease changed holder.", ge=0)
    completion_status: EffectCompletionStatus | None = Field(
        None,
        description="completed or abandoned (with completedAt), or released (given back unperformed).",
    )
    completed_at: Timestamp | None = Field(
        None, description="When the effect completed or was abandoned (requires completionStatus)."
    )
    details: JSONObject | None = Field(None, description="Extra details (free-form).")


class EffectClaimStatus(WireModel):
    """Observed state of the claim."""

    observed_generation: int | None = Field(None, description="Generation the status reflects.", ge=0)
    phase: EffectClaimPhase | None = Field(None, description="Reserved, Completed, Released or Abandoned.")
    conditions: list[Condition] | None = conditions_field()


class EffectClaim(Resource):
    """A lease guaranteeing a side effect of a step is performed at most once."""

    api_version: Literal["runs.bubustack.io/v1alpha1"] = Field(
        "runs.bubustack.io/v1alpha1", description="API version of this object: runs.bubustack.io/v1alpha1."
    )
    kind: Literal["EffectClaim"] = Field("EffectClaim", description="Kind of this object: EffectClaim.")
    spec: EffectClaimSpec = Field(description="The effect and its lease.")
    status: EffectClaimStatus | None = Field(None, description="Observed state (written by the controller).")
