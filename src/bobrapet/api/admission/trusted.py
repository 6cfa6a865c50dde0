"""Admission of objects the engine built itself from admitted objects ("trusted" creates).

The StoryRun controller creates a StepRun for every engram step (and a ConfigMap holding
the copy of the admitted Story each run executes). Its spec is produced by
the engine (``engine/launch.py``) from objects admission already checked: the Story (its
``with`` blocks, templates and limits), the Engram (its ``with``) and the EngramTemplate;
the engine itself checks the Engram and template exist, the pinned version and the input
size, and fills the retry policy and the idempotency key. Running the full pipeline on it
again (the pydantic structural check, reference lookups, template scans) costs more than
the rest of a step and can find nothing new.

The same holds for a StoryTrigger built by :func:`bobrapet.triggers.trigger_story` (an
impulse delivery, ``ctx.trigger_story``): its spec comes from
``bobrapet.triggers.request.trigger_object``, after the Story was read (it exists; its version
is the one pinned). The short path re-checks its delivery identity, deterministic name and
input hash (pure rules); a trigger whose Story is in another namespace takes the full path
(the cross-namespace policy needs lookups).

Invariants:

* only kinds in :data:`TRUSTED_KINDS` take the short path; for any other kind
  :func:`admit_trusted` returns ``None`` and the caller runs the full :func:`admit`
  (a child StoryRun's inputs, for one, are checked against the child Story's schema);
* the short path still checks identity (name, namespace), runs the kind's defaulter
  (so the stored object is what full admission would store: full admission of its
  result changes nothing) and enforces the size limits, raising ``Invalid`` like
  :func:`admit`;
* it is reachable only through ``Client.create(..., trusted=True)``, which only
  controllers (engine-built children) and ``trigger_story`` pass; no user-facing path
  (manifests, ``apply``, the HTTP API's resource endpoints) can request it.
"""

from __future__ import annotations

from typing import Any

from bobrapet.api.admission.config import AdmissionConfig
from bobrapet.api.admission.context import Context, as_dict, json_size
from bobrapet.api.admission.lookup import MemoryLookup
from bobrapet.api.admission.pipeline import DEFAULTERS, Admitted, _check_identity, resolve_kind
from bobrapet.api.admission.storytrigger import identity_causes, input_hash_problem
from bobrapet.api.errors import BadRequest, Invalid
from bobrapet.api.kinds import CONFIG_MAP, STEP_RUN, STORY_TRIGGER

#: Kinds whose engine-built objects skip the structural check and the kind rules: StepRuns,
#: the ConfigMaps holding the copy of the Story a run executes (``story_snapshots``) and
#: StoryTriggers built by ``trigger_story``.
TRUSTED_KINDS = frozenset({STEP_RUN.kind, CONFIG_MAP.kind, STORY_TRIGGER.kind})

_NO_LOOKUP = MemoryLookup()


def admit_trusted(obj: Any, config: AdmissionConfig | None = None) -> Admitted | None:
    """Identity, defaults and size limits of an engine-built ``obj``; ``None``: admit it fully.

    ``obj`` is not copied: the caller passes a private copy (the store does).
    """
    if not isinstance(obj, dict):
        raise BadRequest("document must be a mapping")
    kind = resolve_kind(obj)
    needs_spec = kind is STEP_RUN or kind is STORY_TRIGGER
    if kind.kind not in TRUSTED_KINDS or (needs_spec and not isinstance(obj.get("spec"), dict)):
        return None
    spec = as_dict(obj.get("spec"))
    meta = as_dict(obj.get("metadata"))
    story_ns = as_dict(spec.get("storyRef")).get("namespace")
    if kind is STORY_TRIGGER and story_ns not in (None, meta.get("namespace")):
        return None  # the cross-namespace policy needs lookups
    config = config or AdmissionConfig()
    obj.pop("status", None)
    ctx = Context(kind, obj, None, _NO_LOOKUP, config)
    ctx.causes.extend(_check_identity(kind, obj, None))
    if kind is STORY_TRIGGER:
        ctx.causes.extend(identity_causes(spec, meta.get("name"), ctx.namespace))
        problem = input_hash_problem(spec)
        if problem is not None:
            ctx.error("spec.deliveryIdentity.inputHash", problem)
    defaulter = DEFAULTERS.get(kind.kind)
    if defaulter is not None:
        defaulter(ctx)
    _check_sizes(ctx)
    if ctx.causes:
        raise Invalid(kind.kind, ctx.name, ctx.causes, kind.group or None)
    return Admitted(object=obj, warnings=list(ctx.warnings))


def _check_sizes(ctx: Context) -> None:
    """The limits full StepRun admission applies (the engine checks the step's own ``with``,
    not the input merged with the Engram's)."""
    whole = json_size(ctx.obj)
    limit = ctx.config.max_object_size
    if limit and whole > limit:
        ctx.error("", f"{ctx.kind.kind} size of {whole} bytes exceeds maximum allowed size of {limit} bytes")
    value = ctx.spec.get("input")
    materialize = as_dict(ctx.metadata.get("labels")).get("materialize") == "true"
    limit = ctx.config.max_with_block_size
    if isinstance(value, dict) and not materialize and limit and whole > limit:  # input < whole
        size = json_size(value)
        if size > limit:
            ctx.error("spec.input", f"input is {size} bytes, more than the inline limit of {limit} bytes")
