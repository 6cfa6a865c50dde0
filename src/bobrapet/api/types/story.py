"""Story: a workflow definition, a DAG of steps ordered only by ``needs`` (§1.3).

Invariants checked here (structural, also emitted as CRD rules):

* every step sets exactly one of ``ref`` (an Engram step) or ``type`` (a primitive);
* ``steps`` has 1-1000 entries (deliberate difference: the Go operator allows 100),
  ``compensations`` and ``finally`` at most 50 each; each list is a list-map keyed
  by ``name``.

Cross-step rules (unknown ``needs``, cycles, duplicate names across the three
lists, templates) belong to admission.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from bobrapet.api.types.base import (
    Condition,
    DNSLabel,
    Duration,
    JSONObject,
    Resource,
    WireModel,
    cel,
    conditions_field,
    list_map,
)
from bobrapet.api.types.enums import StepType, StoryPattern, TransportMode, ValidationStatus
from bobrapet.api.types.shared import (
    EngramReference,
    ExecutionOverrides,
    ExecutionPolicy,
    RetryPolicy,
    SecretBindings,
    StoragePolicy,
)
from bobrapet.api.types.streaming import TransportStreamingSettings

MAX_STEPS = 1000
MAX_COMPENSATIONS = 50
MAX_FINALLY = 50

StepName = Annotated[str, StringConstraints(max_length=63)]


class PostExecutionCheck(WireModel):
    """A condition verified after the engram succeeds; false fails the step."""

    condition: str = Field(description="Condition expression (with or without {{ }}).", min_length=1)
    failure_message: str | None = Field(None, description="Message recorded when the condition is false.")


_STEP_RULE = ("has(self.ref) != has(self.type)", "each step must set exactly one of ref or type")


class Step(WireModel):
    """One node of the Story DAG: an Engram step (ref) or a primitive (type)."""

    model_config = ConfigDict(json_schema_extra=cel(_STEP_RULE))

    name: DNSLabel = Field(
        description="Step name (DNS label), unique in the Story; used by needs and templates."
    )
    id: str | None = Field(
        None, description="Informational identifier; not used by the engine.", max_length=63
    )
    needs: list[StepName] | None = Field(
        None, description="Steps that must finish before this one starts.", max_length=MAX_STEPS
    )
    type: StepType | None = Field(
        None, description="Primitive: condition, parallel, sleep, stop, wait, executeStory or gate."
    )
    if_: str | None = Field(None, alias="if", description="Condition; when false the step is Skipped.")
    allow_failure: bool | None = Field(None, description="A failure of this step does not fail the run.")
    side_effects: bool | None = Field(
        None, description="The step has side effects: without an explicit retry policy it is not retried."
    )
    requires: list[str] | None = Field(
        None,
        description="Paths steps.<name>.<field>... that must be non-null before the step runs.",
        max_length=256,
    )
    idempotency_key_template: str | None = Field(
        None, description="Template for the StepRun idempotency key.", max_length=512
    )
    ref: EngramReference | None = Field(None, description="The Engram this step runs.")
    with_: JSONObject | None = Field(
        None,
        alias="with",
        description="Step inputs/configuration (templates allowed); merged over Engram with.",
    )
    runtime: JSONObject | None = Field(None, description="Per-packet configuration of realtime steps.")
    transport: DNSLabel | None = Field(None, description="Name of an entry of spec.transports.")
    secrets: SecretBindings | None = Field(
        None, description="Logical secret name -> Secret name; overrides the Engram's bindings."
    )
    execution: ExecutionOverrides | None = Field(None, description="Per-step execution overrides.")
    post_execution: PostExecutionCheck | None = Field(
        None, description="Condition checked after the engram succeeds."
    )

    @model_validator(mode="after")
    def _ref_xor_type(self) -> Step:
        if (self.ref is None) == (self.type is None):
            raise PydanticCustomError("step_ref_or_type", _STEP_RULE[1])
        return self


class StoryConcurrency(WireModel):
    """Realtime concurrency hint for the streaming hub."""

    mode: Literal["serial", "cancelPrevious", "parallel"] = Field(
        "parallel", description="serial, cancelPrevious or parallel."
    )
    scope: Literal["storyrun", "participant"] = Field("storyrun", description="storyrun or participant.")


class StoryTimeouts(WireModel):
    """Story-wide timeouts (durations)."""

    story: Duration | None = Field(None, description="Maximum duration of a whole run.")
    step: Duration | None = Field(None, description="Default timeout of a step.")
    graceful_shutdown_timeout: Duration | None = Field(
        None, description="Time given to running steps to stop on cancel."
    )


class StoryRetries(WireModel):
    """Story-wide retry behaviour."""

    step_retry_policy: RetryPolicy | None = Field(None, description="Default retry policy of steps.")
    continue_on_step_failure: bool = Field(False, description="Keep running other steps after a step fails.")


class StoryPolicy(WireModel):
    """Story-wide defaults."""

    timeouts: StoryTimeouts | None = Field(None, description="Run and step timeouts.")
    with_: JSONObject | None = Field(
        None, alias="with", description="Default inputs when this Story is invoked by executeStory."
    )
    retries: StoryRetries | None = Field(None, description="Retry behaviour.")
    concurrency: int | None = Field(None, description="Maximum Running StepRuns of this Story.", ge=0)
    queue: DNSLabel | None = Field(None, description="Queue name for scheduling.")
    priority: int | None = Field(None, description="Scheduling priority (higher first).", ge=0)
    storage: StoragePolicy | None = Field(None, description="Payload storage policy.")
    execution: ExecutionPolicy | None = Field(None, description="Default execution settings of steps.")


class StoryTransport(WireModel):
    """A named streaming transport used by steps."""

    name: DNSLabel = Field(description="Transport name referenced by steps[].transport.")
    transport_ref: str = Field(description="Name of the Transport resource.", min_length=1, max_length=253)
    description: str | None = Field(None, description="Human-readable description.", max_length=1024)
    streaming: TransportStreamingSettings | None = Field(None, description="Streaming policy overrides.")
    settings: JSONObject | None = Field(None, description="Provider-specific settings (free-form).")


class StorySpec(WireModel):
    """What the workflow does and how it runs."""

    version: str | None = Field(
        None, description="Version identifier used by storyRef.version pinning.", max_length=64
    )
    pattern: StoryPattern = Field("batch", description="batch (run to completion) or realtime (streaming).")
    concurrency: StoryConcurrency | None = Field(None, description="Realtime concurrency hint.")
    inputs_schema: JSONObject | None = Field(None, description="JSON Schema of StoryRun inputs.")
    outputs_schema: JSONObject | None = Field(None, description="JSON Schema of the evaluated output.")
    output: JSONObject | None = Field(
        None, description="Template evaluated on success into StoryRun.status.output."
    )
    steps: list[Step] = Field(
        description="The main DAG (1-1000 steps, ordered only by needs).",
        min_length=1,
        max_length=MAX_STEPS,
        json_schema_extra=list_map("name"),
    )
    compensations: list[Step] | None = Field(
        None,
        description="Steps run only when the main steps failed.",
        max_length=MAX_COMPENSATIONS,
        json_schema_extra=list_map("name"),
    )
    finally_: list[Step] | None = Field(
        None,
        alias="finally",
        description="Steps always run after the main steps (and compensations).",
        max_length=MAX_FINALLY,
        json_schema_extra=list_map("name"),
    )
    policy: StoryPolicy | None = Field(
        None, description="Story-wide defaults (timeouts, retries, storage...)."
    )
    transports: list[StoryTransport] | None = Field(
        None, description="Named streaming transports.", max_length=32
    )


class StoryTransportStatus(WireModel):
    """Resolved mode of a declared transport."""

    name: str = Field(description="Transport name.", max_length=63)
    transport_ref: str | None = Field(None, description="Referenced Transport.", max_length=253)
    mode: TransportMode | None = Field(None, description="hot or fallback.")
    mode_reason: str | None = Field(None, description="Why this mode was chosen.", max_length=256)


class StoryStatus(WireModel):
    """Observed state of a Story (written by the controller)."""

    observed_generation: int | None = Field(None, description="Generation the status reflects.", ge=0)
    conditions: list[Condition] | None = conditions_field()
    steps_total: int | None = Field(None, description="Number of steps + compensations + finally.", ge=0)
    transports: list[StoryTransportStatus] | None = Field(
        None, description="Resolved transports.", max_length=32
    )
    validation_status: ValidationStatus | None = Field(
        None, description="valid, invalid, unknown or pending."
    )
    validation_errors: list[str] | None = Field(None, description="Validation errors.", max_length=256)
    validation_warnings: list[str] | None = Field(None, description="Validation warnings.", max_length=256)
    usage_count: int | None = Field(None, description="Impulses whose storyRef targets this Story.", ge=0)
    triggers: int | None = Field(None, description="StoryRuns counted for this Story.", ge=0)


class Story(Resource):
    """A workflow definition: a DAG of steps run by StoryRuns."""

    api_version: Literal["bubustack.io/v1alpha1"] = Field(
        "bubustack.io/v1alpha1", description="API version of this object: bubustack.io/v1alpha1."
    )
    kind: Literal["Story"] = Field("Story", description="Kind of this object: Story.")
    spec: StorySpec = Field(description="The workflow: steps, compensations, finally, policies.")
    status: StoryStatus | None = Field(None, description="Observed state (written by the controller).")
