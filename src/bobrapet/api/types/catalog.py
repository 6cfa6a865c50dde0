"""EngramTemplate and ImpulseTemplate: cluster-scoped catalog entries (§1.6).

A template says how to run its component (DESIGN.md "Execution"): ``image``
(Kubernetes), ``entrypoint`` (``package.module:callable``, a Python engram) or
``command`` (any program, run as a subprocess in embedded mode). All three are
optional here; whether at least one is required is an admission rule.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from bobrapet.api.types.base import (
    ENTRYPOINT_PATTERN,
    Condition,
    Duration,
    JSONObject,
    Resource,
    WireModel,
    conditions_field,
)
from bobrapet.api.types.enums import (
    BackoffStrategy,
    ImagePullPolicy,
    RestartPolicy,
    SecretMountType,
    ValidationStatus,
    WorkloadMode,
)
from bobrapet.api.types.shared import RBACPolicy, StoragePolicy, TriggerDeliveryPolicy


class SecretDefinition(WireModel):
    """A secret the component expects, and how it is exposed to it."""

    required: bool | None = Field(None, description="The Engram/Impulse must bind this secret.")
    description: str | None = Field(None, description="What the secret is for.", max_length=2048)
    mount_type: SecretMountType | None = Field(
        None, description="env (default), file or both: environment variables, files, or both."
    )
    env_prefix: str | None = Field(
        None,
        description="Prefix of the environment variables <envPrefix><key> (default '<name>_').",
        max_length=128,
    )
    mount_path: str | None = Field(
        None,
        description=(
            "Directory holding one file per key (default /etc/bubu/secrets/<name>); embedded, it is "
            "re-rooted under the step's private $BUBU_SECRETS_DIR."
        ),
        max_length=4096,
    )
    expected_keys: list[str] | None = Field(
        None,
        description="Keys the Secret must contain (checked at launch); with env only these become variables.",
        max_length=256,
    )


class TemplateImagePolicy(WireModel):
    """Image settings."""

    pull_policy: ImagePullPolicy | None = Field(None, description="Always, Never or IfNotPresent.")


class TemplateResourcePolicy(WireModel):
    """Recommended and minimum resources (quantity strings)."""

    recommended_cpu_request: str | None = Field(None, description="Recommended CPU request.", max_length=64)
    recommended_cpu_limit: str | None = Field(None, description="Recommended CPU limit.", max_length=64)
    recommended_memory_request: str | None = Field(
        None, description="Recommended memory request.", max_length=64
    )
    recommended_memory_limit: str | None = Field(None, description="Recommended memory limit.", max_length=64)
    min_cpu_request: str | None = Field(None, description="Minimum CPU request.", max_length=64)
    min_memory_request: str | None = Field(None, description="Minimum memory request.", max_length=64)


class TemplateSecurityPolicy(WireModel):
    """Security requirements of the component."""

    requires_non_root: bool | None = Field(None, description="Must run as non-root.")
    requires_read_only_root: bool | None = Field(
        None, description="Must run with a read-only root filesystem."
    )
    requires_no_privilege_escalation: bool | None = Field(None, description="Must not escalate privileges.")
    recommended_run_as_user: int | None = Field(None, description="Recommended UID.", ge=0)


class TemplateJobPolicy(WireModel):
    """Recommended Job settings."""

    recommended_backoff_limit: int | None = Field(None, description="Recommended backoffLimit.", ge=0)
    recommended_ttl_seconds_after_finished: int | None = Field(
        None, description="Recommended ttlSecondsAfterFinished.", ge=0
    )
    recommended_restart_policy: RestartPolicy | None = Field(None, description="Never or OnFailure.")


class TemplateRetryPolicy(WireModel):
    """Recommended retry settings."""

    recommended_max_retries: int | None = Field(None, description="Recommended maxRetries.", ge=0, le=10)
    recommended_backoff: BackoffStrategy | None = Field(None, description="exponential, linear or constant.")
    recommended_base_delay: Duration | None = Field(None, description="Recommended base delay (duration).")
    recommended_max_delay: Duration | None = Field(None, description="Recommended maximum delay (duration).")


class ServicePort(WireModel):
    """A port the component listens on."""

    name: str | None = Field(None, description="Port name.", max_length=63)
    protocol: Literal["TCP", "UDP", "SCTP"] | None = Field(None, description="TCP, UDP or SCTP.")
    port: int = Field(description="Service port.", ge=1, le=65535)
    target_port: int | None = Field(None, description="Container port (defaults to port).", ge=1, le=65535)


class TemplateServicePolicy(WireModel):
    """Service exposure of the component."""

    ports: list[ServicePort] | None = Field(None, description="Ports to expose.", max_length=32)


class TemplateProbes(WireModel):
    """Probes of the component (core/v1 Probe objects, free-form)."""

    liveness: JSONObject | None = Field(None, description="Liveness probe.")
    readiness: JSONObject | None = Field(None, description="Readiness probe.")
    startup: JSONObject | None = Field(None, description="Startup probe.")


class TemplateExecutionPolicy(WireModel):
    """Execution recommendations and requirements of a template."""

    images: TemplateImagePolicy | None = Field(None, description="Image settings.")
    resources: TemplateResourcePolicy | None = Field(None, description="Resource recommendations.")
    security: TemplateSecurityPolicy | None = Field(None, description="Security requirements.")
    job: TemplateJobPolicy | None = Field(None, description="Job recommendations.")
    retry: TemplateRetryPolicy | None = Field(None, description="Retry recommendations.")
    timeout: Duration | None = Field(None, description="Default execution timeout (duration).")
    service: TemplateServicePolicy | None = Field(None, description="Service ports.")
    probes: TemplateProbes | None = Field(None, description="Liveness/readiness/startup probes.")
    storage: StoragePolicy | None = Field(None, description="Storage policy.")
    rbac: RBACPolicy | None = Field(None, description="RBAC rules the component needs.")


CommandArg = Annotated[str, StringConstraints(max_length=4096)]


class TemplateSpec(WireModel):
    """Fields common to EngramTemplate and ImpulseTemplate."""

    version: str | None = Field(
        None, description="Template version (pinned by templateRef.version).", max_length=64
    )
    description: str | None = Field(None, description="What the component does.", max_length=4096)
    supported_modes: list[WorkloadMode] = Field(
        description="Workload modes the component supports: job, deployment, statefulset.",
        min_length=1,
        max_length=3,
    )
    config_schema: JSONObject | None = Field(None, description="JSON Schema of the instance's with.")
    secret_schema: dict[str, SecretDefinition] | None = Field(
        None, description="Secrets the component expects, by logical name."
    )
    image: str | None = Field(None, description="Container image (Kubernetes mode).", max_length=512)
    entrypoint: str | None = Field(
        None,
        description='Python callable to run, "package.module:callable" (both modes).',
        max_length=512,
        pattern=ENTRYPOINT_PATTERN,
    )
    command: list[CommandArg] | None = Field(
        None,
        description="Program and arguments to run (embedded mode runs it as a subprocess).",
        min_length=1,
        max_length=256,
    )
    execution: TemplateExecutionPolicy | None = Field(None, description="Execution recommendations.")


class EngramTemplateSpec(TemplateSpec):
    """An EngramTemplate: how to run an engram and what it consumes/produces."""

    input_schema: JSONObject | None = Field(None, description="JSON Schema of the step inputs.")
    output_schema: JSONObject | None = Field(None, description="JSON Schema of the step output.")
    declared_output_keys: list[str] | None = Field(
        None, description="Top-level output keys the engram promises.", max_length=256
    )


class ImpulseTemplateSpec(TemplateSpec):
    """An ImpulseTemplate: how to run an event source and what it emits."""

    context_schema: JSONObject | None = Field(None, description="JSON Schema of the trigger context.")
    delivery_policy: TriggerDeliveryPolicy | None = Field(None, description="Default delivery policy.")


class TemplateStatus(WireModel):
    """Observed state of a template."""

    observed_generation: int | None = Field(None, description="Generation the status reflects.", ge=0)
    conditions: list[Condition] | None = conditions_field()
    usage_count: int | None = Field(None, description="Engrams/Impulses using this template.", ge=0)
    validation_status: ValidationStatus | None = Field(
        None, description="valid, invalid, unknown or pending."
    )
    validation_errors: list[str] | None = Field(None, description="Validation errors.", max_length=256)


class EngramTemplate(Resource):
    """A catalog entry describing a reusable worker (cluster-scoped)."""

    api_version: Literal["catalog.bubustack.io/v1alpha1"] = Field(
        "catalog.bubustack.io/v1alpha1",
        description="API version of this object: catalog.bubustack.io/v1alpha1.",
    )
    kind: Literal["EngramTemplate"] = Field(
        "EngramTemplate", description="Kind of this object: EngramTemplate."
    )
    spec: EngramTemplateSpec = Field(description="How to run the engram and its schemas.")
    status: TemplateStatus | None = Field(None, description="Observed state (written by the controller).")


class ImpulseTemplate(Resource):
    """A catalog entry describing a reusable event source (cluster-scoped)."""

    api_version: Literal["catalog.bubustack.io/v1alpha1"] = Field(
        "catalog.bubustack.io/v1alpha1",
        description="API version of this object: catalog.bubustack.io/v1alpha1.",
    )
    kind: Literal["ImpulseTemplate"] = Field(
        "ImpulseTemplate", description="Kind of this object: ImpulseTemplate."
    )
    spec: ImpulseTemplateSpec = Field(description="How to run the event source and its schemas.")
    status: TemplateStatus | None = Field(None, description="Observed state (written by the controller).")
