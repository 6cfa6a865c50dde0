"""StepRun defaulting and validation (reference §1.15 "StepRun", §9.3).

Invariants: the defaulter fills ``spec.retry`` (a policy it creates from nothing is marked
``bobrapet.bubustack.io/retry-policy: default``, so it is not taken for one the user wrote)
and ``spec.idempotencyKey``; updates that
leave the spec unchanged skip spec rules (so finalizers can always be removed); status-only
updates check only status rules (output size and refs, ``needs`` not naming itself,
``error`` matching the StructuredError v1 schema, monotonic ``observedGeneration``).
"""

from __future__ import annotations

from typing import Any

from bobrapet.api import runmeta
from bobrapet.api.admission.context import (
    Context,
    as_dict,
    as_list,
    check_dns_label,
    check_duration,
    json_size,
)
from bobrapet.api.admission.identity import step_run_idempotency_key
from bobrapet.api.admission.references import check_cross_namespace
from bobrapet.api.admission.refmaps import check_ref_maps
from bobrapet.api.admission.storyrun import check_observed_generation
from bobrapet.api.expressions import DENIED_FUNCTIONS, iter_templates
from bobrapet.api.jsonschema_util import validate
from bobrapet.api.kinds import ENGRAM, STEP_RUN, STORY_RUN
from bobrapet.api.types.enums import EXIT_CLASSES, STRUCTURED_ERROR_TYPES

STRUCTURED_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "type", "message"],
    "properties": {
        "version": {"const": "v1"},
        "type": {"enum": list(STRUCTURED_ERROR_TYPES)},
        "message": {"type": "string", "minLength": 1},
        "retryable": {"type": "boolean"},
        "exitCode": {"type": "integer", "minimum": 0},
        "exitClass": {"enum": list(EXIT_CLASSES)},
        "code": {"type": "string"},
        "details": {"type": "object"},
    },
    "additionalProperties": False,
}


def default_steprun(ctx: Context) -> None:
    spec = ctx.obj.get("spec")
    if not isinstance(spec, dict):
        return
    retry = spec.get("retry")
    if retry is None:
        retry = spec["retry"] = {}
        annotations = ctx.metadata.setdefault("annotations", {})
        if isinstance(annotations, dict):
            annotations.setdefault(runmeta.RETRY_POLICY_SOURCE, runmeta.RETRY_POLICY_DEFAULT)
    if isinstance(retry, dict):
        retry.setdefault("maxRetries", ctx.config.default_max_retries)
        retry.setdefault("delay", ctx.config.default_retry_delay)
        retry.setdefault("backoff", ctx.config.default_backoff)
    if not spec.get("idempotencyKey"):
        run = as_dict(spec.get("storyRunRef")).get("name") or ""
        spec["idempotencyKey"] = step_run_idempotency_key(ctx.namespace, run, spec.get("stepId") or "")


def _check_status(ctx: Context) -> None:
    status = ctx.status
    limit = ctx.config.engram_max_inline_size
    output = status.get("output")
    if output is not None:
        size = json_size(output)
        if limit and size > limit:
            ctx.error(
                "status.output",
                f"output is {size} bytes, more than the inline limit of {limit} bytes; offload it to storage",
            )
        check_ref_maps(ctx, "status.output", output)
    for i, need in enumerate(as_list(status.get("needs"))):
        if need == ctx.metadata.get("name"):
            ctx.error(f"status.needs[{i}]", "a StepRun cannot list itself in status.needs")
    if status.get("error") is not None:
        for epath, msg in validate(status["error"], STRUCTURED_ERROR_SCHEMA):
            sep = "" if not epath else "."
            ctx.error(f"status.error{sep}{epath}", f"must be a StructuredError v1: {msg}")


async def validate_steprun(ctx: Context) -> None:
    check_observed_generation(ctx)
    if ctx.status_only:
        _check_status(ctx)
        return
    if ctx.is_update and ctx.spec == ctx.old_spec:
        # metadata-only update (labels, finalizers, deletion): the spec was checked when it
        # was written; re-checking its references would block finalizer removal once the
        # Engram is gone
        if ctx.status and ctx.status != as_dict(as_dict(ctx.old).get("status")):
            _check_status(ctx)
        return
    if ctx.status:
        _check_status(ctx)
    spec = ctx.spec
    size = json_size(ctx.obj)
    if ctx.config.max_object_size and size > ctx.config.max_object_size:
        ctx.error(
            "",
            f"StepRun size of {size} bytes exceeds maximum "
            f"allowed size of {ctx.config.max_object_size} bytes",
        )
    run_ref = as_dict(spec.get("storyRunRef"))
    if not run_ref.get("name"):
        ctx.required("spec.storyRunRef.name", "storyRunRef.name is required")
    else:
        await check_cross_namespace(
            ctx, "spec.storyRunRef", STEP_RUN, STORY_RUN, run_ref.get("namespace"), str(run_ref["name"])
        )
    check_dns_label(ctx, "spec.stepId", spec.get("stepId"), "stepId")
    key = spec.get("idempotencyKey")
    if isinstance(key, str) and len(key) > 256:
        ctx.error("spec.idempotencyKey", "idempotencyKey must be at most 256 characters")
    check_duration(ctx, "spec.timeout", spec.get("timeout"))
    engram_ref = as_dict(spec.get("engramRef"))
    ename = engram_ref.get("name")
    if isinstance(ename, str) and ename:
        ns = engram_ref.get("namespace") or ctx.namespace
        if await check_cross_namespace(ctx, "spec.engramRef", STEP_RUN, ENGRAM, ns, ename):
            engram = await ctx.get(ENGRAM, ename, ns)
            if engram is None:
                ctx.error("spec.engramRef", f"Engram '{ns}/{ename}' not found", "FieldValueNotFound")
            elif engram_ref.get("version") and as_dict(engram.get("spec")).get("version") != engram_ref.get(
                "version"
            ):
                ctx.error(
                    "spec.engramRef.version",
                    f"Engram '{ns}/{ename}' has version '{as_dict(engram.get('spec')).get('version')}', "
                    f"expected '{engram_ref.get('version')}'",
                )
    value = spec.get("input")
    if value is not None:
        if not isinstance(value, dict):
            ctx.error("spec.input", "input must be a JSON object")
        else:
            # spec.input is the unresolved with of the step: bounded like a Story's with blocks.
            materialize = as_dict(ctx.metadata.get("labels")).get("materialize") == "true"
            limit = ctx.config.max_with_block_size
            size = json_size(value)
            if not materialize and limit and size > limit:
                ctx.error("spec.input", f"input is {size} bytes, more than the inline limit of {limit} bytes")
            check_ref_maps(ctx, "spec.input", value)
            for tpath, a in iter_templates(value, "spec.input"):
                for name in sorted((a.functions | a.filters) & DENIED_FUNCTIONS):
                    ctx.error(tpath, f"function '{name}' is not allowed in templates")
    for i, target in enumerate(as_list(spec.get("downstreamTargets"))):
        t = as_dict(target)
        if ("grpc" in t) == ("terminate" in t):
            ctx.error(
                f"spec.downstreamTargets[{i}]",
                "each downstream target must set exactly one of grpc or terminate",
            )
        stop = as_dict(t.get("terminate")).get("stopMode")
        if "terminate" in t and stop not in ("success", "failure", "cancel"):
            ctx.error(
                f"spec.downstreamTargets[{i}].terminate.stopMode",
                "stopMode must be success, failure or cancel",
            )
