"""StoryTrigger: a durable request to start a StoryRun, deduplicated by identity (§1.9)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from bobrapet.api.types.base import (
    Condition,
    JSONObject,
    Resource,
    Timestamp,
    WireModel,
    cel,
    conditions_field,
)
from bobrapet.api.types.enums import DedupeMode, TriggerDecision
from bobrapet.api.types.shared import ImpulseReference, StoryReference, StoryRunReference

_HASH_RULE = ("!has(self.key) || has(self.inputHash)", "inputHash is required when key is set")


class DeliveryIdentity(WireModel):
    """Identity of one delivery, used to deduplicate triggers."""

    model_config = ConfigDict(json_schema_extra=cel(_HASH_RULE))

    mode: DedupeMode | None = Field(None, description="none, token or key.")
    key: str | None = Field(None, description="Delivery key (mode key).", max_length=256)
    input_hash: str | None = Field(
        None, description="sha256 hex of the canonical inputs (required when key is set).", max_length=64
    )
    submission_id: str = Field(description="Unique id of this submission.", min_length=1, max_length=253)

    @model_validator(mode="after")
    def _hash_with_key(self) -> DeliveryIdentity:
        if self.key is not None and self.input_hash is None:
            raise PydanticCustomError("identity", _HASH_RULE[1])
        return self


class StoryTriggerSpec(WireModel):
    """Which Story to start, with which inputs, under which delivery identity."""

    story_ref: StoryReference = Field(description="The Story to start.")
    impulse_ref: ImpulseReference | None = Field(None, description="The Impulse that submitted the trigger.")
    inputs: JSONObject | None = Field(None, description="Inputs of the StoryRun to create.")
    delivery_identity: DeliveryIdentity = Field(description="Identity used for deduplication.")


class StoryTriggerStatus(WireModel):
    """Decision taken on the trigger."""

    observed_generation: int | None = Field(None, description="Generation the status reflects.", ge=0)
    decision: TriggerDecision | None = Field(None, description="Pending, Created, Reused or Rejected.")
    reason: str | None = Field(None, description="Machine-readable reason of the decision.", max_length=64)
    message: str | None = Field(None, description="Human-readable details.", max_length=4096)
    story_run_ref: StoryRunReference | None = Field(None, description="The StoryRun created or reused.")
    accepted_at: Timestamp | None = Field(None, description="When the trigger was accepted.")
    completed_at: Timestamp | None = Field(None, description="When the decision was final.")
    conditions: list[Condition] | None = conditions_field()


class StoryTrigger(Resource):
    """A durable, deduplicated request to start a StoryRun."""

    api_version: Literal["runs.bubustack.io/v1alpha1"] = Field(
        "runs.bubustack.io/v1alpha1", description="API version of this object: runs.bubustack.io/v1alpha1."
    )
    kind: Literal["StoryTrigger"] = Field("StoryTrigger", description="Kind of this object: StoryTrigger.")
    spec: StoryTriggerSpec = Field(description="Story, inputs and delivery identity (immutable).")
    status: StoryTriggerStatus | None = Field(None, description="Observed state (written by the controller).")
