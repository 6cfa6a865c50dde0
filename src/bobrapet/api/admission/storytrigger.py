"""StoryTrigger validation (reference §1.15 "StoryTrigger", §5.2).

Invariants: ``deliveryIdentity.submissionId`` is required; ``mode: none`` forbids a key,
``token``/``key`` require one; a key requires ``inputHash`` equal to the canonical input
hash; the name is exactly the deterministic trigger name; the Story exists (pinned version
matches) under the cross-namespace policy; the spec is immutable.

The rules that need no lookup (:func:`identity_causes`, :func:`input_hash_problem`) are pure
functions: the StoryTrigger controller re-checks a stored trigger with the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bobrapet.api.admission.context import Context, as_dict
from bobrapet.api.admission.identity import canonical_input_hash, story_trigger_name
from bobrapet.api.admission.references import check_cross_namespace
from bobrapet.api.admission.storyrun import check_observed_generation
from bobrapet.api.errors import Cause
from bobrapet.api.kinds import STORY, STORY_TRIGGER

_IDENTITY = "spec.deliveryIdentity"
_REQUIRED = "FieldValueRequired"


def trigger_identity(spec: Mapping[str, Any]) -> str:
    """The identity a trigger is deduplicated by: its key if set, else its submissionId."""
    ident = as_dict(spec.get("deliveryIdentity"))
    return str(ident.get("key") or ident.get("submissionId") or "")


def story_namespace(spec: Mapping[str, Any], namespace: str) -> str:
    """The namespace of the trigger's Story (``storyRef.namespace``, else the trigger's)."""
    return str(as_dict(spec.get("storyRef")).get("namespace") or namespace)


def _delivery_causes(ident: Mapping[str, Any], inputs: Any) -> list[Cause]:
    causes: list[Cause] = []
    submission = ident.get("submissionId")
    if not isinstance(submission, str) or not submission:
        message = "deliveryIdentity.submissionId is required"
        causes.append(Cause(f"{_IDENTITY}.submissionId", message, _REQUIRED))
    elif len(submission) > 253:
        causes.append(Cause(f"{_IDENTITY}.submissionId", "submissionId must be at most 253 characters"))
    mode = ident.get("mode") or "none"
    key = ident.get("key") or ""
    if mode not in ("none", "token", "key"):
        causes.append(Cause(f"{_IDENTITY}.mode", f"mode must be none, token or key, got '{mode}'"))
    elif mode == "none" and key:
        causes.append(Cause(f"{_IDENTITY}.key", "key must be empty when mode is 'none'"))
    elif mode in ("token", "key") and not key:
        causes.append(Cause(f"{_IDENTITY}.key", f"key is required when mode is '{mode}'", _REQUIRED))
    if isinstance(key, str) and len(key) > 256:
        causes.append(Cause(f"{_IDENTITY}.key", "key must be at most 256 characters"))
    if key and not ident.get("inputHash"):
        causes.append(
            Cause(
                f"{_IDENTITY}.inputHash",
                f"inputHash is required when key is set (expected '{canonical_input_hash(inputs)}')",
                _REQUIRED,
            )
        )
    return causes


def identity_causes(spec: Mapping[str, Any], name: Any, namespace: str) -> list[Cause]:
    """The delivery-identity, inputs-shape and deterministic-name rules of §5.2.

    Everything but the input hash comparison (:func:`input_hash_problem`) and the lookups.
    """
    causes = _delivery_causes(as_dict(spec.get("deliveryIdentity")), spec.get("inputs"))
    if spec.get("inputs") is not None and not isinstance(spec.get("inputs"), dict):
        causes.append(Cause("spec.inputs", "inputs must be a JSON object"))
    story = as_dict(spec.get("storyRef")).get("name")
    if not isinstance(story, str) or not story:
        causes.append(Cause("spec.storyRef.name", "storyRef.name is required", _REQUIRED))
        return causes
    identity = trigger_identity(spec)
    if identity:
        expected = story_trigger_name(story_namespace(spec, namespace), story, identity)
        if name != expected:
            message = f"metadata.name must be the deterministic name '{expected}'"
            causes.append(Cause("metadata.name", message))
    return causes


def input_hash_problem(spec: Mapping[str, Any]) -> str | None:
    """Why ``deliveryIdentity.inputHash`` (when set) does not match ``spec.inputs``, or None."""
    want = as_dict(spec.get("deliveryIdentity")).get("inputHash")
    if not want:
        return None
    actual = canonical_input_hash(spec.get("inputs"))
    if want == actual:
        return None
    return f"inputHash does not match the canonical hash of spec.inputs ('{actual}')"


async def validate_storytrigger(ctx: Context) -> None:
    if ctx.is_update:
        check_observed_generation(ctx)
        if not ctx.status_only and ctx.spec != ctx.old_spec:
            ctx.forbidden("spec", "spec is immutable for StoryTrigger; submit a new trigger instead")
        return
    spec = ctx.spec
    ctx.causes.extend(identity_causes(spec, ctx.metadata.get("name"), ctx.namespace))
    problem = input_hash_problem(spec)
    if problem is not None and as_dict(spec.get("deliveryIdentity")).get("key"):
        ctx.error(f"{_IDENTITY}.inputHash", problem)
    ref = as_dict(spec.get("storyRef"))
    story = ref.get("name")
    if not isinstance(story, str) or not story:
        return
    ns = story_namespace(spec, ctx.namespace)
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
