"""Where fields act (api/acts.py): the audit table, the walk over objects, admission warnings, explain."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bobrapet.api import kinds
from bobrapet.api.acts import BOTH, KUBERNETES, PLANNED_REALTIME, WHERE, kubernetes_only
from bobrapet.api.admission import AdmissionConfig, MemoryLookup, admit
from bobrapet.api.explain import explain
from bobrapet.api.structural import is_model, unwrap_optional

CORE = "bubustack.io/v1alpha1"
CATALOG = "catalog.bubustack.io/v1alpha1"


def _models() -> dict[str, type[BaseModel]]:
    """Every model reachable from a kind, by class name."""
    found: dict[str, type[BaseModel]] = {}

    def visit(tp: Any) -> None:
        tp, _ = unwrap_optional(tp)
        if is_model(tp):
            if tp.__name__ in found:
                return
            found[tp.__name__] = tp
            for info in tp.model_fields.values():
                visit(info.annotation)
            return
        for arg in getattr(tp, "__args__", ()) or ():
            visit(arg)

    for kind in kinds.ALL_KINDS:
        visit(kind.model)
    return found


def test_every_entry_of_the_table_names_a_real_field() -> None:
    models = _models()
    for model_name, wire in WHERE:
        model = models.get(model_name)
        assert model is not None, model_name
        wires = {(info.alias or name) for name, info in model.model_fields.items()}
        assert wire in wires, f"{model_name}.{wire}"


def _engram(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": CORE,
        "kind": "Engram",
        "metadata": {"name": "e"},
        "spec": {"templateRef": {"name": "t"}, **spec},
    }


def test_kubernetes_only_lists_set_fields_and_skips_acting_and_planned_ones() -> None:
    engram = _engram(
        overrides={"security": {"runAsNonRoot": True}, "timeout": "5s", "cache": {"enabled": True}},
        executionPolicy={
            "resources": {"cpuRequest": "1"},
            "job": {"backoffLimit": 1, "ttlSecondsAfterFinished": 5},
        },
        mode="job",
    )
    assert kubernetes_only(kinds.ENGRAM.model, engram) == [
        "spec.overrides.security",
        "spec.executionPolicy.resources",
        "spec.executionPolicy.job.backoffLimit",
    ]
    story = {
        "apiVersion": CORE,
        "kind": "Story",
        "metadata": {"name": "s"},
        "spec": {
            "steps": [
                {"name": "a", "ref": {"name": "e"}},
                {"name": "b", "ref": {"name": "e"}, "execution": {"placement": {"nodeSelector": {"x": "y"}}}},
            ]
        },
    }
    assert kubernetes_only(kinds.STORY.model, story) == ["spec.steps[1].execution.placement"]
    assert kubernetes_only(kinds.ENGRAM.model, _engram()) == []


async def test_embedded_admission_warns_once_per_object_and_only_when_the_spec_changes() -> None:
    lookup = MemoryLookup()
    template = {
        "apiVersion": CATALOG,
        "kind": "EngramTemplate",
        "metadata": {"name": "t"},
        "spec": {"version": "1", "supportedModes": ["job"], "entrypoint": "m:f"},
    }
    lookup.add(template)
    engram = _engram(
        overrides={"security": {"runAsNonRoot": True}, "placement": {"nodeSelector": {"a": "b"}}}
    )
    embedded = AdmissionConfig(embedded=True)
    created = await admit(engram, None, lookup, embedded)
    assert created.warnings == [
        "spec.overrides.security, spec.overrides.placement act only on Kubernetes; ignored when embedded"
    ]
    again = await admit(engram, created.object, lookup, embedded)
    assert again.warnings == []  # unchanged spec: no repeat
    assert (await admit(engram, None, lookup, AdmissionConfig())).warnings == []  # Kubernetes: it acts


def test_explain_says_where_a_field_acts() -> None:
    assert f"ACTS: {KUBERNETES}" in explain(kinds.ENGRAM, ["spec.overrides.security.runAsUser"])
    assert f"ACTS: {BOTH}" in explain(kinds.ENGRAM, ["spec.overrides.timeout"])
    assert f"ACTS: {PLANNED_REALTIME}" in explain(kinds.ENGRAM, ["spec.mode"])
    listing = explain(kinds.ENGRAM_TEMPLATE, ["spec"])
    assert f"  image\t<string>\n    Container image (Kubernetes mode).\n    ACTS: {KUBERNETES}" in listing


def test_admission_skips_the_walk_only_for_kinds_without_kubernetes_only_fields() -> None:
    from bobrapet.api.admission.pipeline import _may_set_kubernetes_only

    assert not _may_set_kubernetes_only(kinds.STORY_RUN.model)
    for kind in (kinds.STORY, kinds.ENGRAM, kinds.STEP_RUN, kinds.ENGRAM_TEMPLATE, kinds.IMPULSE):
        assert _may_set_kubernetes_only(kind.model), kind.kind
    named = {model for model, _ in WHERE}
    for kind in kinds.ALL_KINDS:
        if not _may_set_kubernetes_only(kind.model):
            assert kind.model.__name__ not in named
