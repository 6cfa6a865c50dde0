"""Where each field acts: embedded, Kubernetes only, or planned (DESIGN: no inert configuration).

Invariants:

* Every field acts in both modes unless :data:`WHERE` says otherwise for its
  ``(model, wire field)``; a model shared by several kinds (``ExecutionOverrides`` is an
  Engram's ``overrides`` and a step's ``execution``) is classified once.
* :func:`kubernetes_only` lists the Kubernetes-only fields an object SETS (wire paths),
  walking the object along its model, so admission can warn about them once per object
  and ``explain`` can say where a field acts — from the same table.
* Planned fields (per-step storage policies, realtime) are accepted and described as planned; they
  are not Kubernetes-only, so no "ignored" warning names them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, get_args, get_origin

from pydantic import BaseModel

from bobrapet.api.structural import is_model, unwrap_optional

BOTH: Final = "embedded and Kubernetes"
KUBERNETES: Final = "Kubernetes only (accepted and ignored when embedded)"
PLANNED_REALTIME: Final = "planned: realtime/streaming execution (accepted, not acted on yet)"
PLANNED_STORAGE: Final = (
    "planned: per-step storage policies (accepted, not acted on yet; storage is set by controller.storage.*)"
)

# (model class name, wire field) -> where it acts. Audit of api/types: Story, Engram,
# EngramTemplate, StepRun (and the shared models they embed).
WHERE: Final[dict[tuple[str, str], str]] = {
    # EngramTemplate
    ("EngramTemplateSpec", "image"): KUBERNETES,
    ("TemplateExecutionPolicy", "images"): KUBERNETES,
    ("TemplateExecutionPolicy", "resources"): KUBERNETES,
    ("TemplateExecutionPolicy", "security"): KUBERNETES,
    ("TemplateExecutionPolicy", "job"): KUBERNETES,
    ("TemplateExecutionPolicy", "service"): KUBERNETES,
    ("TemplateExecutionPolicy", "probes"): KUBERNETES,
    ("TemplateExecutionPolicy", "rbac"): KUBERNETES,
    ("TemplateExecutionPolicy", "storage"): PLANNED_STORAGE,
    # Engram.spec.overrides, Story steps[].execution
    ("ExecutionOverrides", "security"): KUBERNETES,
    ("ExecutionOverrides", "placement"): KUBERNETES,
    ("ExecutionOverrides", "imagePullPolicy"): KUBERNETES,
    ("ExecutionOverrides", "serviceAccountName"): KUBERNETES,
    ("ExecutionOverrides", "automountServiceAccountToken"): KUBERNETES,
    ("ExecutionOverrides", "probes"): KUBERNETES,
    ("ExecutionOverrides", "rbac"): KUBERNETES,
    ("ExecutionOverrides", "storage"): PLANNED_STORAGE,
    # Story.spec.policy.execution, Engram.spec.executionPolicy
    ("ExecutionPolicy", "resources"): KUBERNETES,
    ("ExecutionPolicy", "security"): KUBERNETES,
    ("ExecutionPolicy", "placement"): KUBERNETES,
    ("ExecutionPolicy", "serviceAccountName"): KUBERNETES,
    ("ExecutionPolicy", "storage"): PLANNED_STORAGE,
    ("ExecutionPolicy", "realtime"): PLANNED_REALTIME,
    ("JobPolicy", "backoffLimit"): KUBERNETES,
    ("JobPolicy", "restartPolicy"): KUBERNETES,
    # StepRun.spec.executionOverrides
    ("StepExecutionOverrides", "cpuRequest"): KUBERNETES,
    ("StepExecutionOverrides", "cpuLimit"): KUBERNETES,
    ("StepExecutionOverrides", "memoryRequest"): KUBERNETES,
    ("StepExecutionOverrides", "memoryLimit"): KUBERNETES,
    ("StepExecutionOverrides", "placement"): KUBERNETES,
    ("StepExecutionOverrides", "backoffLimit"): KUBERNETES,
    ("StepExecutionOverrides", "ttlSecondsAfterFinished"): KUBERNETES,
    ("StepExecutionOverrides", "restartPolicy"): KUBERNETES,
    ("StepRunSpec", "downstreamTargets"): PLANNED_REALTIME,
    # Engram
    ("EngramSpec", "mode"): PLANNED_REALTIME,
    ("EngramSpec", "transport"): PLANNED_REALTIME,
    # Story
    ("StorySpec", "transports"): PLANNED_REALTIME,
    ("StorySpec", "concurrency"): PLANNED_REALTIME,
    ("StoryPolicy", "storage"): PLANNED_STORAGE,
    ("Step", "runtime"): PLANNED_REALTIME,
    ("Step", "transport"): PLANNED_REALTIME,
}


def where(model: type[BaseModel] | None, wire: str) -> str:
    """Where field ``wire`` of ``model`` acts (:data:`BOTH` unless listed)."""
    if model is None:
        return BOTH
    return WHERE.get((model.__name__, wire), BOTH)


def _wire_fields(model: type[BaseModel]) -> dict[str, Any]:
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def _walk(model: type[BaseModel], value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, dict):
        return
    fields = _wire_fields(model)
    for key, item in value.items():
        if item is None or key not in fields:
            continue
        here = f"{path}.{key}" if path else str(key)
        if WHERE.get((model.__name__, str(key))) == KUBERNETES:
            yield here
            continue
        yield from _descend(fields[key], item, here)


def _descend(annotation: Any, value: Any, path: str) -> Iterator[str]:
    tp, _ = unwrap_optional(annotation)
    if is_model(tp):
        yield from _walk(tp, value, path)
        return
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (list, tuple) and args and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _descend(args[0], item, f"{path}[{i}]")
    elif origin is dict and len(args) == 2 and isinstance(value, dict):
        for key, item in value.items():
            yield from _descend(args[1], item, f"{path}.{key}")


def kubernetes_only(model: type[BaseModel], obj: dict[str, Any]) -> list[str]:
    """Wire paths of the Kubernetes-only fields ``obj`` sets (``spec.overrides.security`` ...)."""
    return list(_walk(model, obj, ""))


def kubernetes_only_warning(paths: list[str]) -> str:
    """One warning for an object: ``spec.resources acts only on Kubernetes; ignored when embedded``.

    (The CLI prefixes admission warnings with the object, e.g. ``warning: engram/x: ...``.)
    """
    verb = "acts" if len(paths) == 1 else "act"
    return f"{', '.join(paths)} {verb} only on Kubernetes; ignored when embedded"
