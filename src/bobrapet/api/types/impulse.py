"""Impulse: an event source that starts StoryRuns (§1.5)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bobrapet.api.types.base import Condition, JSONObject, Resource, Timestamp, WireModel, conditions_field
from bobrapet.api.types.enums import Phase
from bobrapet.api.types.shared import (
    ExecutionOverrides,
    ImpulseTemplateReference,
    SecretBindings,
    ServiceExposure,
    StoryReference,
    TriggerDeliveryPolicy,
    TriggerThrottlePolicy,
    WorkloadSpec,
)


class ImpulseSpec(WireModel):
    """Which template to run, which Story to trigger, and how."""

    version: str | None = Field(None, description="Version identifier.", max_length=64)
    template_ref: ImpulseTemplateReference = Field(
        description="The ImpulseTemplate this Impulse instantiates."
    )
    story_ref: StoryReference = Field(description="The Story each event starts a run of.")
    with_: JSONObject | None = Field(
        None, alias="with", description="Configuration, validated against the template's configSchema."
    )
    secrets: SecretBindings | None = Field(
        None, description="Logical secret name (from the template's secretSchema) -> Secret name."
    )
    mapping: JSONObject | None = Field(
        None, description="Event-to-inputs mapping (free-form, informational)."
    )
    delivery_policy: TriggerDeliveryPolicy | None = Field(
        None, description="Overrides the template's delivery policy field by field."
    )
    throttle: TriggerThrottlePolicy | None = Field(None, description="Rate limits of triggers.")
    workload: WorkloadSpec | None = Field(None, description="Workload shape (deployment or statefulset).")
    service: ServiceExposure | None = Field(None, description="Service exposure of the workload.")
    execution: ExecutionOverrides | None = Field(None, description="Execution overrides.")


class ImpulseStatus(WireModel):
    """Observed state of an Impulse."""

    observed_generation: int | None = Field(None, description="Generation the status reflects.", ge=0)
    conditions: list[Condition] | None = conditions_field()
    replicas: int | None = Field(None, description="Desired replicas.", ge=0)
    ready_replicas: int | None = Field(None, description="Ready replicas.", ge=0)
    phase: Phase | None = Field(None, description="Pending, Running, Blocked or Failed.")
    triggers_received: int | None = Field(None, description="Runs started by this Impulse.", ge=0)
    stories_launched: int | None = Field(None, description="Runs that succeeded.", ge=0)
    failed_triggers: int | None = Field(None, description="Runs that failed.", ge=0)
    throttled_triggers: int | None = Field(None, description="Triggers delayed by throttling.", ge=0)
    last_throttled: Timestamp | None = Field(None, description="When a trigger was last throttled.")
    last_trigger: Timestamp | None = Field(None, description="When the last trigger arrived.")
    refused_deliveries: int | None = Field(
        None, description="Deliveries refused (no inputs could be built, identity conflict...).", ge=0
    )
    last_refused: Timestamp | None = Field(None, description="When a delivery was last refused.")
    last_success: Timestamp | None = Field(None, description="When a triggered run last succeeded.")


class Impulse(Resource):
    """An event source (webhook, cron, watch...) that starts StoryRuns of a Story."""

    api_version: Literal["bubustack.io/v1alpha1"] = Field(
        "bubustack.io/v1alpha1", description="API version of this object: bubustack.io/v1alpha1."
    )
    kind: Literal["Impulse"] = Field("Impulse", description="Kind of this object: Impulse.")
    spec: ImpulseSpec = Field(description="Template, target Story, configuration and policies.")
    status: ImpulseStatus | None = Field(None, description="Observed state (written by the controller).")
