"""StoryTrigger validation (reference §1.15 "StoryTrigger", §5.2).

Invariants: ``deliveryIdentity.submissionId`` is required; ``mode: none`` forbids a key,
``token``/``key`` require one; a key requires ``inputHash`` equal to the canonical input
hash; the name is exactly the deterministic trigger name; the Story exists (pinned version
matches) under the cross-namespace policy; the spec is immutable.
"""

from __future__ import annotations

from bobrapet.api.admission.context import Context, as_dict
from bobrapet.api.admission.identity import canonical_input_hash, story_trigger_name
from bobrapet.api.admission.references import check_cross_namespace
from bobrapet.api.admission.storyrun import check_observed_generation
from bobrapet.api.kinds import STORY, STORY_TRIGGER


async def validate_storytrigger(ctx: Context) -> None:
    if ctx.is_update:
        check_observed_generation(ctx)
        if not ctx.status_only and ctx.spec != ctx.old_spec:
            ctx.forbidden("spec", "spec is immutable for StoryTrigger; submit a new trigger instead")
        return
    spec = ctx.spec
    ident = as_dict(spec.get("deliveryIdentity"))
    submission = ident.get("submissionId")
    if not isinstance(submission, str) or not submission:
        ctx.required("spec.deliveryIdentity.submissionId", "deliveryIdentity.submissionId is required")
    elif len(submission) > 253:
        ctx.error("spec.deliveryIdentity.submissionId", "submissionId must be at most 253 characters")
    mode = ident.get("mode") or "none"
    key = ident.get("key") or ""
    if mode not in ("none", "token", "key"):
        ctx.error("spec.deliveryIdentity.mode", f"mode must be none, token or key, got '{mode}'")
    elif mode == "none" and key:
        ctx.error("spec.deliveryIdentity.key", "key must be empty when mode is 'none'")
    elif mode in ("token", "key") and not key:
        ctx.required("spec.deliveryIdentity.key", f"key is required when mode is '{mode}'")
    if isinstance(key, str) and len(key) > 256:
        ctx.error("spec.deliveryIdentity.key", "key must be at most 256 characters")
    if key:
        want = ident.get("inputHash")
        actual = canonical_input_hash(spec.get("inputs"))
        if not want:
            ctx.required(
                "spec.deliveryIdentity.inputHash",
                f"inputHash is required when key is set (expected '{actual}')",
            )
        elif want != actual:
            ctx.error(
                "spec.deliveryIdentity.inputHash",
                f"inputHash does not match the canonical hash of spec.inputs ('{actual}')",
            )
    if spec.get("inputs") is not None and not isinstance(spec.get("inputs"), dict):
        ctx.error("spec.inputs", "inputs must be a JSON object")
    ref = as_dict(spec.get("storyRef"))
    story = ref.get("name")
    if not isinstance(story, str) or not story:
        ctx.required("spec.storyRef.name", "storyRef.name is required")
        return
    ns = str(ref.get("namespace") or ctx.namespace)
    identity = key or (submission if isinstance(submission, str) else "")
    if identity:
        expected = story_trigger_name(ns, story, identity)
        if ctx.metadata.get("name") != expected:
            ctx.error("metadata.name", f"metadata.name must be the deterministic name '{expected}'")
    if not await check_cross_namespace(ctx, "spec.storyRef", STORY_TRIGGER, STORY, ns, story):
        return
    found = await ctx.get(STORY, story, ns)
    if found is None:
        ctx.error("spec.storyRef", f"referenced story '{ns}/{story}' not found", "FieldValueNotFound")
    elif ref.get("version") and as_dict(found.get("spec")).get("version") != ref.get("version"):
        ctx.error(
            "spec.storyRef.version",
            f"referenced story '{ns}/{story}' has version "
            f"'{as_dict(found.get('spec')).get('version')}', expected '{ref.get('version')}'",
        )
