"""Engine settings (reference §9.1 keys that drive execution), with Bobrapet's defaults.

Invariants: every duration is in seconds (float); ``None`` means "no limit" for the
optional limits; ``0`` for a concurrency limit means "unlimited". Values are plain data,
so the pure engine can be tested with any configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bobrapet.api.types.shared import DEFAULT_BACKOFF, DEFAULT_MAX_RETRIES, DEFAULT_RETRY_DELAY_SECONDS
from bobrapet.storage.settings import StorageSettings

#: ``templating.offloaded-data-policy`` values offered embedded (reference §3.7; ``inject``
#: materializes with a helper pod and exists only on Kubernetes).
OffloadedDataPolicy = Literal["controller", "error"]
#: The embedded default storage: files under the home directory (path filled by the host).
EMBEDDED_STORAGE = StorageSettings(provider="file", force_path_style=True)


@dataclass(frozen=True)
class QueueConfig:
    """One scheduling queue (``storyrun.queue.<name>.*``)."""

    concurrency: int = 0
    default_priority: int = 0
    priority_aging_seconds: float = 60.0


@dataclass(frozen=True)
class EngineConfig:
    #: Step timeout when neither the StepRun nor the Story sets one (``timeout.default-step``).
    default_step_timeout: float = 1800.0
    #: Gate timeout when the gate sets none (``timeout.approval-default``); ``None`` waits forever.
    approval_default_timeout: float | None = 86400.0
    #: ``retry.max-retries`` and the retry defaults filled in when a policy leaves them unset.
    default_max_retries: int = DEFAULT_MAX_RETRIES
    default_retry_delay: float = DEFAULT_RETRY_DELAY_SECONDS
    default_backoff: str = DEFAULT_BACKOFF
    #: Requeue of a running StoryRun when nothing else wakes it (``controller.requeue-base-delay``).
    requeue_base_delay: float = 5.0
    #: Maximum executeStory nesting depth (deliberate difference: the Go operator has none).
    max_sub_story_depth: int = 10
    #: Grace period of a cancel before remaining StepRuns are deleted.
    graceful_cancel_timeout: float = 30.0
    #: Children of a finished run are deleted after this (``job.ttl-seconds-after-finished``).
    child_ttl_seconds: float = 3600.0
    #: A finished StoryRun is deleted after this (``storyrun.retention-seconds``); ``None`` keeps it.
    retention_seconds: float | None = 86400.0
    #: Events are deleted this long after their last occurrence (kube-apiserver ``--event-ttl``).
    event_ttl_seconds: float = 3600.0
    #: ``storyrun.max-inline-inputs-size`` (bytes of spec.inputs); 0 = unlimited.
    max_inline_inputs_size: int = 1 << 20
    #: Largest unresolved step input stored in ``StepRun.spec.input`` (bytes); the same limit
    #: admission applies to a Story's ``with`` blocks and to StepRun specs.
    max_step_spec_input: int = 65536
    #: Largest resolved step input handed to an engram inline (bytes); above it the input is
    #: offloaded to storage when storage is enabled, else the step fails (``InputTooLarge``).
    max_inline_step_input: int = 1 << 20
    #: ``engram.default-max-inline-size``: values of a step's output above this many bytes are
    #: offloaded to storage (reference §7.1; per step: ``execution.maxInlineSize``).
    max_inline_size: int = 4096
    #: Where offloaded values live (``controller.storage.*``): by default the ``file`` backend,
    #: whose empty ``path`` the engine host resolves to ``<home>/storage``.
    storage: StorageSettings = field(default_factory=lambda: EMBEDDED_STORAGE)
    #: ``templating.offloaded-data-policy``: how templates over offloaded data are evaluated.
    offloaded_data_policy: OffloadedDataPolicy = "controller"
    #: Most bytes of offloaded data the engine loads to evaluate one template (``controller``).
    max_controller_hydration: int = 64 << 20
    #: Largest evaluated Story output stored in ``status.output`` (bytes).
    max_output_size: int = 1 << 20
    #: ``storyrun.global-concurrency``: Running StepRuns across all runs; 0 = unlimited.
    global_concurrency: int = 0
    #: ``storyrun.queue.<name>.*``; queues not listed use ``QueueConfig()``.
    queues: dict[str, QueueConfig] = field(default_factory=lambda: {"default": QueueConfig()})
    #: ``templating.deterministic``: when true ``now()`` and random helpers are unavailable.
    deterministic_templates: bool = False

    def queue(self, name: str) -> QueueConfig:
        return self.queues.get(name, QueueConfig())
