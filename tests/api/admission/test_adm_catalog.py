"""Engram, Impulse, EngramTemplate/ImpulseTemplate, Transport/TransportBinding and cross-namespace policy."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.api.admission.adm_helpers import CATALOG, CORE, RUNS, Causes, engram, messages, story_doc

from bobrapet.api.admission import AdmissionConfig, Admitted, MemoryLookup, admit
from bobrapet.api.errors import Invalid

CausesOf = Callable[..., Awaitable[Causes]]
RunAdmit = Callable[..., Awaitable[Admitted]]


def template(kind: str = "EngramTemplate", **spec: Any) -> dict[str, Any]:
    body = {"version": "1.0.0", "supportedModes": ["job"], "image": "x/y:1", **spec}
    return {"apiVersion": CATALOG, "kind": kind, "metadata": {"name": "tpl"}, "spec": body}


# ----------------------------------------------------------------------------- templates


async def test_template_requires_version_and_image_or_entrypoint(
    causes_of: CausesOf, run_admit: RunAdmit
) -> None:
    doc = template()
    del doc["spec"]["version"], doc["spec"]["image"]
    text = messages(await causes_of(doc))
    assert "version is required" in text
    assert "image is required unless entrypoint" in text
    doc["spec"]["version"] = "1"
    doc["spec"]["entrypoint"] = "my_pkg.engram:run"
    await run_admit(doc)
    del doc["spec"]["entrypoint"]
    doc["spec"]["command"] = ["python", "main.py"]
    await run_admit(doc)


async def test_impulse_template_modes(causes_of: CausesOf) -> None:
    text = messages(await causes_of(template("ImpulseTemplate")))
    assert "spec.supportedModes[0]: unsupported mode 'job'" in text


async def test_template_schema_must_compile(causes_of: CausesOf) -> None:
    causes = await causes_of(template(inputSchema={"type": "objekt"}))
    assert any(f == "spec.inputSchema" and m.startswith("invalid JSON Schema") for f, m in causes)


# ----------------------------------------------------------------------------- Engram


async def test_engram_valid(run_admit: RunAdmit) -> None:
    doc = engram("e2", template="http")
    doc["spec"]["with"] = {"timeout": "5s"}
    await run_admit(doc)


async def test_engram_rules(causes_of: CausesOf) -> None:
    doc = engram("e2", mode="statefulset", template="http")
    doc["spec"]["templateRef"]["version"] = "9.9.9"
    doc["spec"]["with"] = {"timeout": 5}
    doc["spec"]["secrets"] = {"nope": "s"}
    text = messages(await causes_of(doc))
    assert "EngramTemplate 'http' has version '1.0.0', expected '9.9.9'" in text
    assert (
        "workload mode 'statefulset' is not supported by template (supportedModes: job, deployment)" in text
    )
    assert "spec.with.timeout: does not match the template configSchema" in text
    assert "secret 'nope' is not declared by the template" in text


async def test_engram_missing_template(causes_of: CausesOf) -> None:
    text = messages(await causes_of(engram("e3", template="ghost")))
    assert "EngramTemplate 'ghost' not found" in text


async def test_engram_with_too_large(causes_of: CausesOf) -> None:
    doc = engram("e4", template="http")
    doc["spec"]["with"] = {"timeout": "x" * 5000}
    assert "more than the inline limit of 4096 bytes" in messages(await causes_of(doc))


# ----------------------------------------------------------------------------- Impulse


def impulse(**spec: Any) -> dict[str, Any]:
    body = {"templateRef": {"name": "hook"}, "storyRef": {"name": "target"}, **spec}
    return {
        "apiVersion": CORE,
        "kind": "Impulse",
        "metadata": {"name": "imp", "namespace": "default"},
        "spec": body,
    }


@pytest.fixture
def impulse_lookup(lookup: MemoryLookup) -> MemoryLookup:
    tpl = template("ImpulseTemplate", supportedModes=["deployment"])
    tpl["metadata"]["name"] = "hook"
    lookup.add(tpl)
    return lookup


async def test_impulse_rules(impulse_lookup: MemoryLookup) -> None:
    doc = impulse(
        workload={"mode": "job"},
        deliveryPolicy={"dedupe": {"mode": "key"}, "retry": {"baseDelay": "10s", "maxDelay": "1s"}},
        throttle={"maxInFlight": -1},
        mapping=[1],
    )
    with pytest.raises(Invalid) as info:
        await admit(doc, None, impulse_lookup)
    text = "\n".join(f"{c.field}: {c.message}" for c in info.value.causes)
    assert "workload mode 'job' is not supported for impulses" in text
    assert "keyTemplate is required when dedupe.mode is 'key'" in text
    assert "maxDelay must be greater than or equal to baseDelay" in text
    assert "spec.throttle.maxInFlight" in text


async def test_impulse_missing_story_is_warning(impulse_lookup: MemoryLookup) -> None:
    result = await admit(impulse(storyRef={"name": "ghost"}), None, impulse_lookup)
    assert result.warnings == [
        "spec.storyRef: Story 'default/ghost' not found; triggers will be rejected until it exists"
    ]


# ----------------------------------------------------------------------------- Transport


def transport(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "transport.bubustack.io/v1alpha1",
        "kind": "Transport",
        "metadata": {"name": "livekit"},
        "spec": {"provider": "livekit", "driver": "bobravoz-livekit", **spec},
    }


async def test_transport_rules(causes_of: CausesOf, run_admit: RunAdmit) -> None:
    text = messages(await causes_of(transport()))
    assert "at least one of supportedAudio, supportedVideo or supportedBinary is required" in text
    text = messages(await causes_of(transport(supportedBinary=["not-a-mime"])))
    assert "MIME type must look like 'type/subtype'" in text
    await run_admit(transport(supportedAudio=[{"name": "opus", "sampleRateHz": 48000}]))


async def test_transport_binding_rules(lookup: MemoryLookup) -> None:
    lookup.add(transport(supportedAudio=[{"name": "opus"}]))
    binding: dict[str, Any] = {
        "apiVersion": "transport.bubustack.io/v1alpha1",
        "kind": "TransportBinding",
        "metadata": {"name": "b", "namespace": "default"},
        "spec": {
            "transportRef": "livekit",
            "stepName": "a",
            "engramName": "worker",
            "driver": "other-driver",
            "audio": {"direction": "publish", "codecs": [{"name": "pcm16"}]},
        },
    }
    with pytest.raises(Invalid) as info:
        await admit(binding, None, lookup)
    text = "\n".join(c.message for c in info.value.causes)
    assert "does not match Transport driver 'bobravoz-livekit'" in text
    assert "codec 'pcm16' is not supported by Transport 'livekit'" in text
    good = copy.deepcopy(binding)
    good["spec"]["driver"] = "bobravoz-livekit"
    good["spec"]["audio"]["codecs"] = [{"name": "opus"}]
    stored = (await admit(good, None, lookup)).object
    changed = copy.deepcopy(stored)
    changed["spec"]["transportRef"] = "other"
    with pytest.raises(Invalid) as info:
        await admit(changed, stored, lookup)
    assert any(c.message == "transportRef is immutable" for c in info.value.causes)
    # metadata-only updates (finalizer removal) still work after the Transport is deleted
    relabeled = copy.deepcopy(stored)
    relabeled["metadata"]["labels"] = {"gone": "yes"}
    await admit(relabeled, stored, MemoryLookup([]))


# ----------------------------------------------------------------------------- cross-namespace


def cross_run() -> dict[str, Any]:
    return {
        "apiVersion": RUNS,
        "kind": "StoryRun",
        "metadata": {"name": "r", "namespace": "team-a"},
        "spec": {"storyRef": {"name": "shared", "namespace": "team-b"}},
    }


@pytest.fixture
def cross_lookup() -> MemoryLookup:
    return MemoryLookup([story_doc("shared", ns="team-b", steps=[{"name": "a", "type": "condition"}])])


async def test_cross_namespace_deny(cross_lookup: MemoryLookup) -> None:
    with pytest.raises(Invalid) as info:
        await admit(cross_run(), None, cross_lookup)
    (cause,) = info.value.causes
    assert cause.field == "spec.storyRef"
    assert cause.message.startswith("cross-namespace Story references are not allowed")


async def test_cross_namespace_allow(cross_lookup: MemoryLookup) -> None:
    await admit(cross_run(), None, cross_lookup, AdmissionConfig(cross_namespace_policy="allow"))


async def test_cross_namespace_grant(cross_lookup: MemoryLookup) -> None:
    config = AdmissionConfig(cross_namespace_policy="grant")
    with pytest.raises(Invalid) as info:
        await admit(cross_run(), None, cross_lookup, config)
    assert "reference to team-b/shared is not permitted (no ReferenceGrant)" in info.value.causes[0].message
    cross_lookup.add(
        {
            "apiVersion": "policy.bubustack.io/v1alpha1",
            "kind": "ReferenceGrant",
            "metadata": {"name": "g", "namespace": "team-b"},
            "spec": {
                "from": [{"group": "runs.bubustack.io", "kind": "StoryRun", "namespace": "team-a"}],
                "to": [{"group": "bubustack.io", "kind": "Story", "name": "shared"}],
            },
        }
    )
    await admit(cross_run(), None, cross_lookup, config)


async def test_engram_metadata_update_after_template_deleted(run_admit: RunAdmit) -> None:
    """Labels and finalizers can change after the EngramTemplate is gone; the spec cannot."""
    old = (await run_admit(engram("worker"))).object
    old["metadata"]["finalizers"] = ["bubustack.io/cleanup"]
    empty = MemoryLookup([])
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = []
    new["metadata"]["labels"] = {"team": "a"}
    await admit(new, old, empty)
    changed = copy.deepcopy(new)
    changed["spec"]["mode"] = "deployment"
    with pytest.raises(Invalid, match="EngramTemplate 'plain' not found"):
        await admit(changed, old, empty)
