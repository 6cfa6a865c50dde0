"""The admission pipeline: shape → identity → defaults → kind rules → one ``Invalid``.

Invariants:

* ``admit`` never mutates its input and never writes anywhere; the returned object is
  the normalized, defaulted wire dict.
* Every cause from every stage is collected and raised once as
  :class:`~bobrapet.api.errors.Invalid` (a kind rule that repeats a field the structural
  check already rejected is dropped, so users see one message per problem).
* Not-a-mapping and unknown ``apiVersion``/``kind`` are :class:`BadRequest`.
"""

from __future__ import annotations

import copy
import difflib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, get_args

from pydantic import BaseModel

from bobrapet.api.acts import KUBERNETES, WHERE, kubernetes_only, kubernetes_only_warning
from bobrapet.api.admission.config import AdmissionConfig
from bobrapet.api.admission.context import DNS1123_LABEL, DNS1123_SUBDOMAIN, Context
from bobrapet.api.admission.effectclaim import validate_effectclaim
from bobrapet.api.admission.engram import validate_engram
from bobrapet.api.admission.impulse import validate_impulse
from bobrapet.api.admission.lookup import HydrateInputs, Lookup
from bobrapet.api.admission.references import validate_reference_grant
from bobrapet.api.admission.steprun import default_steprun, validate_steprun
from bobrapet.api.admission.story import default_story, validate_story
from bobrapet.api.admission.storyrun import default_storyrun, validate_storyrun
from bobrapet.api.admission.storytrigger import validate_storytrigger
from bobrapet.api.admission.templates import validate_template
from bobrapet.api.admission.transport import validate_binding, validate_transport
from bobrapet.api.errors import BadRequest, Cause, Invalid
from bobrapet.api.kinds import (
    ALL_KINDS,
    EFFECT_CLAIM,
    ENGRAM,
    ENGRAM_TEMPLATE,
    IMPULSE,
    IMPULSE_TEMPLATE,
    REFERENCE_GRANT,
    STEP_RUN,
    STORY,
    STORY_RUN,
    STORY_TRIGGER,
    TRANSPORT_BINDING,
    TRANSPORT_KIND,
    Kind,
    for_object,
    known_api_versions,
)
from bobrapet.api.structural import is_model, wire_fields

Defaulter = Callable[[Context], None]
Validator = Callable[[Context], Awaitable[None]]

DEFAULTERS: dict[str, Defaulter] = {
    STORY.kind: default_story,
    STEP_RUN.kind: default_steprun,
    STORY_RUN.kind: default_storyrun,
}
VALIDATORS: dict[str, Validator] = {
    STORY.kind: validate_story,
    ENGRAM.kind: validate_engram,
    IMPULSE.kind: validate_impulse,
    ENGRAM_TEMPLATE.kind: validate_template,
    IMPULSE_TEMPLATE.kind: validate_template,
    STORY_RUN.kind: validate_storyrun,
    STEP_RUN.kind: validate_steprun,
    STORY_TRIGGER.kind: validate_storytrigger,
    EFFECT_CLAIM.kind: validate_effectclaim,
    TRANSPORT_KIND.kind: validate_transport,
    TRANSPORT_BINDING.kind: validate_binding,
    REFERENCE_GRANT.kind: validate_reference_grant,
}


@dataclass
class Admitted:
    """The admitted object (normalized + defaulted wire dict) and warnings."""

    object: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "list", str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def resolve_kind(obj: dict[str, Any]) -> Kind:
    """The Kind of ``obj`` or a BadRequest naming the known apiVersions/kinds."""
    api_version = obj.get("apiVersion")
    kind_name = obj.get("kind")
    kinds = sorted({k.kind for k in ALL_KINDS})
    if not isinstance(api_version, str) or not api_version:
        raise BadRequest(
            "apiVersion is required (known apiVersions: " + ", ".join(known_api_versions()) + ")"
        )
    if not isinstance(kind_name, str) or not kind_name:
        raise BadRequest("kind is required (known kinds: " + ", ".join(kinds) + ")")
    kind = for_object(api_version, kind_name)
    if kind is not None:
        return kind
    same = [k for k in ALL_KINDS if k.kind == kind_name]
    if same:
        raise BadRequest(
            f"unknown apiVersion '{api_version}' for kind {kind_name}; use apiVersion: {same[0].api_version}"
        )
    close = difflib.get_close_matches(kind_name, kinds, n=1, cutoff=0.5)
    if not close:
        close = [k for k in kinds if k.lower() == kind_name.lower()]
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise BadRequest(f"unknown kind '{kind_name}' (known kinds: {', '.join(kinds)}){hint}")


def _check_identity(kind: Kind, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes: list[Cause] = []
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [Cause("metadata", "metadata with a name is required", "FieldValueRequired")]
    name = meta.get("name")
    generate = meta.get("generateName")
    if not name and not generate:
        causes.append(Cause("metadata.name", "name or generateName is required", "FieldValueRequired"))
    elif name:
        if not isinstance(name, str) or len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
            causes.append(
                Cause(
                    "metadata.name",
                    f"name {name!r} must be a DNS-1123 subdomain: at most 253 lowercase letters, "
                    "digits, '-' and '.', starting and ending with a letter or digit",
                )
            )
    elif not isinstance(generate, str) or not DNS1123_SUBDOMAIN.match(generate.rstrip("-") or "x"):
        causes.append(Cause("metadata.generateName", "generateName must be a DNS-1123 subdomain prefix"))
    ns = meta.get("namespace")
    if not kind.namespaced and ns:
        causes.append(
            Cause(
                "metadata.namespace",
                f"{kind.kind} is cluster-scoped; remove metadata.namespace",
                "FieldValueForbidden",
            )
        )
    if (
        kind.namespaced
        and ns is not None
        and (not isinstance(ns, str) or len(ns) > 63 or not DNS1123_LABEL.match(ns))
    ):
        causes.append(Cause("metadata.namespace", f"namespace {ns!r} must be a DNS-1123 label"))
    if old is not None:
        old_name = (old.get("metadata") or {}).get("name")
        if name and old_name and name != old_name:
            causes.append(Cause("metadata.name", "name is immutable", "FieldValueForbidden"))
    return causes


def _merge_identity(identity: list[Cause], structural_causes: list[Cause]) -> list[Cause]:
    """One cause per metadata field: a type error from the structural check beats the name
    rule (``name: 123`` is "must be a string"), while a missing field is better explained by
    the identity rule ("metadata with a name is required")."""
    by_field = {c.field: c for c in structural_causes}
    kept_identity = []
    dropped_structural: set[Cause] = set()
    for cause in identity:
        other = by_field.get(cause.field)
        if other is None and not any(_covers(f, cause.field) for f in by_field):
            kept_identity.append(cause)
        elif other is not None and other.reason == "FieldValueRequired":
            kept_identity.append(cause)
            dropped_structural.add(other)
    return kept_identity + [c for c in structural_causes if c not in dropped_structural]


def _structural(kind: Kind, obj: dict[str, Any], include_status: bool) -> tuple[dict[str, Any], list[Cause]]:
    try:
        from bobrapet.api import structural
    except ImportError:  # pragma: no cover - only while the models are being written
        data = copy.deepcopy(obj)
        if not include_status:
            data.pop("status", None)
        return data, []
    normalized, causes = structural.check(kind, obj, include_status=include_status)
    if causes or normalized is obj:
        # the input came back as given: copy it so admission never mutates the caller's object
        normalized = json_copy(normalized)
    return normalized, list(causes)


def json_copy(value: Any) -> Any:
    """Deep copy of a JSON-like value without recursion (any nesting depth; scalars shared)."""
    if not isinstance(value, dict | list):
        return copy.deepcopy(value)
    root: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        src, dst = stack.pop()
        items = src.items() if isinstance(src, dict) else enumerate(src)
        for key, item in items:
            if isinstance(item, dict | list):
                child: Any = {} if isinstance(item, dict) else []
                stack.append((item, child))
            else:
                child = item if isinstance(item, str | int | float | bool | None) else copy.deepcopy(item)
            if isinstance(dst, dict):
                dst[key] = child
            else:
                dst.append(child)
    return root


def _covers(parent: str, child: str) -> bool:
    """Whether a structural cause at ``parent`` already explains a cause at ``child``."""
    if not parent:
        return True
    return child == parent or child.startswith(parent + ".") or child.startswith(parent + "[")


async def admit(
    obj: Any,
    old: dict[str, Any] | None,
    lookup: Lookup,
    config: AdmissionConfig | None = None,
    *,
    subresource: str | None = None,
    hydrate: HydrateInputs | None = None,
) -> Admitted:
    """Default and validate ``obj`` (``old`` is the stored object on update); ``hydrate``
    reads offloaded payloads where a rule needs their content."""
    if not isinstance(obj, dict):
        raise BadRequest(f"document must be a mapping, got {_type_name(obj)}")
    kind = resolve_kind(obj)
    if subresource not in (None, "status"):
        raise BadRequest(f"unknown subresource '{subresource}' (only 'status' exists)")
    if subresource == "status" and old is None:
        raise BadRequest("status can only be written on an existing object")
    config = config or AdmissionConfig()
    status_only = subresource == "status"
    normalized, structural_causes = _structural(kind, obj, status_only)
    causes = _merge_identity(_check_identity(kind, normalized, old), structural_causes)
    ctx = Context(kind, normalized, old, lookup, config, subresource, hydrate=hydrate)
    if not structural_causes:
        defaulter = DEFAULTERS.get(kind.kind)
        if defaulter is not None and not status_only:
            defaulter(ctx)
    validator = VALIDATORS.get(kind.kind)
    if validator is not None:
        try:
            await validator(ctx)
        except RecursionError:
            # pathological nesting (the structural check already limits JSON depth; a deep
            # schema can still exhaust the stack): an error for the user, never a traceback
            ctx.error(
                "",
                f"{kind.kind} is nested too deeply to validate; flatten deeply nested schemas or values",
            )
        except (TypeError, AttributeError, KeyError, ValueError):
            # Kind rules assume the shape the structural check guarantees; when the shape is
            # already rejected, the structural causes explain the problem on their own.
            if not structural_causes:
                raise
    # A kind rule at exactly the field of a structural cause replaces it (it names the step
    # and says how to fix it); kind rules *below* a structural cause are dropped.
    # (sets keep this linear: a 1000-step story can produce a thousand causes)
    own_fields = {c.field for c in ctx.causes}
    structural_set = set(structural_causes)
    causes = [c for c in causes if c not in structural_set or c.field not in own_fields]
    reported = {c.field for c in structural_causes}
    seen = set(causes)
    for cause in ctx.causes:
        exact = cause.field in reported
        if not exact and reported and any(_covers(r, cause.field) for r in reported):
            continue
        if cause not in seen:
            seen.add(cause)
            causes.append(cause)
    if causes:
        meta = normalized.get("metadata") if isinstance(normalized.get("metadata"), dict) else {}
        name = str((meta or {}).get("name") or (meta or {}).get("generateName") or "")
        raise Invalid(kind.kind, name, causes, kind.group or None)
    if config.embedded and not status_only:
        _warn_kubernetes_only(ctx)
    return Admitted(object=normalized, warnings=list(ctx.warnings))


def _warn_kubernetes_only(ctx: Context) -> None:
    """One warning per object naming the set fields that act only on Kubernetes.

    Only when the spec is new or changed, so re-applying an unchanged object stays quiet.
    """
    if ctx.old is not None and ctx.old.get("spec") == ctx.obj.get("spec"):
        return
    if not _may_set_kubernetes_only(ctx.kind.model):
        return  # (a StoryRun: walking it along its model would find nothing)
    paths = kubernetes_only(ctx.kind.model, ctx.obj)
    if paths:
        ctx.warnings.append(kubernetes_only_warning(paths))


@functools.cache
def _may_set_kubernetes_only(model: type[BaseModel]) -> bool:
    """Whether any model reachable from ``model`` has a Kubernetes-only field.

    Reachability follows every type argument of every field annotation (a superset of what
    :func:`~bobrapet.api.acts.kubernetes_only` walks), so ``False`` means that walk finds
    nothing for any object of the kind.
    """
    seen: set[type[BaseModel]] = set()
    stack: list[Any] = [model]
    while stack:
        tp = stack.pop()
        if is_model(tp):
            if tp in seen:
                continue
            seen.add(tp)
            for wire, annotation in wire_fields(tp).items():
                if WHERE.get((tp.__name__, wire)) == KUBERNETES:
                    return True
                stack.append(annotation)
        else:
            stack.extend(get_args(tp))
    return False
