"""StepRun: one execution of an Engram step (§1.8) and the StructuredError (§9.3).

Invariants: each downstream target sets exactly one of ``grpc``/``terminate``;
``signalEvents`` and ``effects`` are list-maps keyed by ``seq`` (≤ 256 each);
condition ``reason`` ≤ 64 and ``message`` ≤ 2048 characters.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from bobrapet.api.types.base import (
    CONDITION_CEL_RULES,
    Condition,
    DNSLabel,
    Duration,
    JSONObject,
    JSONValue,
    Resource,
    Timestamp,
    WireModel,
    cel,
    check_conditions_limits,
    conditions_field,
    list_map,
)
from bobrapet.api.types.enums import (
    ExitClass,
    HandoffPhase,
    Phase,
    RestartPolicy,
    StopMode,
    StructuredErrorType,
)
from bobrapet.api.types.runs_common import SchemaReference, TraceInfo
from bobrapet.api.types.shared import (
    CachePolicy,
    EngramReference,
    PlacementPolicy,
    RetryPolicy,
    StoryRunReference,
)

MAX_SIGNAL_EVENTS = 256
MAX_EFFECTS = 256


class StepExecutionOverrides(WireModel):
    """Resolved execution settings of one StepRun."""

    cpu_request: str | None = Field(None, description="CPU request.", max_length=64)
    cpu_limit: str | None = Field(None, description="CPU limit.", max_length=64)
    memory_request: str | None = Field(None, description="Memory request.", max_length=64)
    memory_limit: str | None = Field(None, description="Memory limit.", max_length=64)
    placement: PlacementPolicy | None = Field(None, description="Scheduling constraints.")
    cache: CachePolicy | None = Field(None, description="Output cache policy.")
    debug: bool | None = Field(None, description="Verbose logging.")
    backoff_limit: int | None = Field(None, description="Job backoffLimit.", ge=0)
    ttl_seconds_after_finished: int | None = Field(None, description="Job ttlSecondsAfterFinished.", ge=0)
    restart_policy: RestartPolicy | None = Field(None, description="Never or OnFailure.")


class GRPCTarget(WireModel):
    """Send the output to a gRPC endpoint."""

    endpoint: str = Field(description="host:port of the downstream.", min_length=1, max_length=1024)


class TerminateTarget(WireModel):
    """End the stream with a stop mode."""

    stop_mode: StopMode = Field(description="success, failure or cancel.")


_TARGET_RULE = (
    "has(self.grpc) != has(self.terminate)",
    "each downstream target must set exactly one of grpc or terminate",
)


class DownstreamTarget(WireModel):
    """Where a realtime step sends its output: exactly one of grpc or terminate."""

    model_config = ConfigDict(json_schema_extra=cel(_TARGET_RULE))

    grpc: GRPCTarget | None = Field(None, description="Forward to a gRPC endpoint.")
    terminate: TerminateTarget | None = Field(None, description="Terminate the stream.")

    @model_validator(mode="after")
    def _one_of(self) -> DownstreamTarget:
        if (self.grpc is None) == (self.terminate is None):
            raise PydanticCustomError("one_of", _TARGET_RULE[1])
        return self


class StepRunSpec(WireModel):
    """What to run for one step of a StoryRun."""

    story_run_ref: StoryRunReference = Field(description="The StoryRun this StepRun belongs to.")
    step_id: DNSLabel = Field(description="Step name (for parallel branches, the branch name).")
    idempotency_key: str | None = Field(
        None, description="Key identifying this execution for side effects.", max_length=256
    )
    engram_ref: EngramReference | None = Field(None, description="The Engram to run.")
    template_generation: int | None = Field(
        None, description="metadata.generation of the EngramTemplate at creation (0 if unknown).", ge=0
    )
    input: JSONObject | None = Field(
        None, description="Merged, unresolved with object (templates resolved later)."
    )
    timeout: Duration | None = Field(None, description="Execution timeout (duration).")
    retry: RetryPolicy | None = Field(None, description="Retry policy of this StepRun.")
    execution_overrides: StepExecutionOverrides | None = Field(
        None, description="Resolved execution settings."
    )
    downstream_targets: list[DownstreamTarget] | None = Field(
        None, description="Where a realtime step sends its output.", max_length=64
    )


class StructuredError(WireModel):
    """A machine-readable step failure (StructuredError v1)."""

    version: Literal["v1"] = Field(description='Schema version, always "v1".')
    type: StructuredErrorType = Field(description="Error category.")
    message: str = Field(description="Human-readable message.", min_length=1)
    retryable: bool | None = Field(None, description="Whether retrying may succeed.")
    exit_code: int | None = Field(None, description="Process exit code.", ge=0)
    exit_class: ExitClass | None = Field(
        None, description="success, retry, terminal, rateLimited or unknown."
    )
    code: str | None = Field(None, description="Component-specific error code.", max_length=256)
    details: JSONObject | None = Field(None, description="Extra details (free-form).")


class Handoff(WireModel):
    """Progress of a realtime workload handoff."""

    strategy: str | None = Field(None, description="Handoff strategy.", max_length=64)
    phase: HandoffPhase | None = Field(None, description="pending, draining, cutover or ready.")
    message: str | None = Field(None, description="Details.", max_length=4096)
    updated_at: Timestamp | None = Field(None, description="When the handoff last changed.")


class SignalEvent(WireModel):
    """A signal emitted by the step (append-only log)."""

    seq: int = Field(description="Sequence number (list key).", ge=0)
    key: str = Field(description="Signal key.", min_length=1, max_length=256)
    emitted_at: Timestamp | None = Field(None, description="When the signal was emitted.")
    payload: JSONValue | None = Field(None, description="Signal value (any JSON).")


class EffectRecord(WireModel):
    """A side effect recorded by the step (append-only log)."""

    seq: int = Field(description="Sequence number (list key).", ge=0)
    key: str = Field(description="Effect key.", min_length=1, max_length=256)
    status: str | None = Field(None, description="Effect status, e.g. completed.", max_length=64)
    emitted_at: Timestamp | None = Field(None, description="When the effect was recorded.")
    details: JSONObject | None = Field(None, description="Extra details (free-form).")


class StepRunStatus(WireModel):
    """Observed state of a StepRun (controller and the engram's SDK write it)."""

    model_config = ConfigDict(json_schema_extra=cel(*CONDITION_CEL_RULES))

    observed_generation: int | None = Field(None, description="Generation the status reflects.", ge=0)
    phase: Phase | None = Field(None, description="Phase of the step execution.")
    started_at: Timestamp | None = Field(None, description="When the controller first wrote Pending.")
    finished_at: Timestamp | None = Field(None, description="When the execution finished.")
    duration: str | None = Field(None, description='Rounded duration, e.g. "3s".', max_length=64)
    last_output_at: Timestamp | None = Field(None, description="When output was last written.")
    trace: TraceInfo | None = Field(None, description="Trace identifiers.")
    exit_code: int | None = Field(None, description="Exit code of the engram process.")
    exit_class: ExitClass | None = Field(
        None, description="success, retry, terminal, rateLimited or unknown."
    )
    pod_name: str | None = Field(None, description="Pod or worker that ran the step.", max_length=253)
    retries: int = Field(0, description="Retries performed so far.", ge=0)
    next_retry_at: Timestamp | None = Field(None, description="When the next retry is due.")
    last_failure_msg: str | None = Field(None, description="Message of the last failure.", max_length=32768)
    input_schema_ref: SchemaReference | None = Field(
        None, description="Schema the input was validated against."
    )
    output_schema_ref: SchemaReference | None = Field(
        None, description="Schema the output was validated against."
    )
    output: JSONValue | None = Field(
        None, description="Output of the step (inline JSON or a storage reference)."
    )
    logs: JSONValue | None = Field(None, description="Storage reference to the logs (written by the SDK).")
    error: StructuredError | None = Field(None, description="Structured failure (StructuredError v1).")
    conditions: list[Condition] | None = conditions_field()
    handoff: Handoff | None = Field(None, description="Realtime handoff progress.")
    needs: list[str] | None = Field(
        None, description="Upstream steps this execution waited for.", max_length=1000
    )
    signals: dict[str, JSONValue] | None = Field(None, description="Latest value of each signal key.")
    signal_events: list[SignalEvent] | None = Field(
        None,
        description="Signals emitted, in order (list-map keyed by seq).",
        max_length=MAX_SIGNAL_EVENTS,
        json_schema_extra=list_map("seq"),
    )
    effects: list[EffectRecord] | None = Field(
        None,
        description="Side effects recorded, in order (list-map keyed by seq).",
        max_length=MAX_EFFECTS,
        json_schema_extra=list_map("seq"),
    )

    @model_validator(mode="after")
    def _conditions(self) -> StepRunStatus:
        check_conditions_limits(self.conditions, require_ready=False)
        return self


class StepRun(Resource):
    """One execution of an Engram step of a StoryRun."""

    api_version: Literal["runs.bubustack.io/v1alpha1"] = Field(
        "runs.bubustack.io/v1alpha1", description="API version of this object: runs.bubustack.io/v1alpha1."
    )
    kind: Literal["StepRun"] = Field("StepRun", description="Kind of this object: StepRun.")
    spec: StepRunSpec = Field(description="What to run.")
    status: StepRunStatus | None = Field(None, description="Observed state (controller and SDK).")
