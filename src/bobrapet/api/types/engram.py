"""Engram: a configured instance of an EngramTemplate (§1.4)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bobrapet.api.types.base import Condition, JSONObject, Resource, Timestamp, WireModel, conditions_field
from bobrapet.api.types.enums import Phase, ValidationStatus, WorkloadMode
from bobrapet.api.types.shared import (
    EngramTemplateReference,
    ExecutionOverrides,
    ExecutionPolicy,
    LocalObjectReference,
    SecretBindings,
)


class EngramTLS(WireModel):
    """TLS settings of an Engram's streaming transport."""

    secret_ref: LocalObjectReference | None = Field(
        None, description="Secret holding the TLS certificate and key."
    )
    use_default_tls: bool | None = Field(
        None,
        alias="useDefaultTLS",
        description="Use the operator's default TLS material (true when secretRef is unset).",
    )


class EngramTransport(WireModel):
    """Transport settings of an Engram."""

    tls: EngramTLS | None = Field(None, description="TLS settings.")


class EngramSpec(WireModel):
    """Which template to run and how to configure it."""

    version: str | None = Field(
        None, description="Version identifier used by ref.version pinning.", max_length=64
    )
    template_ref: EngramTemplateReference = Field(description="The EngramTemplate this Engram instantiates.")
    mode: WorkloadMode | None = Field(None, description="job (default), deployment or statefulset.")
    with_: JSONObject | None = Field(
        None, alias="with", description="Configuration, validated against the template's configSchema."
    )
    secrets: SecretBindings | None = Field(
        None, description="Logical secret name (from the template's secretSchema) -> Secret name."
    )
    execution_policy: ExecutionPolicy | None = Field(
        None, description="Execution policy (only resources, placement and cache are honoured)."
    )
    overrides: ExecutionOverrides | None = Field(None, description="Execution overrides.")
    transport: EngramTransport | None = Field(None, description="Streaming transport settings.")


class EngramStatus(WireModel):
    """Observed state of an Engram."""

    observed_generation: int | None = Field(None, description="Generation the status reflects.", ge=0)
    conditions: list[Condition] | None = conditions_field()
    replicas: int | None = Field(None, description="Desired replicas of the realtime workload.", ge=0)
    ready_replicas: int | None = Field(None, description="Ready replicas of the realtime workload.", ge=0)
    phase: Phase | None = Field(None, description="Summary phase.")
    validation_status: ValidationStatus | None = Field(
        None, description="valid, invalid, unknown or pending."
    )
    validation_errors: list[str] | None = Field(None, description="Validation errors.", max_length=256)
    usage_count: int | None = Field(None, description="Stories referencing this Engram.", ge=0)
    triggers: int | None = Field(None, description="StepRuns referencing this Engram.", ge=0)
    last_execution_time: Timestamp | None = Field(None, description="When a StepRun of this Engram last ran.")
    total_executions: int | None = Field(None, description="StepRuns finished.", ge=0)
    failed_executions: int | None = Field(None, description="StepRuns failed.", ge=0)


class Engram(Resource):
    """A configured, reusable worker built from an EngramTemplate."""

    api_version: Literal["bubustack.io/v1alpha1"] = Field(
        "bubustack.io/v1alpha1", description="API version of this object: bubustack.io/v1alpha1."
    )
    kind: Literal["Engram"] = Field("Engram", description="Kind of this object: Engram.")
    spec: EngramSpec = Field(description="Template, configuration and secrets.")
    status: EngramStatus | None = Field(None, description="Observed state (written by the controller).")
