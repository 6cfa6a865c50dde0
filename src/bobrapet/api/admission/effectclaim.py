"""EffectClaim validation (reference §1.15 "EffectClaim", §6.1).

Invariants: ``stepRunRef`` is same-namespace (whatever the policy) and the StepRun exists
(matching ``uid`` when given); ``completedAt`` requires ``completionStatus``, and
``completed``/``abandoned`` require ``completedAt`` — a ``released`` claim may have none
(DESIGN: release works; the reference's webhook rejected the SDK's own release, §6.2 step 7);
``renewTime`` requires ``acquireTime``; ``acquireTime ≤ renewTime ≤ completedAt``; the name
is deterministic; on update identity fields are immutable, ``completedAt`` never clears or
moves back (except that a ``released`` claim may be re-acquired by clearing
``completionStatus`` and ``completedAt`` together), and a ``completed`` claim is frozen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bobrapet.api.admission.context import Context, as_dict
from bobrapet.api.admission.identity import effect_claim_name
from bobrapet.api.admission.storyrun import check_observed_generation
from bobrapet.api.kinds import STEP_RUN

COMPLETION = ("completed", "released", "abandoned")
_FROZEN = ("holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime", "leaseTransitions")


def _time(ctx: Context, path: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    ctx.error(path, f"must be an RFC 3339 timestamp such as 2025-01-01T00:00:00.000000Z, got {value!r}")
    return None


async def validate_effectclaim(ctx: Context) -> None:
    check_observed_generation(ctx)
    if ctx.status_only:
        return
    spec = ctx.spec
    ref = as_dict(spec.get("stepRunRef"))
    step_run = ref.get("name")
    key = spec.get("effectKey")
    if not isinstance(step_run, str) or not step_run:
        ctx.required("spec.stepRunRef.name", "stepRunRef.name is required")
    if not isinstance(key, str) or not key:
        ctx.required("spec.effectKey", "effectKey is required")
    elif len(key) > 256:
        ctx.error("spec.effectKey", "effectKey must be at most 256 characters")
    if ref.get("namespace") and ref.get("namespace") != ctx.namespace:
        ctx.forbidden(
            "spec.stepRunRef.namespace", "cross-namespace StepRunRef is not allowed for EffectClaim"
        )
    for k, limit in (("idempotencyKey", 256), ("holderIdentity", 253)):
        v = spec.get(k)
        if isinstance(v, str) and len(v) > limit:
            ctx.error(f"spec.{k}", f"{k} must be at most {limit} characters")
    lease = spec.get("leaseDurationSeconds")
    if lease is not None and (not isinstance(lease, int) or isinstance(lease, bool) or lease < 1):
        ctx.error("spec.leaseDurationSeconds", "leaseDurationSeconds must be an integer ≥ 1")
    status = spec.get("completionStatus")
    if status is not None and status not in COMPLETION:
        ctx.error("spec.completionStatus", f"completionStatus must be one of {', '.join(COMPLETION)}")
    if spec.get("completedAt") is not None and status is None:
        ctx.required("spec.completionStatus", "completedAt requires completionStatus")
    elif spec.get("completedAt") is None and status in ("completed", "abandoned"):
        ctx.required("spec.completedAt", f"completionStatus {status} requires completedAt")
    acquire = _time(ctx, "spec.acquireTime", spec.get("acquireTime"))
    renew = _time(ctx, "spec.renewTime", spec.get("renewTime"))
    completed = _time(ctx, "spec.completedAt", spec.get("completedAt"))
    if spec.get("renewTime") is not None and spec.get("acquireTime") is None:
        ctx.required("spec.acquireTime", "renewTime requires acquireTime")
    if acquire and renew and renew < acquire:
        ctx.error("spec.renewTime", "renewTime must not be before acquireTime")
    if completed and (renew or acquire) and completed < (renew or acquire):  # type: ignore[operator]
        ctx.error("spec.completedAt", "completedAt must not be before acquireTime/renewTime")
    if isinstance(step_run, str) and step_run and isinstance(key, str) and key:
        expected = effect_claim_name(ctx.namespace, step_run, key)
        if ctx.metadata.get("name") != expected:
            ctx.error("metadata.name", f"metadata.name must be the deterministic name '{expected}'")
    if ctx.is_update:
        _check_update(ctx, spec)
        return
    same_ns = not ref.get("namespace") or ref.get("namespace") == ctx.namespace
    if isinstance(step_run, str) and step_run and same_ns:
        found = await ctx.get(STEP_RUN, step_run, ctx.namespace)
        if found is None:
            ctx.error(
                "spec.stepRunRef", f"StepRun '{ctx.namespace}/{step_run}' not found", "FieldValueNotFound"
            )
        elif ref.get("uid") and as_dict(found.get("metadata")).get("uid") != ref.get("uid"):
            ctx.error("spec.stepRunRef.uid", f"StepRun '{step_run}' has a different uid")


def _check_update(ctx: Context, spec: dict[str, Any]) -> None:
    old = ctx.old_spec
    for k in ("stepRunRef", "effectKey", "idempotencyKey"):
        if old.get(k) != spec.get(k):
            ctx.forbidden(f"spec.{k}", f"{k} is immutable")
    # a released claim is re-acquired by clearing its completion (both fields together)
    reacquire = (
        old.get("completionStatus") == "released"
        and spec.get("completedAt") is None
        and spec.get("completionStatus") is None
    )
    if old.get("completedAt") is not None and not reacquire:
        if spec.get("completedAt") is None:
            ctx.forbidden("spec.completedAt", "completedAt cannot be cleared")
        else:
            before = _time(ctx, "spec.completedAt", old.get("completedAt"))
            after = _time(ctx, "spec.completedAt", spec.get("completedAt"))
            if before and after and after < before:
                ctx.forbidden("spec.completedAt", "completedAt cannot move backwards")
    if old.get("completionStatus") == "completed":
        if spec.get("completionStatus") != "completed":
            ctx.forbidden("spec.completionStatus", "a completed claim cannot change its completionStatus")
        for k in _FROZEN:
            if old.get(k) != spec.get(k):
                ctx.forbidden(f"spec.{k}", f"{k} is frozen once the claim is completed")
