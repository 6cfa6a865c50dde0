"""Events a StepRun's recorded outcome calls for (reference §4.4 items 7-8, §9.3).

Invariants (pure: no I/O, no clock):

* a step that ended ``Succeeded`` whose output keys differ from its EngramTemplate's
  ``spec.declaredOutputKeys`` gets ONE Warning ``OutputKeyMismatch``
  "Output key mismatch: missing=[..] extra=[..]" (keys sorted); a template without
  ``declaredOutputKeys`` (or with an empty list) declares nothing and never warns;
* an attempt turned into a scheduled retry gets a Normal ``JobRetryScheduled``;
* a resolved step input of at least 80 % of the inline limit gets a Warning
  ``StepInputNearLimit`` (reference §4.2) when it is launched;
* a normal success (keys match or none declared) produces no event at all, so the per-step
  hot path costs no extra write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bobrapet.engine.plan import Event

OUTPUT_KEY_MISMATCH = "OutputKeyMismatch"
JOB_RETRY_SCHEDULED = "JobRetryScheduled"
STEP_INPUT_NEAR_LIMIT = "StepInputNearLimit"
NEAR_LIMIT_FRACTION = 0.8


def input_near_limit(step: str, size: int, limit: int) -> Event | None:
    """A warning when ``size`` bytes reach 80 % of ``limit`` (but do not exceed it; 0 = no limit)."""
    if limit <= 0 or size > limit or size < NEAR_LIMIT_FRACTION * limit:
        return None
    share = size * 100 // limit
    message = f"step input for {step} is {size} bytes, {share}% of the max inline limit of {limit} bytes"
    return Event("Warning", STEP_INPUT_NEAR_LIMIT, message)


def output_key_mismatch(
    output: Any, template: Mapping[str, Any] | None
) -> tuple[list[str], list[str]] | None:
    """``(missing, extra)`` keys of ``output`` against the template's declared keys, or ``None``."""
    spec = (template or {}).get("spec")
    declared = spec.get("declaredOutputKeys") if isinstance(spec, Mapping) else None
    if not isinstance(declared, list) or not declared:
        return None
    keys = set(output) if isinstance(output, Mapping) else set()
    wanted = {str(k) for k in declared}
    missing, extra = sorted(wanted - keys), sorted(keys - wanted)
    if not missing and not extra:
        return None
    return missing, extra


def _ready(status: Mapping[str, Any]) -> Mapping[str, Any]:
    for condition in status.get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition
    return {}


def outcome_events(
    before: Mapping[str, Any], after: Mapping[str, Any], template: Mapping[str, Any] | None
) -> list[Event]:
    """Events for the transition of a StepRun status from ``before`` to ``after``."""
    events: list[Event] = []
    phase = after.get("phase")
    if phase == "Succeeded" and before.get("phase") != "Succeeded":
        mismatch = output_key_mismatch(after.get("output"), template)
        if mismatch is not None:
            missing, extra = mismatch
            message = f"Output key mismatch: missing=[{', '.join(missing)}] extra=[{', '.join(extra)}]"
            events.append(Event("Warning", OUTPUT_KEY_MISMATCH, message))
    elif phase == "Pending" and int(after.get("retries") or 0) > int(before.get("retries") or 0):
        ready = _ready(after)
        if ready.get("reason") == "RetryScheduled":
            events.append(
                Event("Normal", JOB_RETRY_SCHEDULED, str(ready.get("message") or "Retry scheduled"))
            )
    return events
