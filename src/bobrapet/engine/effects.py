"""EffectClaims (reference §6), pure: what an attempt does with a claim, and what it writes.

Invariants:

* :func:`decide_claim` (a claim or ``None``, ``now``): none → ``create``; ``completed`` →
  ``skip`` (with its details); ``abandoned`` → ``abandoned`` (never re-run); ``released`` or
  no holder → ``takeover``; an expired lease (``renewTime``, else ``acquireTime``, else the
  creation time, plus ``leaseDurationSeconds`` ≤ ``now``) → ``takeover``; else ``wait`` (the
  seconds left). A live lease is never taken over early, even when its holder is known to be
  gone: it may have performed the effect without recording it, and the lease duration is
  the user's bound on how long such an effect stays unrepeated (§6.2 step 4);
* the writes keep the admission rules (§1.15): ``acquireTime ≤ renewTime ≤ completedAt``; a
  takeover clears the completion and counts a transition; a release clears holder and times
  and sets ``released`` without ``completedAt`` (DESIGN: release works); a completion
  freezes the claim;
* :func:`record_effect` appends ``{seq, key, status: succeeded, emittedAt, details}`` to
  ``StepRun.status.effects`` once per key, keeping the last :data:`MAX_EFFECTS` entries;
* :func:`claim_status` maps ``completionStatus`` to the phase and conditions (§6.3).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from bobrapet.api import conditions
from bobrapet.api.admission.identity import effect_claim_name
from bobrapet.api.kinds import EFFECT_CLAIM, STEP_RUN
from bobrapet.api.types.steprun import MAX_EFFECTS
from bobrapet.engine.timefmt import aware, format_time, parse_time
from bobrapet.sdk.effects import LEASE_SECONDS

__all__ = [
    "LEASE_SECONDS",
    "MAX_EFFECTS",
    "ClaimDecision",
    "claim_completed",
    "claim_released",
    "claim_renewed",
    "claim_status",
    "claim_taken_over",
    "decide_claim",
    "is_held_by",
    "lease_expiry",
    "new_claim",
    "record_effect",
    "recorded_effect",
]

ClaimAction = Literal["create", "skip", "takeover", "wait", "abandoned"]
SUCCEEDED = "succeeded"
_LEASE_FIELDS = ("holderIdentity", "acquireTime", "renewTime")


@dataclass(frozen=True)
class ClaimDecision:
    """What to do with a claim: ``details`` for ``skip``; ``wait_seconds``/``holder`` for ``wait``."""

    action: ClaimAction
    details: dict[str, Any] | None = None
    wait_seconds: float = 0.0
    holder: str | None = None


def _spec(claim: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = claim.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _stamp(now: datetime) -> str:
    return format_time(now, "us")


def lease_expiry(claim: Mapping[str, Any]) -> datetime | None:
    """When the claim's lease expires (``None``: no timestamp to count from)."""
    spec = _spec(claim)
    metadata = claim.get("metadata") or {}
    since = parse_time(spec.get("renewTime") or spec.get("acquireTime") or metadata.get("creationTimestamp"))
    if since is None:
        return None
    lease = spec.get("leaseDurationSeconds")
    seconds = lease if isinstance(lease, int) and not isinstance(lease, bool) and lease > 0 else LEASE_SECONDS
    return since + timedelta(seconds=seconds)


def decide_claim(claim: Mapping[str, Any] | None, now: datetime) -> ClaimDecision:
    """What an attempt that wants to perform the effect does with ``claim`` (module docstring)."""
    if claim is None:
        return ClaimDecision("create")
    spec = _spec(claim)
    completion = spec.get("completionStatus")
    if completion == "completed":
        details = spec.get("details")
        return ClaimDecision("skip", details=dict(details) if isinstance(details, Mapping) else {})
    if completion == "abandoned":
        return ClaimDecision("abandoned")
    holder = spec.get("holderIdentity")
    if completion == "released" or not holder:
        return ClaimDecision("takeover")
    expiry = lease_expiry(claim)
    left = (expiry - aware(now)).total_seconds() if expiry is not None else 0.0
    if left <= 0:
        return ClaimDecision("takeover")
    return ClaimDecision("wait", wait_seconds=left, holder=str(holder))


def new_claim(
    *,
    step_run: Mapping[str, Any],
    key: str,
    holder: str,
    lease_seconds: int,
    now: datetime,
) -> dict[str, Any]:
    """The EffectClaim of ``key`` for ``step_run``, held by ``holder`` (owned by the StepRun)."""
    metadata = step_run["metadata"]
    namespace, name, uid = str(metadata.get("namespace") or ""), str(metadata["name"]), metadata.get("uid")
    ref: dict[str, Any] = {"name": name, "uid": uid} if uid else {"name": name}
    spec: dict[str, Any] = {"stepRunRef": ref, "effectKey": key}
    idempotency_key = (step_run.get("spec") or {}).get("idempotencyKey")
    if idempotency_key:
        spec["idempotencyKey"] = idempotency_key
    stamp = _stamp(now)
    spec.update(holderIdentity=holder, leaseDurationSeconds=lease_seconds, acquireTime=stamp, renewTime=stamp)
    claim_metadata: dict[str, Any] = {"name": effect_claim_name(namespace, name, key), "namespace": namespace}
    if uid:
        claim_metadata["ownerReferences"] = [
            {"apiVersion": STEP_RUN.api_version, "kind": STEP_RUN.kind, "name": name, "uid": uid}
        ]
    return {
        "apiVersion": EFFECT_CLAIM.api_version,
        "kind": EFFECT_CLAIM.kind,
        "metadata": claim_metadata,
        "spec": spec,
    }


def _with_spec(claim: Mapping[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    out = dict(claim)
    out["spec"] = spec
    return out


def claim_taken_over(
    claim: Mapping[str, Any], *, holder: str, lease_seconds: int, now: datetime
) -> dict[str, Any]:
    """``claim`` acquired by ``holder`` (its completion cleared, one more transition)."""
    spec = copy.deepcopy(dict(_spec(claim)))
    for field in ("completionStatus", "completedAt", "details"):
        spec.pop(field, None)
    stamp = _stamp(now)
    transitions = spec.get("leaseTransitions")
    spec.update(
        holderIdentity=holder,
        leaseDurationSeconds=lease_seconds,
        acquireTime=stamp,
        renewTime=stamp,
        leaseTransitions=(transitions if isinstance(transitions, int) else 0) + 1,
    )
    return _with_spec(claim, spec)


def _not_before(now: datetime, *stamps: Any) -> datetime:
    """``now``, or the latest of ``stamps`` when the clock reads earlier (ordering rules)."""
    latest = aware(now)
    for stamp in stamps:
        parsed = parse_time(stamp) if isinstance(stamp, str) else None
        if parsed is not None and parsed > latest:
            latest = parsed
    return latest


def claim_renewed(claim: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    spec = dict(_spec(claim))
    spec["renewTime"] = _stamp(_not_before(now, spec.get("acquireTime"), spec.get("renewTime")))
    return _with_spec(claim, spec)


def claim_completed(claim: Mapping[str, Any], details: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    spec = dict(_spec(claim))
    spec.update(
        completionStatus="completed",
        completedAt=_stamp(_not_before(now, spec.get("acquireTime"), spec.get("renewTime"))),
        details=dict(details),
    )
    return _with_spec(claim, spec)


def claim_released(claim: Mapping[str, Any]) -> dict[str, Any]:
    """Given back without performing the effect: a later attempt takes it over at once."""
    spec = {k: v for k, v in _spec(claim).items() if k not in (*_LEASE_FIELDS, "completedAt", "details")}
    spec["completionStatus"] = "released"
    return _with_spec(claim, spec)


def is_held_by(claim: Mapping[str, Any], holder: str) -> bool:
    """Whether ``holder`` holds ``claim`` and it is not completed or given back."""
    spec = _spec(claim)
    return spec.get("holderIdentity") == holder and not spec.get("completionStatus")


# --------------------------------------------------------------------------- StepRun.status.effects


def recorded_effect(status: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    """The ``status.effects`` entry of ``key`` (``None``: not recorded)."""
    for entry in (status or {}).get("effects") or ():
        if isinstance(entry, Mapping) and entry.get("key") == key:
            return entry
    return None


def record_effect(
    status: Mapping[str, Any] | None, key: str, details: Mapping[str, Any], now: datetime
) -> dict[str, Any] | None:
    """``status`` with ``key`` appended to ``effects`` (``None``: it is recorded already)."""
    if recorded_effect(status, key) is not None:
        return None
    out = dict(status or {})
    effects = [e for e in out.get("effects") or () if isinstance(e, Mapping)]
    seq = max((e["seq"] for e in effects if isinstance(e.get("seq"), int)), default=0) + 1
    entry = {"seq": seq, "key": key, "status": SUCCEEDED, "emittedAt": _stamp(now), "details": dict(details)}
    out["effects"] = [*effects, entry][-MAX_EFFECTS:]
    return out


# --------------------------------------------------------------------------- the claim's status

_PHASES = {"completed": "Completed", "released": "Released", "abandoned": "Abandoned"}


def claim_status(claim: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The claim's status: phase from ``completionStatus`` and Ready/Progressing/Degraded."""
    spec = _spec(claim)
    stored = claim.get("status")
    status = copy.deepcopy(dict(stored)) if isinstance(stored, Mapping) else {}
    phase = _PHASES.get(str(spec.get("completionStatus")), "Reserved")
    generation = (claim.get("metadata") or {}).get("generation")
    generation = generation if isinstance(generation, int) else None
    if generation is not None:
        status["observedGeneration"] = generation
    status["phase"] = phase
    key = spec.get("effectKey")
    messages = {
        "Completed": f"effect {key!r} was performed",
        "Released": f"effect {key!r} was given back without being performed; the next attempt performs it",
        "Abandoned": f"effect {key!r} was abandoned; it will not be performed",
        "Reserved": f"effect {key!r} is held by {spec.get('holderIdentity') or 'nobody'}",
    }
    found = status.get("conditions")
    entries: list[dict[str, Any]] = [dict(c) for c in found] if isinstance(found, list) else []
    for kind, value in (
        (conditions.READY, phase == "Completed"),
        (conditions.PROGRESSING, phase == "Reserved"),
        (conditions.DEGRADED, phase == "Abandoned"),
    ):
        conditions.set_condition(
            entries, kind, value, phase, messages[phase], observed_generation=generation, now=now
        )
    status["conditions"] = entries
    return status
