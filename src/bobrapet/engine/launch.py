"""Building the StepRun of an engram step or parallel branch (reference §4.3).

Invariants:

* ``spec.input`` is the deep merge of ``Engram.spec.with`` and the step's ``with``, left
  unresolved for normal steps (the StepRun controller resolves it) and already rendered for
  parallel branches (the caller passes the rendered ``with``).
* ``spec.retry`` is the resolved retry policy (:func:`bobrapet.engine.retry.resolve_retry`);
  the annotation ``bobrapet.bubustack.io/retry-policy`` records its source (``default`` when
  the user wrote none), which decides what the StepRun retries.
* A step whose ``ref.version`` differs from the Engram's ``spec.version`` is never launched
  (reason ``EngramReferenceInvalid``); the pin is copied to ``spec.engramRef.version``.
* The StepRun carries the hash of the run's Story copy (annotation
  ``bobrapet.bubustack.io/story-snapshot``): the StepRun controller finds its step there,
  even before the run's status recording the copy is written.
* Every problem that would stop the StepRun from ever running — missing Engram or
  EngramTemplate, Engram version mismatch, input over the inline limit — raises
  :class:`LaunchFailure` with a reason code and a message that names the object and the
  fix; the caller records it on the step.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from bobrapet.api import runmeta
from bobrapet.api.admission.identity import step_run_idempotency_key
from bobrapet.api.conditions import Reason
from bobrapet.api.types.story import Step
from bobrapet.engine.expressions import TemplateError, render_value
from bobrapet.engine.merge import deep_merge
from bobrapet.engine.plan import NewStepRun
from bobrapet.engine.retry import resolve_retry
from bobrapet.engine.scheduling import run_labels

if TYPE_CHECKING:
    from bobrapet.engine.context import Context

MAX_IDEMPOTENCY_KEY = 256
#: ``json.dumps(value, separators=(",", ":"), default=str)`` without an encoder per call.
_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), default=str)


class LaunchFailure(Exception):
    """The step cannot be launched; ``reason`` is a §1.14 reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _engram(ctx: Context, step: Step, step_id: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    assert step.ref is not None
    ns = step.ref.namespace or ctx.namespace
    engram = ctx.snap.engrams.get(step.ref.name)
    if engram is None:
        raise LaunchFailure(
            Reason.REFERENCE_NOT_FOUND,
            f"Engram '{ns}/{step.ref.name}' referenced by step '{step_id}' was not found; "
            "create the Engram or fix the step's ref.",
        )
    spec = engram.get("spec") or {}
    template_name = (spec.get("templateRef") or {}).get("name") or ""
    template = ctx.snap.templates.get(template_name)
    if template is None:
        raise LaunchFailure(
            Reason.TEMPLATE_NOT_FOUND,
            f"EngramTemplate '{template_name}' used by Engram '{ns}/{step.ref.name}' (step '{step_id}') "
            "was not found; install the template or fix the Engram's templateRef.",
        )
    pinned = step.ref.version
    actual = spec.get("version")
    if pinned and actual != pinned:
        raise LaunchFailure(
            Reason.ENGRAM_REFERENCE_INVALID,
            engram_version_mismatch(f"{ns}/{step.ref.name}", pinned, actual, step_id),
        )
    return engram, template


def engram_version_mismatch(engram: str, pinned: str, actual: Any, step_id: str) -> str:
    """The message of a step whose ``ref.version`` does not match ``Engram.spec.version``."""
    found = f"has version '{actual}'" if actual else "sets no spec.version"
    return (
        f"step '{step_id}' pins Engram '{engram}' to version '{pinned}' (ref.version), but the "
        f"Engram {found}; update the Engram or change the step's ref.version"
    )


def _idempotency_key(ctx: Context, step: Step, step_id: str) -> str:
    key = ""
    if step.idempotency_key_template:
        try:
            value = render_value(ctx, step.idempotency_key_template, step=step_id)
        except TemplateError:
            value = None
        key = "" if value is None else str(value)
    if not key:
        return step_run_idempotency_key(ctx.namespace, ctx.run_name, step_id)
    if len(key) > MAX_IDEMPOTENCY_KEY:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _check_size(ctx: Context, step_id: str, value: Mapping[str, Any]) -> None:
    limit = ctx.config.max_step_spec_input
    if limit <= 0:
        return
    size = len(_COMPACT.encode(value).encode())
    if size > limit:
        raise LaunchFailure(
            Reason.INPUT_TOO_LARGE,
            f"step input for {step_id} is {size} bytes which exceeds the limit of {limit} bytes "
            "for a step's with; pass large data by reference (a template reading it from "
            "inputs or another step's output) instead of inline",
        )


def build_step_run(
    ctx: Context,
    step: Step,
    *,
    step_id: str,
    name: str,
    with_value: Mapping[str, Any] | None,
    parent_step: str | None = None,
) -> NewStepRun:
    """The StepRun to create for ``step``; raises :class:`LaunchFailure`."""
    engram, template = _engram(ctx, step, step_id)
    assert step.ref is not None
    _check_size(ctx, step_id, with_value or {})
    merged = deep_merge((engram.get("spec") or {}).get("with"), with_value)
    engram_ref: dict[str, Any] = {"name": step.ref.name}
    if step.ref.namespace:
        engram_ref["namespace"] = step.ref.namespace
    if step.ref.version:
        engram_ref["version"] = step.ref.version
    retry = resolve_retry(step, ctx.story, template, ctx.config, engram)
    spec: dict[str, Any] = {
        "storyRunRef": {"name": ctx.run_name},
        "stepId": step_id,
        "engramRef": engram_ref,
        "templateGeneration": int((template.get("metadata") or {}).get("generation") or 0),
        "input": merged,
        "retry": retry.policy,
        "idempotencyKey": _idempotency_key(ctx, step, step_id),
    }
    execution = step.execution
    if execution is not None and execution.timeout:
        spec["timeout"] = execution.timeout
    if execution is not None and execution.debug:
        spec["executionOverrides"] = {"debug": True}
    labels = dict(run_labels(ctx))
    if parent_step is not None:
        labels[runmeta.PARENT_STEP] = parent_step
    pin = ctx.snap.story_pin
    annotations: dict[str, str] = {runmeta.RETRY_POLICY_SOURCE: retry.source}
    if pin is not None:
        annotations[runmeta.STORY_SNAPSHOT] = pin.hash
    return NewStepRun(
        name=name, step_id=step_id, spec=spec, labels=labels, parent_step=parent_step, annotations=annotations
    )
