"""Enumerations of the API, as ``Literal`` aliases plus tuples of their values.

The tuples are derived from the aliases (``get_args``) so the two can never
drift apart; code that needs to iterate uses the tuple, annotations use the alias.
"""

from __future__ import annotations

from typing import Literal, get_args

Phase = Literal[
    "Pending",
    "Running",
    "Succeeded",
    "Failed",
    "Finished",
    "Canceled",
    "Compensated",
    "Paused",
    "Blocked",
    "Scheduling",
    "Timeout",
    "Aborted",
    "Skipped",
]
PHASES: tuple[str, ...] = get_args(Phase)
TERMINAL_PHASES: frozenset[str] = frozenset(
    {"Succeeded", "Failed", "Finished", "Canceled", "Compensated", "Timeout", "Aborted", "Skipped"}
)

StopMode = Literal["success", "failure", "cancel"]
STOP_MODES: tuple[str, ...] = get_args(StopMode)

StepType = Literal["condition", "parallel", "sleep", "stop", "wait", "executeStory", "gate"]
STEP_TYPES: tuple[str, ...] = get_args(StepType)

WorkloadMode = Literal["job", "deployment", "statefulset"]
WORKLOAD_MODES: tuple[str, ...] = get_args(WorkloadMode)

BackoffStrategy = Literal["exponential", "linear", "constant"]
BACKOFF_STRATEGIES: tuple[str, ...] = get_args(BackoffStrategy)

ValidationStatus = Literal["valid", "invalid", "unknown", "pending"]
VALIDATION_STATUSES: tuple[str, ...] = get_args(ValidationStatus)

ExitClass = Literal["success", "retry", "terminal", "rateLimited", "unknown"]
EXIT_CLASSES: tuple[str, ...] = get_args(ExitClass)

SecretMountType = Literal["env", "file", "both"]
SECRET_MOUNT_TYPES: tuple[str, ...] = get_args(SecretMountType)

TransportMode = Literal["hot", "fallback"]
TRANSPORT_MODES: tuple[str, ...] = get_args(TransportMode)

StoryPattern = Literal["batch", "realtime"]
STORY_PATTERNS: tuple[str, ...] = get_args(StoryPattern)

ImagePullPolicy = Literal["Always", "Never", "IfNotPresent"]
IMAGE_PULL_POLICIES: tuple[str, ...] = get_args(ImagePullPolicy)

RestartPolicy = Literal["Never", "OnFailure"]
RESTART_POLICIES: tuple[str, ...] = get_args(RestartPolicy)

CacheMode = Literal["read", "write", "readWrite"]
CACHE_MODES: tuple[str, ...] = get_args(CacheMode)

DedupeMode = Literal["none", "token", "key"]
DEDUPE_MODES: tuple[str, ...] = get_args(DedupeMode)

GateState = Literal["Pending", "Approved", "Rejected"]
GATE_STATES: tuple[str, ...] = get_args(GateState)

TriggerDecision = Literal["Pending", "Created", "Reused", "Rejected"]
TRIGGER_DECISIONS: tuple[str, ...] = get_args(TriggerDecision)

EffectCompletionStatus = Literal["completed", "released", "abandoned"]
EFFECT_COMPLETION_STATUSES: tuple[str, ...] = get_args(EffectCompletionStatus)

EffectClaimPhase = Literal["Reserved", "Completed", "Released", "Abandoned"]
EFFECT_CLAIM_PHASES: tuple[str, ...] = get_args(EffectClaimPhase)

HandoffPhase = Literal["pending", "draining", "cutover", "ready"]
HANDOFF_PHASES: tuple[str, ...] = get_args(HandoffPhase)

StructuredErrorType = Literal[
    "timeout",
    "storage_error",
    "serialization_error",
    "validation_error",
    "initialization_error",
    "execution_error",
    "unknown",
]
STRUCTURED_ERROR_TYPES: tuple[str, ...] = get_args(StructuredErrorType)

MediaDirection = Literal["publish", "subscribe", "bidirectional"]
MEDIA_DIRECTIONS: tuple[str, ...] = get_args(MediaDirection)

AudioCodecName = Literal["pcm16", "pcm24", "opus", "g711-mu", "g711-a", "g722", "aac", "mp3", "flac", "raw"]
AUDIO_CODECS: tuple[str, ...] = get_args(AudioCodecName)

VideoCodecName = Literal["h264", "vp8", "vp9", "av1", "raw-yuv420", "raw-rgb", "raw-bgr"]
VIDEO_CODECS: tuple[str, ...] = get_args(VideoCodecName)

UpdateStrategyType = Literal["RollingUpdate", "Recreate"]
UPDATE_STRATEGY_TYPES: tuple[str, ...] = get_args(UpdateStrategyType)
