"""References between resources, read from wire-form dicts.

A reference's namespace defaults to the referencing object's namespace (reference §1.2);
template and Transport references are cluster-scoped (no namespace).

Story references (:func:`story_engram_refs`) cover ``steps``, ``compensations`` and
``finally``, including the branches of ``parallel`` steps (``with.steps[*].ref``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bobrapet.store.client import Resource

SECTIONS = ("steps", "compensations", "finally")


def namespace_of(obj: Resource) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def name_of(obj: Resource) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def spec_of(obj: Resource) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


@dataclass(frozen=True)
class Ref:
    """A resolved reference: ``namespace`` is ``""`` for cluster-scoped targets."""

    namespace: str
    name: str
    version: str | None = None


def resolve(ref: Any, default_namespace: str) -> Ref | None:
    """A ``{name, namespace?, version?}`` map resolved against ``default_namespace``."""
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    version = ref.get("version")
    return Ref(
        str(ref.get("namespace") or default_namespace),
        str(ref["name"]),
        str(version) if version else None,
    )


def template_name(obj: Resource) -> str | None:
    """``spec.templateRef.name`` of an Engram or Impulse."""
    ref = spec_of(obj).get("templateRef")
    return str(ref["name"]) if isinstance(ref, dict) and ref.get("name") else None


def impulse_story_ref(impulse: Resource) -> Ref | None:
    return resolve(spec_of(impulse).get("storyRef"), namespace_of(impulse))


@dataclass(frozen=True)
class StepRef:
    """An Engram (or Story) reference made by one step of a Story."""

    section: str  # steps | compensations | finally
    step: str  # step name; "parent/branch" for parallel branches
    ref: Ref
    path: str = ""  # field path of the reference, e.g. spec.steps[2].ref


def iter_steps(story: Resource) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(section, field path, step)`` for every step of the three step lists."""
    spec = spec_of(story)
    for section in SECTIONS:
        for index, step in enumerate(spec.get(section) or ()):
            if isinstance(step, dict):
                yield section, f"spec.{section}[{index}]", step


def story_engram_refs(story: Resource) -> list[StepRef]:
    """Every Engram a Story's steps (and parallel branches) reference."""
    namespace = namespace_of(story)
    found: list[StepRef] = []
    for section, path, step in iter_steps(story):
        name = str(step.get("name") or "")
        ref = resolve(step.get("ref"), namespace)
        if ref is not None:
            found.append(StepRef(section, name, ref, f"{path}.ref"))
        if step.get("type") == "parallel":
            with_ = step.get("with")
            branches = with_.get("steps") if isinstance(with_, dict) else None
            for index, branch in enumerate(branches or ()):
                if not isinstance(branch, dict):
                    continue
                branch_ref = resolve(branch.get("ref"), namespace)
                if branch_ref is not None:
                    branch_name = f"{name}/{branch.get('name') or ''}"
                    branch_path = f"{path}.with.steps[{index}].ref"
                    found.append(StepRef(section, branch_name, branch_ref, branch_path))
    return found


def story_substory_refs(story: Resource) -> list[StepRef]:
    """Stories that ``executeStory`` steps of ``story`` launch (``with.storyRef``)."""
    namespace = namespace_of(story)
    found: list[StepRef] = []
    for section, path, step in iter_steps(story):
        if step.get("type") != "executeStory":
            continue
        with_ = step.get("with")
        ref = resolve(with_.get("storyRef"), namespace) if isinstance(with_, dict) else None
        if ref is not None:
            found.append(StepRef(section, str(step.get("name") or ""), ref, f"{path}.with.storyRef"))
    return found


def story_transport_names(story: Resource) -> list[str]:
    """Transport names (cluster-scoped) named by ``spec.transports[].transportRef``."""
    names: list[str] = []
    for entry in spec_of(story).get("transports") or ():
        if isinstance(entry, dict) and entry.get("transportRef"):
            names.append(str(entry["transportRef"]))
    return names


def run_story_ref(run: Resource) -> Ref | None:
    """``spec.storyRef`` of a StoryRun."""
    return resolve(spec_of(run).get("storyRef"), namespace_of(run))


def run_impulse_ref(run: Resource) -> Ref | None:
    """``spec.impulseRef`` of a StoryRun."""
    return resolve(spec_of(run).get("impulseRef"), namespace_of(run))


def steprun_engram_ref(step_run: Resource) -> Ref | None:
    return resolve(spec_of(step_run).get("engramRef"), namespace_of(step_run))


def trigger_tokens(run: Resource) -> list[str]:
    status = run.get("status")
    tokens = status.get("triggerTokens") if isinstance(status, dict) else None
    return [str(t) for t in tokens] if isinstance(tokens, list) else []
