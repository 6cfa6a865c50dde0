"""Building blocks shared by several kinds: references and execution policies.

Mirrors §1.2 of the behaviour reference. Only CRD defaults live here (for
example ``RetryPolicy.maxRetries = 3`` and ``delay = "1s"``, which apply when
the object is present); webhook defaults are admission's business.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BeforeValidator, Field, StringConstraints

from bobrapet.api.types.base import DNS_LABEL_PATTERN, Duration, JSONObject, WireModel
from bobrapet.api.types.enums import (
    BackoffStrategy,
    CacheMode,
    DedupeMode,
    ImagePullPolicy,
    RestartPolicy,
    UpdateStrategyType,
    WorkloadMode,
)

# --------------------------------------------------------------------------- references

RefName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS_LABEL_PATTERN)]
RefNamespace = Annotated[str, StringConstraints(max_length=63, pattern=DNS_LABEL_PATTERN)]
Version = Annotated[str, StringConstraints(max_length=64)]


class ObjectReference(WireModel):
    """A reference to an object by name, optionally in another namespace."""

    name: RefName = Field(description="Name of the referenced object (a DNS label).")
    namespace: RefNamespace | None = Field(
        None,
        description="Namespace of the referenced object; empty means the referencing object's namespace.",
    )


class StoryReference(ObjectReference):
    """A reference to a Story, optionally pinned to a version."""

    version: Version | None = Field(None, description="Required Story.spec.version (pinning); empty = any.")
    uid: str | None = Field(None, description="UID recorded by controllers to detect drift.", max_length=64)


class EngramReference(ObjectReference):
    """A reference to an Engram, optionally pinned to a version."""

    version: Version | None = Field(None, description="Required Engram.spec.version (pinning); empty = any.")
    uid: str | None = Field(None, description="UID recorded by controllers to detect drift.", max_length=64)


class ImpulseReference(ObjectReference):
    """A reference to an Impulse (provenance of a run)."""

    version: Version | None = Field(None, description="Impulse.spec.version at the time of reference.")
    uid: str | None = Field(None, description="UID recorded by controllers to detect drift.", max_length=64)


class StoryRunReference(ObjectReference):
    """A reference to a StoryRun."""

    uid: str | None = Field(None, description="UID of the StoryRun, when known.", max_length=64)


class StepRunReference(ObjectReference):
    """A reference to a StepRun."""

    uid: str | None = Field(None, description="UID of the StepRun, when known.", max_length=64)


class TemplateReference(WireModel):
    """A reference to a cluster-scoped EngramTemplate or ImpulseTemplate (no namespace)."""

    name: RefName = Field(description="Name of the template (a DNS label).")
    version: Version | None = Field(None, description="Required template spec.version; empty = any.")
    uid: str | None = Field(None, description="UID recorded by controllers to detect drift.", max_length=64)


EngramTemplateReference = TemplateReference
ImpulseTemplateReference = TemplateReference


class LocalObjectReference(WireModel):
    """A reference to an object in the same namespace, by name."""

    name: str = Field(description="Name of the referenced object.", min_length=1, max_length=253)


def _secret_name(value: Any) -> Any:
    # Accept the ``{name: x}`` spelling some published examples use; store the plain name.
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("name"), str):
        return value["name"]
    return value


SecretName = Annotated[str, BeforeValidator(_secret_name), StringConstraints(min_length=1, max_length=253)]
"""Name of a Secret; ``{name: x}`` is accepted as a spelling of ``x`` and normalized to it."""

SecretBindings = dict[str, SecretName]
"""Logical secret name (from the template's secretSchema) → Secret name in the namespace."""


# --------------------------------------------------------------------------- retry


#: Retry defaults, defined once: the CRD defaults of :class:`RetryPolicy`, the values admission
#: fills into a written policy and the engine's ``retry.*`` defaults.
DEFAULT_MAX_RETRIES: Final = 3
DEFAULT_RETRY_DELAY: Final = "1s"
DEFAULT_RETRY_DELAY_SECONDS: Final = 1.0
DEFAULT_BACKOFF: Final = "exponential"


class RetryPolicy(WireModel):
    """How a failed step is retried."""

    max_retries: int = Field(
        DEFAULT_MAX_RETRIES,
        description="Maximum number of retries after the first attempt (0-10).",
        ge=0,
        le=10,
    )
    delay: Duration = Field(
        DEFAULT_RETRY_DELAY, description='Base delay between retries (duration, e.g. "1s", "30s").'
    )
    max_delay: Duration | None = Field(None, description="Upper bound of the computed delay (duration).")
    jitter: int | None = Field(
        None, description="Extra random delay, in percent of the delay (0-100).", ge=0, le=100
    )
    backoff: BackoffStrategy | None = Field(
        None, description="How the delay grows: exponential (doubles), linear or constant."
    )


# --------------------------------------------------------------------------- workload security / placement


class WorkloadSecurity(WireModel):
    """Security settings of the workload's pod/process."""

    run_as_non_root: bool | None = Field(None, description="Refuse to run as root.")
    allow_privilege_escalation: bool | None = Field(None, description="Allow privilege escalation.")
    read_only_root_filesystem: bool | None = Field(None, description="Mount the root filesystem read-only.")
    run_as_user: int | None = Field(None, description="UID to run the workload as.", ge=0)
    required_secrets: list[Annotated[str, StringConstraints(max_length=253)]] | None = Field(
        None, description="Secrets that must exist before the workload starts.", max_length=64
    )


class SecurityPolicy(WireModel):
    """Security settings of an execution policy."""

    run_as_non_root: bool | None = Field(None, description="Refuse to run as root.")
    allow_privilege_escalation: bool | None = Field(None, description="Allow privilege escalation.")
    read_only_root_filesystem: bool | None = Field(None, description="Mount the root filesystem read-only.")
    run_as_user: int | None = Field(None, description="UID to run the workload as.", ge=0)


class PlacementPolicy(WireModel):
    """Where a workload may be scheduled (Kubernetes mode)."""

    node_selector: dict[str, str] | None = Field(None, description="Node labels the pod must match.")
    tolerations: list[JSONObject] | None = Field(
        None, description="Pod tolerations (core/v1 Toleration objects, free-form).", max_length=64
    )
    affinity: JSONObject | None = Field(None, description="Pod affinity (core/v1 Affinity, free-form).")


class ProbeOverrides(WireModel):
    """Switches to disable the template's probes (they cannot be redefined here)."""

    disable_liveness: bool | None = Field(None, description="Disable the liveness probe.")
    disable_readiness: bool | None = Field(None, description="Disable the readiness probe.")
    disable_startup: bool | None = Field(None, description="Disable the startup probe.")


# --------------------------------------------------------------------------- storage / cache


class S3Authentication(WireModel):
    """How the workload authenticates to S3: service-account annotations or a Secret."""

    service_account_annotations: dict[str, str] | None = Field(
        None, description="Annotations for the generated ServiceAccount (e.g. IAM roles)."
    )
    secret_ref: LocalObjectReference | None = Field(
        None, description="Secret holding accessKeyID and secretAccessKey."
    )


class S3StorageProvider(WireModel):
    """An S3-compatible object store for offloaded payloads."""

    bucket: str = Field(description="Bucket name.", min_length=1, max_length=255)
    region: str | None = Field(None, description="Region of the bucket.", max_length=64)
    endpoint: str | None = Field(
        None, description="Endpoint URL (for S3-compatible stores).", max_length=2048
    )
    use_path_style: bool | None = Field(None, description="Force path-style addressing.")
    authentication: S3Authentication = Field(description="How to authenticate to the store.")


class FileStorageProvider(WireModel):
    """A filesystem directory for offloaded payloads."""

    path: str | None = Field(
        None,
        description="Directory to write to (the runtime uses /var/run/bubu/storage when empty).",
        max_length=4096,
    )
    volume_claim_name: str | None = Field(
        None, description="PersistentVolumeClaim to mount (Kubernetes mode).", max_length=253
    )
    empty_dir: JSONObject | None = Field(
        None, description="EmptyDir volume source to provision (core/v1, free-form)."
    )


class StoragePolicy(WireModel):
    """Where large payloads are offloaded."""

    s3: S3StorageProvider | None = Field(None, description="S3-compatible object store.")
    file: FileStorageProvider | None = Field(None, description="Filesystem-backed store.")
    timeout_seconds: int | None = Field(
        None, description="Timeout of one storage operation, in seconds.", ge=0
    )


class CachePolicy(WireModel):
    """Output cache of an Engram step."""

    enabled: bool = Field(True, description="Whether the cache is used (true when the policy is present).")
    key: str | None = Field(None, description="Template computing the cache key.", max_length=1024)
    salt: str | None = Field(None, description="Extra string mixed into the key.", max_length=256)
    mode: CacheMode = Field("readWrite", description="read, write or readWrite.")
    ttl_seconds: int | None = Field(None, description="Entry lifetime in seconds (<= 0: never expires).")


# --------------------------------------------------------------------------- rbac


class PolicyRule(WireModel):
    """An rbac/v1 PolicyRule."""

    api_groups: list[str] | None = Field(None, description="API groups the rule applies to.")
    resources: list[str] | None = Field(None, description="Resources the rule applies to.")
    verbs: list[str] = Field(description="Verbs allowed (get, list, watch, create, ...).")
    resource_names: list[str] | None = Field(None, description="Restrict to these object names.")
    non_resource_urls: list[str] | None = Field(
        None, alias="nonResourceURLs", description="Non-resource URLs the rule applies to."
    )


class RBACPolicy(WireModel):
    """Extra RBAC rules the workload's ServiceAccount needs (Kubernetes mode)."""

    rules: list[PolicyRule] | None = Field(None, description="rbac/v1 PolicyRules.", max_length=64)


# --------------------------------------------------------------------------- execution


class ExecutionOverrides(WireModel):
    """Per-instance execution tuning (Engram.spec.overrides, step.execution, Impulse.spec.execution)."""

    timeout: Duration | None = Field(None, description="Execution timeout (duration).")
    retry: RetryPolicy | None = Field(None, description="Retry policy override.")
    debug: bool | None = Field(None, description="Verbose component logging.")
    security: WorkloadSecurity | None = Field(None, description="Security settings override.")
    placement: PlacementPolicy | None = Field(None, description="Scheduling constraints override.")
    image_pull_policy: ImagePullPolicy | None = Field(None, description="Always, Never or IfNotPresent.")
    max_inline_size: int | None = Field(
        None, description="Inline payload limit in bytes; larger values are offloaded (0 = always).", ge=0
    )
    service_account_name: RefName | None = Field(
        None, description="ServiceAccount to use (ignored for Story steps and Engrams)."
    )
    automount_service_account_token: bool | None = Field(
        None, description="Mount the ServiceAccount token (ignored for Story steps and Engrams)."
    )
    probes: ProbeOverrides | None = Field(None, description="Disable template-defined probes.")
    storage: StoragePolicy | None = Field(None, description="Storage policy override.")
    cache: CachePolicy | None = Field(None, description="Output cache policy.")
    rbac: RBACPolicy | None = Field(None, description="Extra RBAC rules for the workload.")


class ResourcePolicy(WireModel):
    """Concrete CPU/memory requests and limits (quantity strings)."""

    cpu_request: str | None = Field(None, description='CPU request, e.g. "100m".', max_length=64)
    memory_request: str | None = Field(None, description='Memory request, e.g. "128Mi".', max_length=64)
    cpu_limit: str | None = Field(None, description='CPU limit, e.g. "1".', max_length=64)
    memory_limit: str | None = Field(None, description='Memory limit, e.g. "1Gi".', max_length=64)


class JobPolicy(WireModel):
    """Job settings of an execution policy."""

    backoff_limit: int | None = Field(None, description="Job backoffLimit.", ge=0)
    ttl_seconds_after_finished: int | None = Field(
        None, description="Seconds to keep finished children (StepRuns, pods) before cleanup."
    )
    story_run_retention_seconds: int | None = Field(
        None, description="Seconds to keep a finished StoryRun record (0 = keep forever)."
    )
    restart_policy: RestartPolicy | None = Field(None, description="Pod restartPolicy: Never or OnFailure.")


class RealtimePolicy(WireModel):
    """Streaming-specific execution settings."""

    ttl_seconds_after_finished: int | None = Field(
        None, description="Seconds realtime workloads linger after finish (0: delete now, <0: keep)."
    )


class ExecutionPolicy(WireModel):
    """Execution defaults (Story.spec.policy.execution, Engram.spec.executionPolicy)."""

    resources: ResourcePolicy | None = Field(None, description="CPU/memory requests and limits.")
    security: SecurityPolicy | None = Field(None, description="Security settings.")
    placement: PlacementPolicy | None = Field(None, description="Scheduling constraints.")
    job: JobPolicy | None = Field(None, description="Job settings.")
    retry: RetryPolicy | None = Field(None, description="Retry policy.")
    timeout: Duration | None = Field(None, description="Execution timeout (duration).")
    max_recursion_depth: int | None = Field(None, description="Maximum executeStory nesting depth.", ge=1)
    service_account_name: str | None = Field(
        None,
        description="ServiceAccount name (ignored: workloads never choose their identity).",
        max_length=253,
    )
    storage: StoragePolicy | None = Field(None, description="Storage policy.")
    cache: CachePolicy | None = Field(None, description="Output cache policy.")
    realtime: RealtimePolicy | None = Field(None, description="Realtime workload settings.")


# --------------------------------------------------------------------------- workload (Impulse)


class JobWorkloadConfig(WireModel):
    """batch/v1 Job knobs."""

    parallelism: int | None = Field(None, description="Job parallelism.", ge=0)
    completions: int | None = Field(None, description="Job completions.", ge=0)
    backoff_limit: int | None = Field(None, description="Job backoffLimit.", ge=0)
    active_deadline_seconds: int | None = Field(None, description="Job activeDeadlineSeconds.", ge=0)
    ttl_seconds_after_finished: int | None = Field(None, description="Job ttlSecondsAfterFinished.", ge=0)


class StatefulSetWorkloadConfig(WireModel):
    """StatefulSet knobs."""

    service_name: str = Field(
        description="Headless Service giving stable network identities.", max_length=253
    )
    pod_management_policy: str | None = Field(None, description="OrderedReady or Parallel.", max_length=32)


class ResourceQuantities(WireModel):
    """CPU, memory and ephemeral-storage quantities."""

    cpu: str | None = Field(None, description='CPU quantity, e.g. "100m".', max_length=64)
    memory: str | None = Field(None, description='Memory quantity, e.g. "128Mi".', max_length=64)
    ephemeral_storage: str | None = Field(None, description='Ephemeral storage, e.g. "1Gi".', max_length=64)


class WorkloadResources(WireModel):
    """Pod resources and placement of a workload."""

    requests: ResourceQuantities | None = Field(None, description="Resource requests.")
    limits: ResourceQuantities | None = Field(None, description="Resource limits.")
    placement: PlacementPolicy | None = Field(None, description="Scheduling constraints.")


class RollingUpdateConfig(WireModel):
    """Rolling update parameters (absolute number or percentage)."""

    max_unavailable: str | None = Field(None, description='Pods that may be unavailable, e.g. "1" or "25%".')
    max_surge: str | None = Field(None, description="Extra pods during the update (Deployments only).")


class UpdateStrategy(WireModel):
    """How workload changes are rolled out."""

    type: UpdateStrategyType | None = Field(None, description="RollingUpdate or Recreate.")
    rolling_update: RollingUpdateConfig | None = Field(None, description="Rolling update parameters.")


class WorkloadSpec(WireModel):
    """The workload backing an Impulse."""

    mode: WorkloadMode = Field("job", description="job, deployment or statefulset.")
    job: JobWorkloadConfig | None = Field(None, description="Job settings (mode job).")
    stateful_set: StatefulSetWorkloadConfig | None = Field(
        None, description="StatefulSet settings (mode statefulset)."
    )
    resources: WorkloadResources | None = Field(None, description="Pod resources and placement.")
    update_strategy: UpdateStrategy | None = Field(None, description="Rollout strategy.")


class ServiceExposure(WireModel):
    """How the generated Service is exposed (ports come from the template)."""

    type: str | None = Field(
        None, description="Service type: ClusterIP, NodePort or LoadBalancer.", max_length=32
    )
    labels: dict[str, str] | None = Field(None, description="Labels merged into the Service.")
    annotations: dict[str, str] | None = Field(None, description="Annotations merged into the Service.")


# --------------------------------------------------------------------------- triggers


class TriggerDedupePolicy(WireModel):
    """How repeated trigger deliveries are recognised."""

    mode: DedupeMode | None = Field(None, description="none, token or key.")
    key_template: str | None = Field(
        None, description="Template computing the delivery key (only with mode key).", max_length=1024
    )


class TriggerRetryPolicy(WireModel):
    """How failed trigger deliveries are retried."""

    max_attempts: int | None = Field(None, description="Maximum delivery attempts.", ge=0)
    base_delay: Duration | None = Field(None, description="Delay before the first retry (duration).")
    max_delay: Duration | None = Field(None, description="Upper bound of the delay (duration).")
    backoff: BackoffStrategy | None = Field(None, description="exponential, linear or constant.")


class TriggerDeliveryPolicy(WireModel):
    """Deduplication and retry of trigger deliveries."""

    dedupe: TriggerDedupePolicy | None = Field(None, description="Deduplication of deliveries.")
    retry: TriggerRetryPolicy | None = Field(None, description="Retry of failed deliveries.")


class TriggerThrottlePolicy(WireModel):
    """Rate limits of trigger deliveries (values <= 0 disable a limit)."""

    max_in_flight: int | None = Field(None, description="Maximum deliveries in flight.")
    rate_per_second: int | None = Field(None, description="Maximum deliveries per second.")
    burst: int | None = Field(None, description="Burst size (defaults to the rate).")
