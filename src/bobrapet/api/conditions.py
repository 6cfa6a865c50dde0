"""Status conditions: the type and reason vocabulary, and pure helpers on dicts.

Conditions travel in wire form (``metav1.Condition``)::

    {"type": "Ready", "status": "True", "reason": "ValidationPassed", "message": "...",
     "observedGeneration": 3, "lastTransitionTime": "2026-01-01T00:00:00Z"}

Invariants kept by :func:`set_condition`:

* at most one entry per ``type`` (the list keeps its order; new types are appended);
* ``lastTransitionTime`` changes only when ``status`` changes (or the entry is new);
* ``observedGeneration`` is stamped on every set;
* ``reason`` is at most 64 characters and ``message`` at most 2048 (the CRD rules), longer
  values are truncated rather than rejected by the API server later.

Nothing here reads a clock: callers pass ``now``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from bobrapet.api.timestamps import format_timestamp

# -- condition types (reference §1.14) ---------------------------------------------------------
READY: Final = "Ready"
PROGRESSING: Final = "Progressing"
DEGRADED: Final = "Degraded"
TERMINATING: Final = "Terminating"
VALIDATED: Final = "Validated"
TEMPLATE_RESOLVED: Final = "TemplateResolved"
LARGE_DATA_DELEGATED: Final = "LargeDataDelegated"
COMPILED: Final = "Compiled"
SCHEDULED: Final = "Scheduled"
RESOLVED_INPUTS: Final = "ResolvedInputs"
STEPS_COMPLETED: Final = "StepsCompleted"
LISTENING: Final = "Listening"
STORY_RESOLVED: Final = "StoryResolved"
TRANSPORT_READY: Final = "TransportReady"

CONDITION_TYPES: Final = (
    READY, PROGRESSING, DEGRADED, TERMINATING, VALIDATED, TEMPLATE_RESOLVED,
    LARGE_DATA_DELEGATED, COMPILED, SCHEDULED, RESOLVED_INPUTS, STEPS_COMPLETED, LISTENING,
    STORY_RESOLVED, TRANSPORT_READY,
)  # fmt: skip


class Reason:
    """The stable reason strings of reference §1.14 (``Reason.VALIDATION_PASSED`` ...)."""

    VALIDATION_PASSED: Final = "ValidationPassed"
    TEMPLATE_RESOLVED: Final = "TemplateResolved"
    STORY_RESOLVED: Final = "StoryResolved"
    COMPILED: Final = "Compiled"
    SCHEDULED: Final = "Scheduled"
    LISTENING: Final = "Listening"
    COMPLETED: Final = "Completed"
    LARGE_DATA_DELEGATED: Final = "LargeDataDelegated"
    VALIDATION_FAILED: Final = "ValidationFailed"
    TEMPLATE_NOT_FOUND: Final = "TemplateNotFound"
    TEMPLATE_RESOLUTION_FAILED: Final = "TemplateResolutionFailed"
    OUTPUT_RESOLUTION_FAILED: Final = "OutputResolutionFailed"
    STORY_NOT_FOUND: Final = "StoryNotFound"
    STORY_REFERENCE_INVALID: Final = "StoryReferenceInvalid"
    ENGRAM_REFERENCE_INVALID: Final = "EngramReferenceInvalid"
    TRANSPORT_REFERENCE_INVALID: Final = "TransportReferenceInvalid"
    COMPILATION_FAILED: Final = "CompilationFailed"
    SCHEDULING_FAILED: Final = "SchedulingFailed"
    EXECUTION_FAILED: Final = "ExecutionFailed"
    REFERENCE_NOT_FOUND: Final = "ReferenceNotFound"
    INVALID_CONFIGURATION: Final = "InvalidConfiguration"
    DEPLOYMENT_READY: Final = "DeploymentReady"
    VALIDATING: Final = "Validating"
    RESOLVING_TEMPLATE: Final = "ResolvingTemplate"
    RESOLVING_STORY: Final = "ResolvingStory"
    COMPILING: Final = "Compiling"
    STARTING_EXECUTION: Final = "StartingExecution"
    PROCESSING_STEPS: Final = "ProcessingSteps"
    DELETION_REQUESTED: Final = "DeletionRequested"
    CLEANING_UP: Final = "CleaningUp"
    INPUT_TOO_LARGE: Final = "InputTooLarge"
    OUTPUT_TOO_LARGE: Final = "OutputTooLarge"
    CANCELED: Final = "Canceled"
    TRANSPORT_READY: Final = "TransportReady"
    TRANSPORT_FAILED: Final = "TransportFailed"
    RECONCILING: Final = "Reconciling"
    AWAITING_TRANSPORT: Final = "AwaitingTransport"
    AWAITING_STORY_RUN: Final = "AwaitingStoryRun"
    PENDING: Final = "Pending"
    RUNNING: Final = "Running"
    PAUSED: Final = "Paused"
    BLOCKED: Final = "Blocked"
    TIMED_OUT: Final = "TimedOut"
    SKIPPED: Final = "Skipped"
    COMPENSATED: Final = "Compensated"
    COMPENSATION_FAILED: Final = "CompensationFailed"
    CLEANUP_FAILED: Final = "CleanupFailed"
    RETRY_SCHEDULED: Final = "RetryScheduled"
    INPUT_SCHEMA_FAILED: Final = "InputSchemaFailed"
    OUTPUT_SCHEMA_FAILED: Final = "OutputSchemaFailed"
    EXPRESSION_FAILED: Final = "ExpressionFailed"
    DEPENDENCY_FAILED: Final = "DependencyFailed"
    TOPOLOGY_TERMINATED: Final = "TopologyTerminated"
    DRIVER_MISSING: Final = "DriverMissing"
    CAPABILITIES_MISSING: Final = "CapabilitiesMissing"
    CODEC_INVALID: Final = "CodecInvalid"
    CODEC_DUPLICATE: Final = "CodecDuplicate"
    MIME_TYPE_INVALID: Final = "MimeTypeInvalid"


REASONS: Final = frozenset(
    value for name, value in vars(Reason).items() if name.isupper() and isinstance(value, str)
)


class TriggerReason:
    """Reason codes of StoryTrigger decisions (``status.reason``; reference §5.3).

    The StoryTrigger controller also uses :attr:`Reason.VALIDATION_FAILED`,
    :attr:`Reason.STORY_NOT_FOUND` and :attr:`Reason.INPUT_TOO_LARGE`.
    """

    STORY_RUN_CREATED: Final = "StoryRunCreated"
    STORY_RUN_REUSED: Final = "StoryRunReused"
    STORY_RUN_CONFLICT: Final = "StoryRunConflict"
    STORY_VERSION_MISMATCH: Final = "StoryVersionMismatch"
    INPUT_HASH_MISMATCH: Final = "InputHashMismatch"


TRUE: Final = "True"
FALSE: Final = "False"
UNKNOWN: Final = "Unknown"

MAX_REASON_LENGTH: Final = 64
MAX_MESSAGE_LENGTH: Final = 2048


def format_time(now: datetime) -> str:
    """RFC 3339 in UTC with second precision, the way ``metav1.Time`` serializes."""
    return format_timestamp(now, "s")


def _status_string(status: str | bool) -> str:
    if isinstance(status, bool):
        return TRUE if status else FALSE
    if status not in (TRUE, FALSE, UNKNOWN):
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    return status


def get_condition(conditions: list[dict[str, Any]] | None, type: str) -> dict[str, Any] | None:
    """The entry of ``type`` or ``None``."""
    for condition in conditions or ():
        if condition.get("type") == type:
            return condition
    return None


def is_true(conditions: list[dict[str, Any]] | None, type: str) -> bool:
    """Whether the condition of ``type`` exists and has status ``True``."""
    condition = get_condition(conditions, type)
    return condition is not None and condition.get("status") == TRUE


def set_condition(
    conditions: list[dict[str, Any]],
    type: str,
    status: str | bool,
    reason: str,
    message: str,
    *,
    observed_generation: int | None,
    now: datetime,
) -> bool:
    """Set (in place) the condition of ``type``; return whether anything changed.

    ``lastTransitionTime`` is kept when the status does not change.
    """
    status_str = _status_string(status)
    reason = reason[:MAX_REASON_LENGTH]
    message = message[:MAX_MESSAGE_LENGTH]
    existing = get_condition(conditions, type)
    if existing is None:
        entry: dict[str, Any] = {
            "type": type,
            "status": status_str,
            "reason": reason,
            "message": message,
            "lastTransitionTime": format_time(now),
        }
        if observed_generation is not None:
            entry["observedGeneration"] = observed_generation
        conditions.append(entry)
        return True
    changed = False
    if existing.get("status") != status_str:
        existing["status"] = status_str
        existing["lastTransitionTime"] = format_time(now)
        changed = True
    elif not existing.get("lastTransitionTime"):
        existing["lastTransitionTime"] = format_time(now)
        changed = True
    for key, value in (("reason", reason), ("message", message)):
        if existing.get(key) != value:
            existing[key] = value
            changed = True
    if observed_generation is not None and existing.get("observedGeneration") != observed_generation:
        existing["observedGeneration"] = observed_generation
        changed = True
    return changed


def remove_condition(conditions: list[dict[str, Any]], type: str) -> bool:
    """Remove (in place) the condition of ``type``; return whether it was present."""
    for index, condition in enumerate(conditions):
        if condition.get("type") == type:
            del conditions[index]
            return True
    return False
