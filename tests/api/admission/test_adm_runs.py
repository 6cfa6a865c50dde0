"""StoryRun, StepRun, StoryTrigger and EffectClaim admission."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.api.admission.adm_helpers import RUNS, Causes, messages, story_doc

from bobrapet.api.admission import AdmissionConfig, Admitted, MemoryLookup, admit
from bobrapet.api.admission.identity import (
    canonical_input_hash,
    derive_story_run_name,
    effect_claim_name,
    story_trigger_name,
)
from bobrapet.api.errors import Invalid

CausesOf = Callable[..., Awaitable[Causes]]
RunAdmit = Callable[..., Awaitable[Admitted]]


def storyrun(inputs: Any = None, story: str = "target", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"storyRef": {"name": story}, **spec}
    if inputs is not None:
        body["inputs"] = inputs
    return {
        "apiVersion": RUNS,
        "kind": "StoryRun",
        "metadata": {"name": "run-1", "namespace": "default"},
        "spec": body,
    }


# ----------------------------------------------------------------------------- StoryRun


async def test_storyrun_valid(run_admit: RunAdmit) -> None:
    result = await run_admit(storyrun({"user": "ann"}))
    assert result.object["spec"]["inputs"] == {"user": "ann"}


async def test_storyrun_story_must_exist(causes_of: CausesOf) -> None:
    causes = await causes_of(storyrun({}, story="ghost"))
    assert ("spec.storyRef", "referenced story 'default/ghost' not found") in causes


async def test_storyrun_version_pin(causes_of: CausesOf) -> None:
    doc = storyrun({"user": "a"})
    doc["spec"]["storyRef"]["version"] = "v2"
    causes = await causes_of(doc)
    assert (
        "spec.storyRef.version",
        "referenced story 'default/target' has version 'v1', expected 'v2'",
    ) in causes


async def test_storyrun_inputs_fail_schema(causes_of: CausesOf) -> None:
    causes = await causes_of(storyrun({"count": "three"}))
    text = messages(causes)
    assert "spec.inputs: does not match the Story inputsSchema: 'user' is a required property" in text
    assert (
        "spec.inputs.count: does not match the Story inputsSchema: 'three' is not of type 'integer'" in text
    )


async def test_storyrun_required_input_with_default_may_be_omitted() -> None:
    """Defaults are applied before validation (the Go webhook rejected this, item 19 of the
    reference's known issues); the admitted spec keeps exactly what the user wrote."""
    target = story_doc("defaults", steps=[{"name": "only", "type": "condition"}])
    target["spec"]["inputsSchema"] = {
        "type": "object",
        "required": ["mode"],
        "properties": {"mode": {"type": "string", "default": "fast"}},
    }
    result = await admit(storyrun(story="defaults"), None, MemoryLookup([target]))
    assert "inputs" not in result.object["spec"]
    target["spec"]["inputsSchema"]["properties"]["mode"]["enum"] = ["fast"]
    with pytest.raises(Invalid, match=r"'slow' is not one of"):
        await admit(storyrun({"mode": "slow"}, story="defaults"), None, MemoryLookup([target]))


async def test_storyrun_inputs_accept_refs_and_warn(run_admit: RunAdmit) -> None:
    result = await run_admit(storyrun({"user": {"$bubuStorageRef": "inputs/run-1/user.json"}}))
    assert any("storage references" in w for w in result.warnings)


async def test_storyrun_malformed_ref_map(causes_of: CausesOf) -> None:
    causes = await causes_of(storyrun({"user": "a", "k": {"$bubuSecretRef": "nokey", "extra": 1}}))
    text = messages(causes)
    assert "$bubuSecretRef must be the only key in its map" in text
    assert "Secret reference must be 'name:key'" in text


async def test_storyrun_storage_ref_path_traversal(causes_of: CausesOf) -> None:
    causes = await causes_of(storyrun({"user": {"$bubuStorageRef": "../etc/passwd"}}))
    assert "without '..' segments" in messages(causes)


async def test_storyrun_inputs_too_large(causes_of: CausesOf) -> None:
    causes = await causes_of(storyrun({"user": "x" * 2000}))
    assert (
        "spec.inputs",
        "spec.inputs too large (2011 bytes > 1024). Provide large inputs via an offloading mechanism "
        "instead of inlining",
    ) in causes


async def test_storyrun_spec_immutable(run_admit: RunAdmit, causes_of: CausesOf) -> None:
    old = (await run_admit(storyrun({"user": "a"}))).object
    new = copy.deepcopy(old)
    new["spec"]["inputs"] = {"user": "b"}
    causes = await causes_of(new, old=old)
    assert causes == [
        ("spec", "spec is immutable for StoryRun; create a new StoryRun for updated inputs or references")
    ]


async def test_storyrun_cancel_requested_may_be_set(run_admit: RunAdmit, causes_of: CausesOf) -> None:
    old = (await run_admit(storyrun({"user": "a"}))).object
    new = copy.deepcopy(old)
    new["spec"]["cancelRequested"] = True
    await run_admit(new, old=old)
    back = copy.deepcopy(new)
    back["spec"]["cancelRequested"] = False
    causes = await causes_of(back, old=new)
    assert causes[0][0] == "spec"


async def test_storyrun_observed_generation_monotonic(causes_of: CausesOf, run_admit: RunAdmit) -> None:
    old = (await run_admit(storyrun({"user": "a"}))).object
    old["status"] = {"observedGeneration": 3}
    new = copy.deepcopy(old)
    new["status"] = {"observedGeneration": 2}
    causes = await causes_of(new, old=old, subresource="status")
    assert any(f == "status.observedGeneration" for f, _ in causes)


async def test_storyrun_trigger_token_rules(causes_of: CausesOf, run_admit: RunAdmit) -> None:
    inputs = {"user": "a"}
    doc = storyrun(inputs)
    doc["metadata"]["annotations"] = {"storyrun.bubustack.io/trigger-token": "Evt 1"}
    causes = await causes_of(doc)
    text = messages(causes)
    expected = derive_story_run_name("default", "target", "Evt 1")
    assert f"metadata.name must be '{expected}'" in text
    assert "trigger-input-hash annotation is required" in text
    doc["metadata"]["name"] = expected
    doc["metadata"]["annotations"]["storyrun.bubustack.io/trigger-input-hash"] = canonical_input_hash(inputs)
    await run_admit(doc)


# ----------------------------------------------------------------------------- StepRun


def steprun(**spec: Any) -> dict[str, Any]:
    body = {"storyRunRef": {"name": "run-1"}, "stepId": "fetch", **spec}
    return {
        "apiVersion": RUNS,
        "kind": "StepRun",
        "metadata": {"name": "run-1-fetch", "namespace": "default"},
        "spec": body,
    }


async def test_steprun_defaults(run_admit: RunAdmit) -> None:
    result = await run_admit(steprun(engramRef={"name": "worker"}))
    spec = result.object["spec"]
    assert spec["retry"] == {"maxRetries": 3, "delay": "1s", "backoff": "exponential"}
    assert spec["idempotencyKey"] == "ns/default/storyrun/run-1/step/fetch"
    # a policy the defaulter made up is not one the user wrote (retry contract)
    annotations = result.object["metadata"]["annotations"]
    assert annotations["bobrapet.bubustack.io/retry-policy"] == "default"


async def test_steprun_written_retry_is_not_marked_default(run_admit: RunAdmit) -> None:
    result = await run_admit(steprun(engramRef={"name": "worker"}, retry={"maxRetries": 2}))
    assert result.object["spec"]["retry"] == {"maxRetries": 2, "delay": "1s", "backoff": "exponential"}
    assert "bobrapet.bubustack.io/retry-policy" not in (result.object["metadata"].get("annotations") or {})


async def test_steprun_missing_engram_and_denied_function(causes_of: CausesOf) -> None:
    causes = await causes_of(steprun(engramRef={"name": "ghost"}, input={"h": "{{ env('HOME') }}"}))
    text = messages(causes)
    assert "spec.engramRef: Engram 'default/ghost' not found" in text
    assert "spec.input.h: function 'env' is not allowed in templates" in text


async def test_steprun_downstream_targets(causes_of: CausesOf) -> None:
    causes = await causes_of(
        steprun(downstreamTargets=[{"grpc": {"endpoint": "x:1"}, "terminate": {"stopMode": "success"}}])
    )
    assert "exactly one of grpc or terminate" in messages(causes)


async def test_steprun_status_error_must_be_structured(run_admit: RunAdmit, causes_of: CausesOf) -> None:
    old = (await run_admit(steprun())).object
    new = copy.deepcopy(old)
    new["status"] = {"error": {"version": "v2", "type": "oops", "message": ""}}
    causes = await causes_of(new, old=old, subresource="status")
    text = messages(causes)
    assert "status.error.version" in text and "status.error.type" in text and "status.error.message" in text
    new["status"] = {
        "error": {"version": "v1", "type": "timeout", "message": "took too long", "retryable": True}
    }
    await run_admit(new, old=old, subresource="status")


async def test_steprun_status_needs_not_self_and_output_limit(
    run_admit: RunAdmit, causes_of: CausesOf
) -> None:
    old = (await run_admit(steprun())).object
    new = copy.deepcopy(old)
    new["status"] = {"needs": ["run-1-fetch"], "output": {"big": "x" * 5000}}
    causes = await causes_of(new, old=old, subresource="status")
    fields = {f for f, _ in causes}
    assert {"status.needs[0]", "status.output"} <= fields


# ----------------------------------------------------------------------------- StoryTrigger


def trigger(name: str | None = None, **ident: Any) -> dict[str, Any]:
    identity = {"mode": "none", "submissionId": "sub-1", **ident}
    return {
        "apiVersion": RUNS,
        "kind": "StoryTrigger",
        "metadata": {
            "name": name or story_trigger_name("default", "target", identity.get("key") or "sub-1"),
            "namespace": "default",
        },
        "spec": {"storyRef": {"name": "target"}, "inputs": {"user": "a"}, "deliveryIdentity": identity},
    }


async def test_storytrigger_valid(run_admit: RunAdmit) -> None:
    await run_admit(trigger())
    await run_admit(trigger(mode="key", key="k1", inputHash=canonical_input_hash({"user": "a"})))


async def test_storytrigger_rules(causes_of: CausesOf) -> None:
    text = messages(await causes_of(trigger(name="random-name")))
    assert "metadata.name must be the deterministic name 'target-trigger-" in text
    text = messages(await causes_of(trigger(mode="key")))
    assert "key is required when mode is 'key'" in text
    text = messages(
        await causes_of(trigger(mode="none", key="k", inputHash=canonical_input_hash({"user": "a"})))
    )
    assert "key must be empty when mode is 'none'" in text
    text = messages(await causes_of(trigger(mode="token", key="k", inputHash="0" * 64)))
    assert "inputHash does not match the canonical hash" in text


async def test_storytrigger_spec_immutable(run_admit: RunAdmit, causes_of: CausesOf) -> None:
    old = (await run_admit(trigger())).object
    new = copy.deepcopy(old)
    new["spec"]["inputs"] = {"user": "b"}
    causes = await causes_of(new, old=old)
    assert causes[0][0] == "spec"


# ----------------------------------------------------------------------------- EffectClaim


def claim(key: str = "send-mail", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": RUNS,
        "kind": "EffectClaim",
        "metadata": {"name": effect_claim_name("default", "run-1-fetch", key), "namespace": "default"},
        "spec": {"stepRunRef": {"name": "run-1-fetch"}, "effectKey": key, **spec},
    }


async def _with_steprun(run_admit: RunAdmit, lookup: Any) -> None:
    lookup.add((await run_admit(steprun())).object)


async def test_effectclaim_sample_name_rule() -> None:
    assert (
        effect_claim_name("default", "example-step", "deliver-webhook")
        == "example-step-effect-f593b593cad9418d"
    )
    assert (
        story_trigger_name("default", "example-story", "sample-submission")
        == "example-story-trigger-7ae6e94cb44073bc"
    )


async def test_effectclaim_valid(run_admit: RunAdmit, lookup: Any) -> None:
    await _with_steprun(run_admit, lookup)
    await run_admit(
        claim(acquireTime="2025-01-01T00:00:00.000000Z", holderIdentity="pod-a", leaseDurationSeconds=30)
    )


async def test_effectclaim_rules(causes_of: CausesOf, run_admit: RunAdmit, lookup: Any) -> None:
    await _with_steprun(run_admit, lookup)
    text = messages(await causes_of(claim(completionStatus="completed")))
    assert "completionStatus completed requires completedAt" in text
    text = messages(await causes_of(claim(completionStatus="abandoned")))
    assert "completionStatus abandoned requires completedAt" in text
    text = messages(await causes_of(claim(completedAt="2025-01-01T00:00:00Z")))
    assert "completedAt requires completionStatus" in text
    text = messages(await causes_of(claim(renewTime="2025-01-01T00:00:00Z")))
    assert "renewTime requires acquireTime" in text
    text = messages(
        await causes_of(claim(acquireTime="2025-01-02T00:00:00Z", renewTime="2025-01-01T00:00:00Z"))
    )
    assert "renewTime must not be before acquireTime" in text
    bad_name = claim()
    bad_name["metadata"]["name"] = "whatever"
    assert "metadata.name must be the deterministic name" in messages(await causes_of(bad_name))
    cross = claim()
    cross["spec"]["stepRunRef"]["namespace"] = "other"
    causes = await causes_of(cross, config=AdmissionConfig(cross_namespace_policy="allow"))
    assert "cross-namespace StepRunRef is not allowed for EffectClaim" in messages(causes)


async def test_effectclaim_missing_steprun(causes_of: CausesOf) -> None:
    assert "StepRun 'default/run-1-fetch' not found" in messages(await causes_of(claim()))


async def test_effectclaim_update_rules(causes_of: CausesOf, run_admit: RunAdmit, lookup: Any) -> None:
    await _with_steprun(run_admit, lookup)
    old = (
        await run_admit(
            claim(
                acquireTime="2025-01-01T00:00:00Z",
                holderIdentity="pod-a",
                completionStatus="completed",
                completedAt="2025-01-01T00:01:00Z",
            )
        )
    ).object
    new = copy.deepcopy(old)
    new["spec"]["completionStatus"] = "released"
    new["spec"]["holderIdentity"] = "pod-b"
    new["spec"]["completedAt"] = "2025-01-01T00:00:30Z"
    text = messages(await causes_of(new, old=old))
    assert "a completed claim cannot change its completionStatus" in text
    assert "holderIdentity is frozen once the claim is completed" in text
    assert "completedAt cannot move backwards" in text
    new = copy.deepcopy(old)
    new["spec"]["effectKey"] = "other"
    assert "effectKey is immutable" in messages(await causes_of(new, old=old))


def test_long_default_idempotency_key_is_hashed() -> None:
    from bobrapet.api.admission.identity import step_run_idempotency_key

    key = step_run_idempotency_key("default", "r" * 250, "fetch")
    assert key.startswith("sha256:") and len(key) == 7 + 64
    assert step_run_idempotency_key("ns1", "run", "a") == "ns/ns1/storyrun/run/step/a"


async def test_steprun_metadata_update_after_engram_deleted(run_admit: RunAdmit) -> None:
    """Removing a finalizer must not be blocked because a referenced Engram is gone."""
    catalog = MemoryLookup([story_doc("target", steps=[{"name": "a", "type": "condition"}])])
    old = (await run_admit(steprun(engramRef={"name": "worker"}))).object
    old["metadata"]["finalizers"] = ["bubustack.io/cleanup"]
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = []
    new["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    await admit(new, old, catalog)
    changed = copy.deepcopy(new)
    changed["spec"]["engramRef"] = {"name": "ghost"}
    with pytest.raises(Invalid, match="Engram 'default/ghost' not found"):
        await admit(changed, old, catalog)


async def test_effectclaim_released_claim_can_be_reacquired(
    causes_of: CausesOf, run_admit: RunAdmit, lookup: Any
) -> None:
    """DESIGN: release works — a released claim is taken over by clearing its completion."""
    await _with_steprun(run_admit, lookup)
    held = (
        await run_admit(
            claim(
                acquireTime="2025-01-01T00:00:00Z",
                renewTime="2025-01-01T00:00:10Z",
                holderIdentity="pod-a",
                leaseDurationSeconds=600,
            )
        )
    ).object
    released = copy.deepcopy(held)
    for k in ("holderIdentity", "acquireTime", "renewTime"):
        released["spec"].pop(k)
    released["spec"].update(completionStatus="released")  # no completedAt: the SDK's release
    released = (await run_admit(released, old=held)).object
    taken = copy.deepcopy(released)
    taken["spec"].pop("completionStatus")
    taken["spec"].update(
        holderIdentity="pod-b",
        acquireTime="2025-01-01T00:05:00Z",
        renewTime="2025-01-01T00:05:00Z",
        leaseTransitions=1,
    )
    taken = (await run_admit(taken, old=released)).object
    done = copy.deepcopy(taken)
    done["spec"].update(completionStatus="completed", completedAt="2025-01-01T00:06:00Z")
    await run_admit(done, old=taken)
    # a release may also carry completedAt; clearing it alone is rejected, as is clearing
    # the completion of a completed claim
    stamped = copy.deepcopy(held)
    for k in ("holderIdentity", "acquireTime", "renewTime"):
        stamped["spec"].pop(k)
    stamped["spec"].update(completionStatus="released", completedAt="2025-01-01T00:00:20Z")
    stamped = (await run_admit(stamped, old=held)).object
    half = copy.deepcopy(stamped)
    half["spec"].pop("completedAt")
    assert "completedAt cannot be cleared" in messages(await causes_of(half, old=stamped))
    undo = copy.deepcopy(done)
    for k in ("completionStatus", "completedAt"):
        undo["spec"].pop(k)
    assert "completedAt cannot be cleared" in messages(await causes_of(undo, old=done))


def test_canonical_json_writes_floats_like_go() -> None:
    """Go's encoding/json: fixed notation for 1e-6 <= |x| < 1e21, short exponents otherwise."""
    from bobrapet.api.admission.identity import canonical_json

    value = {"f": [1e-7, 1.5e-5, 0.000001, 0.1, 1e21, 1.5e300, 123.456, -2.5e-9, 2.0]}
    assert canonical_json(value) == ('{"f":[1e-7,0.000015,0.000001,0.1,1e+21,1.5e+300,123.456,-2.5e-9,2]}')
    assert canonical_input_hash({"ratio": 1.5e-5}) == canonical_input_hash({"ratio": 0.000015})
