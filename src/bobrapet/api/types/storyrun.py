"""StoryRun: one execution of a Story (§1.7).

Status invariants (CEL rules in the CRD, the same checks in Python): when
``conditions`` are set they include ``Ready``; every condition has a
``lastTransitionTime``; ``reason`` ≤ 64 and ``message`` ≤ 2048 characters.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from bobrapet.api.types.base import (
    CONDITION_CEL_RULES,
    READY_CEL_RULES,
    Condition,
    JSONObject,
    JSONValue,
    Resource,
    Timestamp,
    WireModel,
    cel,
    check_conditions_limits,
    conditions_field,
)
from bobrapet.api.types.enums import GateState, Phase
from bobrapet.api.types.runs_common import SchemaReference, TraceInfo
from bobrapet.api.types.shared import ImpulseReference, StoryReference


class StoryRunSpec(WireModel):
    """Which Story to run, with which inputs."""

    story_ref: StoryReference = Field(description="The Story to run (optionally pinned to a version).")
    impulse_ref: ImpulseReference | None = Field(
        None, description="The Impulse that started the run (provenance)."
    )
    inputs: JSONObject | None = Field(
        None, description="Inputs of the run, validated against the Story inputsSchema."
    )
    cancel_requested: bool | None = Field(
        None, description="Set to true to cancel the run (may only go from unset/false to true)."
    )


class StepState(WireModel):
    """Execution state of one step of the run."""

    phase: Phase | None = Field(None, description="Phase of the step.")
    message: str | None = Field(None, description="Human-readable details.", max_length=32768)
    reason: str | None = Field(
        None, description="Machine-readable reason code (e.g. why a launch failed).", max_length=64
    )
    started_at: Timestamp | None = Field(None, description="When the step started.")
    finished_at: Timestamp | None = Field(None, description="When the step finished.")
    sub_story_run_name: str | None = Field(
        None, description="Child StoryRun started by an executeStory step.", max_length=253
    )
    step_run: str | None = Field(
        None,
        description="StepRun holding the detail (message, output) of a step that succeeded.",
        max_length=253,
    )


class StorySnapshotReference(WireModel):
    """The Story a run executes, fixed when it starts (a content-addressed copy).

    The copy is a ConfigMap named ``name`` in the run's namespace, owned by the run (and
    garbage-collected with it); its key ``story.json`` holds the Story (name, namespace,
    spec) whose canonical JSON hashes to ``hash``. Later edits of the Story never change it.
    """

    name: str = Field(description="ConfigMap holding the copy.", max_length=253)
    hash: str = Field(description='"sha256:<hex>" of the copy\'s canonical JSON.', max_length=80)
    generation: int | None = Field(
        None, description="metadata.generation of the Story when it was copied.", ge=0
    )
    version: str | None = Field(None, description="spec.version of the Story, if any.", max_length=64)


class GateStatus(WireModel):
    """Decision on a gate step (written by people or tools)."""

    state: GateState | None = Field(None, description="Pending, Approved or Rejected.")
    message: str | None = Field(None, description="Why the decision was taken.", max_length=4096)
    updated_at: Timestamp | None = Field(None, description="When the decision was recorded.")
    updated_by: str | None = Field(None, description="Who recorded the decision.", max_length=256)


_STATUS_RULES = cel(*READY_CEL_RULES, *CONDITION_CEL_RULES)


class StoryRunStatus(WireModel):
    """Observed state of a StoryRun (written by the controller, except gates)."""

    model_config = ConfigDict(json_schema_extra=_STATUS_RULES)

    observed_generation: int | None = Field(
        None, description="Generation the status reflects (never decreases).", ge=0
    )
    phase: Phase | None = Field(None, description="Summary phase of the run.")
    message: str | None = Field(None, description="Human-readable summary.", max_length=32768)
    active: list[str] | None = Field(
        None, description="Steps currently running (legacy summary).", max_length=1000
    )
    completed: list[str] | None = Field(
        None, description="Steps completed (legacy summary).", max_length=1100
    )
    primitive_children: dict[str, list[str]] | None = Field(
        None, description="Parallel step name -> names of its child StepRuns."
    )
    started_at: Timestamp | None = Field(None, description="When the run started.")
    finished_at: Timestamp | None = Field(None, description="When the run finished.")
    duration: str | None = Field(None, description='Rounded run duration, e.g. "1m5s".', max_length=64)
    children_cleaned_at: Timestamp | None = Field(
        None, description="When children were deleted after the TTL."
    )
    trace: TraceInfo | None = Field(None, description="Trace identifiers.")
    attempts: int | None = Field(None, description="Number of transitions into Running.", ge=0)
    input_schema_ref: SchemaReference | None = Field(
        None, description="Schema the inputs were validated against."
    )
    output_schema_ref: SchemaReference | None = Field(
        None, description="Schema the output was validated against."
    )
    output: JSONValue | None = Field(None, description="Evaluated spec.output (at most 1 MiB).")
    step_states: dict[str, StepState] | None = Field(None, description="Step name -> execution state.")
    gates: dict[str, GateStatus] | None = Field(
        None, description="Gate step name -> decision (written by people or tools)."
    )
    error: JSONObject | None = Field(None, description="Failure summary: type, message, failedSteps.")
    conditions: list[Condition] | None = conditions_field("Ready, Progressing and Degraded conditions.")
    steps_total: int | None = Field(None, description="Number of steps.", ge=0)
    steps_complete: int | None = Field(None, description="Steps that Succeeded.", ge=0)
    steps_failed: int | None = Field(None, description="Steps that Failed.", ge=0)
    steps_skipped: int | None = Field(None, description="Steps that were Skipped.", ge=0)
    allowed_failures: list[str] | None = Field(
        None, description="allowFailure steps that did not succeed (sorted).", max_length=1100
    )
    trigger_tokens: list[str] | None = Field(
        None, description="Idempotent counters already applied (story, impulse, ...).", max_length=16
    )
    story_snapshot: StorySnapshotReference | None = Field(
        None, description="The Story this run executes, fixed when it started (written once)."
    )

    @model_validator(mode="after")
    def _conditions(self) -> StoryRunStatus:
        check_conditions_limits(self.conditions, require_ready=True)
        return self


class StoryRun(Resource):
    """One execution of a Story."""

    api_version: Literal["runs.bubustack.io/v1alpha1"] = Field(
        "runs.bubustack.io/v1alpha1", description="API version of this object: runs.bubustack.io/v1alpha1."
    )
    kind: Literal["StoryRun"] = Field("StoryRun", description="Kind of this object: StoryRun.")
    spec: StoryRunSpec = Field(description="Story reference and inputs (immutable except cancelRequested).")
    status: StoryRunStatus | None = Field(None, description="Observed state (written by the controller).")
