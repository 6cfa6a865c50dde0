"""The admission pipeline: document shape, apiVersion/kind, names, scope, and the compat templates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.api.admission.adm_helpers import Causes

from bobrapet.api.admission import Admitted
from bobrapet.api.errors import BadRequest

CausesOf = Callable[..., Awaitable[Causes]]
RunAdmit = Callable[..., Awaitable[Admitted]]


async def test_not_a_mapping(run_admit: RunAdmit) -> None:
    with pytest.raises(BadRequest) as info:
        await run_admit([{"kind": "Story"}])
    assert info.value.message == "document must be a mapping, got list"


async def test_missing_api_version(run_admit: RunAdmit) -> None:
    with pytest.raises(BadRequest) as info:
        await run_admit({"kind": "Story"})
    assert "apiVersion is required (known apiVersions: bubustack.io/v1alpha1" in info.value.message


async def test_unknown_kind_suggests_closest(run_admit: RunAdmit) -> None:
    with pytest.raises(BadRequest) as info:
        await run_admit({"apiVersion": "bubustack.io/v1alpha1", "kind": "Stroy", "metadata": {"name": "x"}})
    assert "unknown kind 'Stroy'" in info.value.message
    assert "did you mean 'Story'?" in info.value.message


async def test_wrong_api_version_for_known_kind(run_admit: RunAdmit) -> None:
    with pytest.raises(BadRequest) as info:
        await run_admit({"apiVersion": "bubustack.io/v1", "kind": "Story", "metadata": {"name": "x"}})
    assert (
        info.value.message
        == "unknown apiVersion 'bubustack.io/v1' for kind Story; use apiVersion: bubustack.io/v1alpha1"
    )


async def test_invalid_name(causes_of: CausesOf) -> None:
    doc = {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Story",
        "metadata": {"name": "Bad_Name"},
        "spec": {"steps": [{"name": "a", "type": "condition"}]},
    }
    causes = await causes_of(doc)
    assert any(f == "metadata.name" and "DNS-1123 subdomain" in m for f, m in causes)


async def test_generate_name_is_enough(run_admit: RunAdmit) -> None:
    doc = {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Story",
        "metadata": {"generateName": "demo-", "namespace": "default"},
        "spec": {"steps": [{"name": "a", "type": "condition"}]},
    }
    await run_admit(doc)


async def test_cluster_scoped_kind_rejects_namespace(causes_of: CausesOf) -> None:
    doc = {
        "apiVersion": "catalog.bubustack.io/v1alpha1",
        "kind": "EngramTemplate",
        "metadata": {"name": "t", "namespace": "default"},
        "spec": {"version": "1", "supportedModes": ["job"], "image": "x"},
    }
    causes = await causes_of(doc)
    assert ("metadata.namespace", "EngramTemplate is cluster-scoped; remove metadata.namespace") in causes


async def test_unknown_subresource(run_admit: RunAdmit) -> None:
    with pytest.raises(BadRequest):
        await run_admit(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, subresource="scale"
        )


def _templates(compat_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((compat_dir / "templates").glob("*/*.yaml")):
        docs.append((path.parent.name + "/" + path.name, yaml.safe_load(path.read_text())))
    return docs


async def test_all_compat_templates_are_admitted(compat_dir: Path, run_admit: RunAdmit) -> None:
    docs = _templates(compat_dir)
    assert len(docs) == 17
    for name, doc in docs:
        result = await run_admit(doc)
        assert result.object["kind"] in ("EngramTemplate", "ImpulseTemplate"), name


def _deep_value(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


def _deep_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize("depth", [400, 900, 3000])
async def test_deep_nesting_is_an_error_not_a_crash(causes_of: CausesOf, depth: int) -> None:
    step = {"name": "a", "ref": {"name": "worker"}, "with": _deep_value(depth)}
    doc = {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Story",
        "metadata": {"name": "deep", "namespace": "default"},
        "spec": {"steps": [step], "inputsSchema": _deep_schema(depth)},
    }
    causes = await causes_of(doc)
    assert {f for f, _ in causes} >= {"spec.steps[0].with", "spec.inputsSchema"}
    template = {
        "apiVersion": "catalog.bubustack.io/v1alpha1",
        "kind": "EngramTemplate",
        "metadata": {"name": "deep"},
        "spec": {"version": "1", "supportedModes": ["job"], "image": "x", "inputSchema": _deep_schema(depth)},
    }
    causes = await causes_of(template)
    assert causes[0][0] == "spec.inputSchema"
    assert "nested too deeply" in causes[0][1] and "flatten" in causes[0][1]


@pytest.mark.parametrize(
    ("metadata", "field", "message"),
    [
        (None, "metadata", "metadata with a name is required"),
        ({"name": 123}, "metadata.name", "must be a string"),
        ({"name": "Bad_Name"}, "metadata.name", "DNS-1123 subdomain"),
    ],
    ids=["missing-metadata", "name-not-a-string", "name-not-dns"],
)
async def test_one_cause_per_metadata_problem(
    causes_of: CausesOf, metadata: Any, field: str, message: str
) -> None:
    doc: dict[str, Any] = {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Story",
        "spec": {"steps": [{"name": "a", "type": "sleep"}]},
    }
    if metadata is not None:
        doc["metadata"] = metadata
    causes = await causes_of(doc)
    assert [c for c in causes if c[0] == field] == [c for c in causes if c[0].startswith("metadata")]
    assert len([c for c in causes if c[0] == field]) == 1
    assert any(message in c[1] for c in causes if c[0] == field)
