"""StoryRun validation (reference §1.15 "StoryRun").

Invariants: on create the Story must exist (and match a pinned version), inputs are a JSON
object within the inline limit (oversized inputs are a ``FieldValueTooLong`` cause: the
StoryTrigger controller offloads on it), reference maps are well-formed and inputs validate
against the normalized ``inputsSchema`` after its ``default`` values are filled in (so a
required input with a default may be omitted — the engine applies the same defaults at run
start; the stored spec keeps exactly what the user wrote). A run with a trigger token carries
the trigger's input hash: it must equal the canonical hash of ``spec.inputs`` as stored, or —
inputs the StoryTrigger controller offloaded — of the inputs hydrated through the caller's
:class:`~bobrapet.api.admission.lookup.HydrateInputs`. On update the spec is
immutable except ``cancelRequested`` going from unset/false to true, the trigger-token
annotation is immutable and ``status.observedGeneration`` never decreases.
"""

from __future__ import annotations

from typing import Any

from bobrapet.api.admission.context import Context, as_dict, json_size
from bobrapet.api.admission.identity import canonical_input_hash, derive_story_run_name
from bobrapet.api.admission.references import check_cross_namespace
from bobrapet.api.admission.refmaps import check_ref_maps, has_storage_refs
from bobrapet.api.errors import FIELD_VALUE_TOO_LONG
from bobrapet.api.jsonschema_util import (
    apply_lifted_defaults,
    prepare,
    scrub_storage_metadata,
    validate_templated,
)
from bobrapet.api.kinds import STORY, STORY_RUN
from bobrapet.api.runmeta import STORY_NAME, TRIGGER_INPUT_HASH, TRIGGER_TOKEN

IMMUTABLE_MESSAGE = "spec is immutable for StoryRun; create a new StoryRun for updated inputs or references"


def default_storyrun(ctx: Context) -> None:
    """On create, label the run with its Story's name (``bubustack.io/story-name``), the
    label its StepRuns carry, so ``-l bubustack.io/story-name=X`` selects both."""
    if ctx.is_update:
        return
    story = as_dict(as_dict(ctx.obj.get("spec")).get("storyRef")).get("name")
    metadata = ctx.obj.get("metadata")
    if not isinstance(story, str) or not story or not isinstance(metadata, dict):
        return
    labels = metadata.get("labels")
    if labels is None:
        labels = metadata["labels"] = {}
    if isinstance(labels, dict):
        labels.setdefault(STORY_NAME, story)


def check_observed_generation(ctx: Context) -> None:
    if ctx.old is None:
        return
    old = as_dict(ctx.old.get("status")).get("observedGeneration")
    new = ctx.status.get("observedGeneration")
    if isinstance(old, int) and isinstance(new, int) and new < old:
        ctx.error(
            "status.observedGeneration",
            f"observedGeneration may not decrease (was {old}, got {new})",
        )


def _cancel_only_change(old: dict[str, Any], new: dict[str, Any]) -> bool:
    strip_old = {k: v for k, v in old.items() if k != "cancelRequested"}
    strip_new = {k: v for k, v in new.items() if k != "cancelRequested"}
    if strip_old != strip_new:
        return False
    before = bool(old.get("cancelRequested"))
    after = bool(new.get("cancelRequested"))
    return before == after or (not before and after)


async def validate_storyrun(ctx: Context) -> None:
    if ctx.is_update:
        check_observed_generation(ctx)
        if ctx.status_only:
            return
        old_ann = as_dict(as_dict(as_dict(ctx.old).get("metadata")).get("annotations"))
        new_ann = as_dict(ctx.metadata.get("annotations"))
        if old_ann.get(TRIGGER_TOKEN) != new_ann.get(TRIGGER_TOKEN):
            ctx.forbidden(
                f"metadata.annotations[{TRIGGER_TOKEN}]", "the trigger-token annotation is immutable"
            )
        if not _cancel_only_change(ctx.old_spec, ctx.spec):
            ctx.forbidden("spec", IMMUTABLE_MESSAGE)
        return
    spec = ctx.spec
    ref = as_dict(spec.get("storyRef"))
    story_name = ref.get("name")
    story: dict[str, Any] | None = None
    ns = str(ref.get("namespace") or ctx.namespace)
    if not isinstance(story_name, str) or not story_name:
        ctx.required("spec.storyRef.name", "storyRef.name (the Story to run) is required")
    elif await check_cross_namespace(ctx, "spec.storyRef", STORY_RUN, STORY, ns, story_name):
        story = await ctx.get(STORY, story_name, ns)
        if story is None:
            ctx.error(
                "spec.storyRef", f"referenced story '{ns}/{story_name}' not found", "FieldValueNotFound"
            )
        else:
            version = as_dict(story.get("spec")).get("version")
            if ref.get("version") and ref.get("version") != version:
                ctx.error(
                    "spec.storyRef.version",
                    f"referenced story '{ns}/{story_name}' has version "
                    f"'{version}', expected '{ref.get('version')}'",
                )
    inputs = spec.get("inputs")
    if inputs is not None:
        if not isinstance(inputs, dict):
            ctx.error("spec.inputs", "inputs must be a JSON object")
        else:
            size = json_size(inputs)
            limit = ctx.config.storyrun_max_inline_inputs
            if limit and size > limit:
                ctx.error(
                    "spec.inputs",
                    f"spec.inputs too large ({size} bytes > {limit}). Provide large inputs via an "
                    "offloading mechanism instead of inlining",
                    FIELD_VALUE_TOO_LONG,
                )
            check_ref_maps(ctx, "spec.inputs", inputs)
    if story is not None and isinstance(inputs, dict | type(None)):
        schema = as_dict(story.get("spec")).get("inputsSchema")
        if schema:
            value = apply_lifted_defaults(scrub_storage_metadata(inputs or {}), prepare(schema).lifted)
            for epath, msg in validate_templated(value, schema):
                sep = "" if not epath or epath.startswith("[") else "."
                ctx.error(f"spec.inputs{sep}{epath}", f"does not match the Story inputsSchema: {msg}")
            if inputs and has_storage_refs(inputs):
                ctx.warn(
                    "spec.inputs",
                    "inputs contain storage references; they are "
                    "validated as references, not as their stored content",
                )
    annotations = as_dict(ctx.metadata.get("annotations"))
    token = annotations.get(TRIGGER_TOKEN)
    if token is not None and isinstance(story_name, str):
        if ctx.metadata.get("generateName") and not ctx.metadata.get("name"):
            ctx.forbidden(
                "metadata.generateName", "generateName cannot be used with a trigger-token annotation"
            )
        expected = derive_story_run_name(ns, story_name, str(token))
        if ctx.metadata.get("name") != expected:
            ctx.error(
                "metadata.name",
                f"metadata.name must be '{expected}' (derived from the story and the trigger token)",
            )
        want = annotations.get(TRIGGER_INPUT_HASH)
        if not want:
            ctx.required(
                f"metadata.annotations[{TRIGGER_INPUT_HASH}]",
                "the trigger-input-hash annotation is required with a trigger token",
            )
        elif want != canonical_input_hash(inputs):
            await _check_offloaded_hash(ctx, str(want), inputs)


async def _check_offloaded_hash(ctx: Context, want: str, inputs: Any) -> None:
    """The trigger-input-hash rule for inputs that differ from the trigger's as stored: they
    must be the trigger's inputs offloaded (their hydrated form has the hash)."""
    field = f"metadata.annotations[{TRIGGER_INPUT_HASH}]"
    if not (ctx.hydrate is not None and isinstance(inputs, dict) and has_storage_refs(inputs)):
        ctx.error(field, "trigger-input-hash does not match the canonical hash of spec.inputs")
        return
    try:
        hydrated = await ctx.hydrate(inputs)
    except Exception as exc:
        message = getattr(exc, "message", None) or str(exc)
        ctx.error(field, f"cannot read the offloaded spec.inputs to check trigger-input-hash: {message}")
        return
    if canonical_input_hash(hydrated) != want:
        ctx.error(
            field,
            "trigger-input-hash does not match the canonical hash of spec.inputs, "
            "neither as stored nor with its offloaded values read back",
        )
