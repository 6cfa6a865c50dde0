"""StoryTrigger controller: every decision of reference §5.3, on a real SQLite store with admission.

Reconciles are called directly (one reconcile = one decision) so each test sees exactly the
writes of one pass; the last test runs the controllers as a process does.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.controllers.ctrl_objects import impulse, impulse_template, step, story

from bobrapet.api.admission import AdmissionConfig
from bobrapet.api.admission.identity import canonical_input_hash, derive_story_run_name
from bobrapet.api.errors import Invalid
from bobrapet.api.kinds import IMPULSE, STORY, STORY_RUN, STORY_TRIGGER
from bobrapet.api.runmeta import TRIGGER_INPUT_HASH, TRIGGER_REQUEST_NAME, TRIGGER_REQUEST_UID, TRIGGER_TOKEN
from bobrapet.controllers.storytrigger import StoryTriggerReconciler, desired_story_run
from bobrapet.host.embedded import ControlPlane
from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request
from bobrapet.store.client import Resource
from bobrapet.store.sqlite import SqliteClient
from bobrapet.triggers import ImpulseRef, OffloadInputs, TriggerRequest, build_trigger, submit

INLINE_LIMIT = 200
SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "note": {"type": "string"}}}


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    config = AdmissionConfig(storyrun_max_inline_inputs=INLINE_LIMIT, embedded=True)
    async with ControlPlane(tmp_path / "home", config) as control_plane:
        await control_plane.client.create(
            story("orders", [step("a", type="sleep")], version="1", inputsSchema=SCHEMA)
        )
        yield control_plane


@pytest.fixture
def client(plane: ControlPlane) -> SqliteClient:
    return plane.client


def reconciler(client: Any, offload: OffloadInputs | None = None) -> StoryTriggerReconciler:
    return StoryTriggerReconciler(Manager(client, clock=FakeClock()), offload)


async def trigger(client: SqliteClient, **fields: Any) -> Resource:
    request = TriggerRequest(**{"story": "orders", "inputs": {"id": 1}, **fields})
    return await submit(client, await build_trigger(client, request))


async def decide(client: Any, created: Resource, offload: OffloadInputs | None = None) -> Resource:
    meta = created["metadata"]
    await reconciler(client, offload)(Request(meta["namespace"], meta["name"]))
    return await client.get(STORY_TRIGGER, meta["name"], meta["namespace"])


def conditions_of(obj: Resource) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in obj["status"]["conditions"]}


def run_name(obj: Resource) -> str:
    return str(obj["status"]["storyRunRef"]["name"])


async def test_created_run_carries_the_request_and_its_provenance(client: SqliteClient) -> None:
    created = await trigger(client, mode="key", key_template="{{ inputs.id }}", impulse=ImpulseRef("hook"))
    decided = await decide(client, created)
    status = decided["status"]
    key = created["spec"]["deliveryIdentity"]["key"]
    name = derive_story_run_name("default", "orders", key)
    assert (status["decision"], status["reason"]) == ("Created", "StoryRunCreated")
    assert status["message"] == f'created StoryRun "default/{name}"'
    assert status["observedGeneration"] == 1 and status["acceptedAt"] and status["completedAt"]
    assert conditions_of(decided) == {
        "Ready": ("True", "StoryRunCreated"),
        "Progressing": ("False", "StoryRunCreated"),
        "Degraded": ("False", "StoryRunCreated"),
    }
    run = await client.get(STORY_RUN, name, "default")
    assert status["storyRunRef"] == {"name": name, "namespace": "default", "uid": run["metadata"]["uid"]}
    assert run["spec"] == {
        "storyRef": {"name": "orders", "version": "1"},  # pinned when submitted
        "impulseRef": {"name": "hook"},  # so the Impulse counts the run
        "inputs": {"id": 1},
    }
    assert run["metadata"]["annotations"] == {
        TRIGGER_REQUEST_NAME: created["metadata"]["name"],
        TRIGGER_REQUEST_UID: created["metadata"]["uid"],
        TRIGGER_TOKEN: key,
        TRIGGER_INPUT_HASH: canonical_input_hash({"id": 1}),
    }
    # decided: a further reconcile writes nothing
    again = await decide(client, created)
    assert again["metadata"]["resourceVersion"] == decided["metadata"]["resourceVersion"]


async def test_unkeyed_trigger_run_has_no_token_annotations(client: SqliteClient) -> None:
    created = await trigger(client)
    decided = await decide(client, created)
    run = await client.get(STORY_RUN, run_name(decided), "default")
    submission = created["spec"]["deliveryIdentity"]["submissionId"]
    assert run_name(decided) == derive_story_run_name("default", "orders", submission)
    assert set(run["metadata"]["annotations"]) == {TRIGGER_REQUEST_NAME, TRIGGER_REQUEST_UID}


class CrashOnStatus:
    """A client that dies (once) when writing a status: a crash after the StoryRun was created."""

    def __init__(self, inner: SqliteClient) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def update_status(self, obj: Resource) -> Resource:
        raise RuntimeError("process killed")


async def test_a_run_created_before_a_crash_is_recovered(client: SqliteClient) -> None:
    created = await trigger(client, mode="key", key_template="{{ inputs.id }}")
    with pytest.raises(RuntimeError, match="process killed"):
        await decide(CrashOnStatus(client), created)
    undecided = await client.get(STORY_TRIGGER, created["metadata"]["name"], "default")
    assert "decision" not in (undecided.get("status") or {})
    assert len(await client.list(STORY_RUN, "default")) == 1

    decided = await decide(client, created)
    name = derive_story_run_name("default", "orders", created["spec"]["deliveryIdentity"]["key"])
    assert (decided["status"]["decision"], decided["status"]["reason"]) == ("Created", "StoryRunCreated")
    assert decided["status"]["message"] == f'recovered previously created StoryRun "default/{name}"'
    assert len(await client.list(STORY_RUN, "default")) == 1


async def preexisting_run(client: SqliteClient, created: Resource, **changes: Any) -> Resource:
    """The StoryRun the trigger asks for, made by someone else (other provenance), with changes."""
    run = desired_story_run(created)
    run["metadata"]["annotations"][TRIGGER_REQUEST_UID] = "someone-else"
    for field, value in changes.items():
        if value is None:
            run["spec"].pop(field, None)
        else:
            run["spec"][field] = value
    if "inputs" in changes and TRIGGER_INPUT_HASH in run["metadata"]["annotations"]:
        run["metadata"]["annotations"][TRIGGER_INPUT_HASH] = canonical_input_hash(changes["inputs"])
    return await client.create(run)


async def test_a_matching_run_made_by_someone_else_is_reused(client: SqliteClient) -> None:
    created = await trigger(client, mode="key", key_template="{{ inputs.id }}")
    existing = await preexisting_run(client, created)
    decided = await decide(client, created)
    name = existing["metadata"]["name"]
    assert (decided["status"]["decision"], decided["status"]["reason"]) == ("Reused", "StoryRunReused")
    assert decided["status"]["message"] == f'reused existing StoryRun "default/{name}"'
    assert decided["status"]["storyRunRef"]["uid"] == existing["metadata"]["uid"]
    assert conditions_of(decided)["Ready"] == ("True", "StoryRunReused")


@pytest.mark.parametrize(
    ("changes", "differs"),
    [
        ({"inputs": {"id": 2}}, "spec.inputs"),
        ({"impulseRef": {"name": "other-hook"}}, "spec.impulseRef"),
        ({"storyRef": {"name": "orders"}}, "spec.storyRef"),  # the trigger pinned version 1
    ],
)
async def test_a_different_existing_run_is_a_conflict(
    client: SqliteClient, changes: dict[str, Any], differs: str
) -> None:
    created = await trigger(client, mode="key", key_template="{{ inputs.id }}")
    existing = await preexisting_run(client, created, **changes)
    decided = await decide(client, created)
    status = decided["status"]
    assert (status["decision"], status["reason"]) == ("Rejected", "StoryRunConflict")
    assert status["message"] == (
        f'existing StoryRun "default/{existing["metadata"]["name"]}" does not match StoryTrigger '
        f"storyRef and inputs ({differs} differ)"
    )
    assert "storyRunRef" not in status
    assert conditions_of(decided) == {
        "Ready": ("False", "StoryRunConflict"),
        "Progressing": ("False", "StoryRunConflict"),
        "Degraded": ("True", "StoryRunConflict"),
    }


async def test_story_missing_or_of_another_version(client: SqliteClient) -> None:
    pinned = await trigger(client)  # pins version 1
    current = await client.get(STORY, "orders", "default")
    current["spec"]["version"] = "2"
    await client.update(current)
    decided = await decide(client, pinned)
    assert (decided["status"]["reason"], decided["status"]["message"]) == (
        "StoryVersionMismatch",
        'referenced Story "default/orders" has version "2", expected "1"',
    )

    orphan = await trigger(client, inputs={"id": 3})
    await client.delete(STORY, "orders", "default")
    decided = await decide(client, orphan)
    assert decided["status"]["decision"] == "Rejected"
    assert (decided["status"]["reason"], decided["status"]["message"]) == (
        "StoryNotFound",
        'referenced Story "default/orders" was not found',
    )
    assert await client.list(STORY_RUN, "default") == []


async def unadmitted(client: SqliteClient, obj: Resource) -> Resource:
    """Store ``obj`` without admission (a trigger stored before today's rules, or by a
    cluster without the webhook)."""
    hook, client.admission = client.admission, None
    try:
        return await client.create(obj)
    finally:
        client.admission = hook


async def test_a_stored_trigger_is_checked_again(client: SqliteClient) -> None:
    built = await build_trigger(client, TriggerRequest("orders", inputs={"id": 1}, pin_version=False))
    wrong_hash = copy.deepcopy(built)
    wrong_hash["spec"]["deliveryIdentity"]["inputHash"] = "0" * 64  # admitted: no key, no hash check
    decided = await decide(client, await submit(client, wrong_hash))
    assert decided["status"]["reason"] == "InputHashMismatch"
    assert decided["status"]["message"].startswith(
        "spec.deliveryIdentity.inputHash does not match the canonical hash of spec.inputs"
    )

    renamed = await build_trigger(client, TriggerRequest("orders", inputs={"id": 2}))
    renamed["metadata"]["name"] = "orders-by-hand"
    decided = await decide(client, await unadmitted(client, renamed))
    assert decided["status"]["reason"] == "ValidationFailed"
    assert (
        "metadata.name: metadata.name must be the deterministic name 'orders-trigger-"
        in (decided["status"]["message"])
    )
    assert await client.list(STORY_RUN, "default") == []


async def test_storyrun_admission_refusal_rejects_the_trigger(client: SqliteClient) -> None:
    decided = await decide(client, await trigger(client, inputs={"id": "not a number"}))
    status = decided["status"]
    assert (status["decision"], status["reason"]) == ("Rejected", "ValidationFailed")
    assert status["message"].startswith("StoryRun admission rejected the request: StoryRun ")
    assert "spec.inputs.id: does not match the Story inputsSchema" in status["message"]


async def test_oversized_inputs_without_storage_are_rejected_with_the_fix(client: SqliteClient) -> None:
    decided = await decide(client, await trigger(client, inputs={"id": 1, "note": "x" * 500}))
    status = decided["status"]
    assert (status["decision"], status["reason"]) == ("Rejected", "InputTooLarge")
    assert "are too large to store inline and no storage is configured to offload them" in status["message"]
    assert f"bytes > {INLINE_LIMIT})" in status["message"]
    assert "raise storyrun.max-inline-inputs-size" in status["message"]
    assert "`bobrapet config set storyrun.max-inline-inputs-size BYTES`" in status["message"]


async def test_oversized_inputs_are_offloaded_when_storage_is_given(client: SqliteClient) -> None:
    calls: list[tuple[str, str, dict[str, Any]]] = []

    async def offload(namespace: str, story_run_name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        calls.append((namespace, story_run_name, inputs))
        return {"id": inputs["id"], "note": {"$bubuStorageRef": f"inputs/{story_run_name}/note.json"}}

    created = await trigger(client, inputs={"id": 1, "note": "x" * 500})
    decided = await decide(client, created, offload)
    assert decided["status"]["decision"] == "Created"
    name = run_name(decided)
    assert calls == [("default", name, {"id": 1, "note": "x" * 500})]
    run = await client.get(STORY_RUN, name, "default")
    assert run["spec"]["inputs"] == {"id": 1, "note": {"$bubuStorageRef": f"inputs/{name}/note.json"}}


async def test_a_stale_decision_is_made_again(client: SqliteClient) -> None:
    created = await trigger(client)
    stale = {**created, "status": {"decision": "Rejected", "reason": "Old", "observedGeneration": 0}}
    await client.update_status(stale)
    decided = await decide(client, created)
    assert decided["status"]["decision"] == "Created"
    assert decided["status"]["observedGeneration"] == 1


async def test_runs_of_a_trigger_count_for_its_impulse(plane: ControlPlane, client: SqliteClient) -> None:
    await client.create(impulse_template("itpl"))
    await client.create(impulse("hook", "orders"))
    created = await trigger(client, impulse=ImpulseRef("hook"))
    await plane.settle()  # the controllers of any process that settles: the run is created
    decided = await client.get(STORY_TRIGGER, created["metadata"]["name"], "default")
    run = await client.get(STORY_RUN, run_name(decided), "default")
    # an engine marks the run when it starts it (engine.finalize); then the Impulse counts it
    run["status"] = {"phase": "Running", "triggerTokens": ["story", "impulse"]}
    await client.update_status(run)
    await plane.settle()
    assert (await client.get(IMPULSE, "hook", "default"))["status"]["triggersReceived"] == 1


async def test_keyed_inline_inputs_offloaded_by_the_controller_pass_the_hash_check(
    plane: ControlPlane, client: SqliteClient
) -> None:
    """Admission hashes the hydrated inputs of such a run (reference: it hydrates first), so
    the run carries the trigger's input hash although its inputs are references."""
    created = await trigger(client, inputs={"id": 1, "note": "x" * 500}, mode="token", token="order-9")
    decided = await decide(client, created, plane.run_inputs_offload())
    assert (decided["status"]["decision"], decided["status"]["reason"]) == ("Created", "StoryRunCreated")
    name = run_name(decided)
    run = await client.get(STORY_RUN, name, "default")
    ref = run["spec"]["inputs"]["note"]["$bubuStorageRef"]
    assert ref.startswith(f"inputs/{name}/") and run["spec"]["inputs"]["id"] == 1
    annotations = run["metadata"]["annotations"]
    assert annotations[TRIGGER_INPUT_HASH] == created["spec"]["deliveryIdentity"]["inputHash"]
    # a re-decision compares the request (the annotation), not the references: recovered
    stale = {**decided, "status": {**decided["status"], "observedGeneration": 0}}
    await client.update_status(stale)
    again = await decide(client, created, plane.run_inputs_offload())
    assert (again["status"]["decision"], again["status"]["message"]) == (
        "Created",
        f'recovered previously created StoryRun "default/{name}"',
    )


async def test_an_unkeyed_run_offloaded_by_the_controller_is_recovered(
    plane: ControlPlane, client: SqliteClient
) -> None:
    created = await trigger(client, inputs={"id": 1, "note": "y" * 500})
    decided = await decide(client, created, plane.run_inputs_offload())
    run = await client.get(STORY_RUN, run_name(decided), "default")
    assert run["metadata"]["annotations"][TRIGGER_INPUT_HASH] == canonical_input_hash(
        created["spec"]["inputs"]
    )
    await client.update_status({**decided, "status": {**decided["status"], "observedGeneration": 0}})
    again = await decide(client, created, plane.run_inputs_offload())
    assert again["status"]["message"].startswith("recovered previously created StoryRun")


async def test_submitted_offloaded_inputs_are_hashed_as_stored(
    plane: ControlPlane, client: SqliteClient
) -> None:
    request = TriggerRequest("orders", inputs={"id": 2, "note": "z" * 500}, mode="token", token="t-2")
    offload = plane.submission_offload()
    built = await build_trigger(client, request, offload_inputs=offload)
    assert built == await build_trigger(client, request, offload_inputs=offload)  # the same references
    run = derive_story_run_name("default", "orders", "t-2")
    ref = built["spec"]["inputs"]["note"]["$bubuStorageRef"]
    digest = canonical_input_hash({"id": 2, "note": "z" * 500})[:12]
    assert ref == f"inputs/default/{run}-{digest}/note.json"
    assert built["spec"]["deliveryIdentity"]["inputHash"] == canonical_input_hash(built["spec"]["inputs"])
    decided = await decide(client, await submit(client, built), plane.run_inputs_offload())
    assert decided["status"]["decision"] == "Created"
    stored_run = await client.get(STORY_RUN, run, "default")
    assert stored_run["spec"]["inputs"] == built["spec"]["inputs"]


def keyed_run(name: str, inputs: dict[str, Any], want: str) -> Resource:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StoryRun",
        "metadata": {
            "name": derive_story_run_name("default", "orders", name),
            "namespace": "default",
            "annotations": {TRIGGER_TOKEN: name, TRIGGER_INPUT_HASH: want},
        },
        "spec": {"storyRef": {"name": "orders"}, "inputs": inputs},
    }


async def test_admission_refuses_offloaded_inputs_of_another_hash(
    plane: ControlPlane, client: SqliteClient
) -> None:
    offload = plane.run_inputs_offload()
    assert offload is not None
    original = {"id": 1, "note": "a" * 500}
    refs = await offload("default", "forged", original)
    other = canonical_input_hash({"id": 1, "note": "b" * 500})
    with pytest.raises(Invalid, match="neither as stored nor with its offloaded values read back"):
        await client.create(keyed_run("k-a", refs, other))
    missing = {"id": 1, "note": {"$bubuStorageRef": "inputs/nowhere/note.json"}}
    with pytest.raises(Invalid, match=r"cannot read the offloaded spec\.inputs to check trigger-input-hash"):
        await client.create(keyed_run("k-b", missing, canonical_input_hash(original)))
    created = await client.create(keyed_run("k-c", refs, canonical_input_hash(original)))
    assert created["spec"]["inputs"] == refs
