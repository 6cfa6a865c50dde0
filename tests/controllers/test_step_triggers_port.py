"""The engine's triggers port (StepRunTriggers) over a real SQLite store with admission, the
StoryTrigger controller deciding in the background and the home's file storage."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.controllers.ctrl_objects import engram, engram_template, step, step_run, story

from bobrapet.api.admission import AdmissionConfig
from bobrapet.api.kinds import STEP_RUN, STORY_RUN, STORY_TRIGGER
from bobrapet.api.runmeta import TRIGGERED_BY_STEPRUN, TRIGGERED_BY_STORYRUN
from bobrapet.controllers import storytrigger
from bobrapet.controllers.step_triggers import StepRunTriggers, derived_submission_id
from bobrapet.execution.triggers import UNAVAILABLE, StepTriggerError, TriggerCall, answer
from bobrapet.host.embedded import ControlPlane
from bobrapet.runtime.clock import FakeClock, RealClock
from bobrapet.runtime.manager import Manager
from bobrapet.sdk.triggers import FAILED, NOT_FOUND, PENDING, REJECTED
from bobrapet.store.client import Resource
from bobrapet.store.sqlite import SqliteClient

INLINE_LIMIT = 300
SLEEP = [step("a", type="sleep", with_={"duration": "1s"})]


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    config = AdmissionConfig(storyrun_max_inline_inputs=INLINE_LIMIT, embedded=True)
    async with ControlPlane(tmp_path / "home", config) as control_plane:
        client = control_plane.client
        await client.create(story("child", SLEEP))
        await client.create(engram_template("tpl"))
        await client.create(engram("e"))
        yield control_plane


@pytest.fixture
async def deciding(plane: ControlPlane) -> AsyncIterator[None]:
    """The StoryTrigger controller runs meanwhile (as in an engine)."""
    manager = Manager(plane.client, settle=0.01)
    storytrigger.setup(manager, plane.run_inputs_offload())
    async with manager:
        yield


@pytest.fixture
async def deciding_without_storage(plane: ControlPlane) -> AsyncIterator[None]:
    """The StoryTrigger controller runs meanwhile, with no storage to offload to."""
    manager = Manager(plane.client, settle=0.01)
    storytrigger.setup(manager, None)
    async with manager:
        yield


@pytest.fixture
async def stored(plane: ControlPlane) -> Resource:
    return await plane.client.create(step_run("run-call", "e"))


def port(plane: ControlPlane, stored: Resource, *, offload: bool = True) -> StepRunTriggers:
    return StepRunTriggers(plane.client, RealClock(), stored, plane.submission_offload() if offload else None)


async def _run(client: SqliteClient, name: str) -> Resource:
    return await client.get(STORY_RUN, name, "default")


@pytest.mark.usefixtures("deciding")
async def test_an_unkeyed_call_is_idempotent_per_steprun_and_call(
    plane: ControlPlane, stored: Resource
) -> None:
    triggers = port(plane, stored)
    first = await triggers.trigger(TriggerCall("child", {"n": 1}))
    assert (first.decision, first.namespace) == ("Created", "default")
    assert first.story_run is not None and first.story_run.startswith("child-run-call-")
    again = await port(plane, stored).trigger(TriggerCall("child", {"n": 1}))  # a retry: a new attempt
    assert (again.trigger, again.story_run, again.decision) == (first.trigger, first.story_run, "Created")
    second_call = await triggers.trigger(TriggerCall("child", {"n": 1}, call=2))
    other_inputs = await triggers.trigger(TriggerCall("child", {"n": 2}))
    assert len({first.story_run, second_call.story_run, other_inputs.story_run}) == 3

    run = await _run(plane.client, first.story_run)
    annotations = run["metadata"]["annotations"]
    assert (annotations[TRIGGERED_BY_STEPRUN], annotations[TRIGGERED_BY_STORYRUN]) == ("run-call", "run")
    assert "ownerReferences" not in run["metadata"]  # not a child of the caller
    trigger = await plane.client.get(STORY_TRIGGER, first.trigger, "default")
    identity = trigger["spec"]["deliveryIdentity"]
    assert identity["mode"] == "none"
    uid = stored["metadata"]["uid"]
    assert identity["submissionId"] == derived_submission_id("run-call", uid, "default", "child", {"n": 1}, 1)

    # the same StepRun created again (a redrive, a new run with the same name): new runs
    await plane.client.delete(STEP_RUN, "run-call", "default")
    recreated = await plane.client.create(step_run("run-call", "e"))
    fresh = await port(plane, recreated).trigger(TriggerCall("child", {"n": 1}))
    assert fresh.story_run not in (first.story_run, second_call.story_run, other_inputs.story_run)


@pytest.mark.usefixtures("deciding")
async def test_a_key_is_the_token_and_refuses_other_inputs(plane: ControlPlane, stored: Resource) -> None:
    triggers = port(plane, stored)
    first = await triggers.trigger(TriggerCall("child", {"n": 1}, key="order-1"))
    assert first.story_run is not None and first.story_run.startswith("child-order-1-")
    run = await _run(plane.client, first.story_run)
    assert run["metadata"]["annotations"]["storyrun.bubustack.io/trigger-token"] == "order-1"
    with pytest.raises(StepTriggerError, match=r"spec\.inputs differ") as err:
        await triggers.trigger(TriggerCall("child", {"n": 2}, key="order-1"))
    assert (err.value.kind, err.value.terminal) == (FAILED, True)
    token = await triggers.trigger(TriggerCall("child", {"n": 1}, env={"BUBU_TRIGGER_TOKEN": "order-1"}))
    assert token.story_run == first.story_run  # the environment's token works as the key


@pytest.mark.usefixtures("deciding_without_storage")
async def test_unknown_story_and_rejections(plane: ControlPlane, stored: Resource) -> None:
    with pytest.raises(
        StepTriggerError, match='story "nope" not found in namespace "default"; stories there: child'
    ) as err:
        await port(plane, stored).trigger(TriggerCall("nope", {}))
    assert (err.value.kind, err.value.terminal) == (NOT_FOUND, True)

    big = {"doc": "x" * 1000}
    with pytest.raises(StepTriggerError, match=r"rejected \(InputTooLarge\)") as err:
        await port(plane, stored, offload=False).trigger(TriggerCall("child", big))
    assert (err.value.kind, err.value.reason, err.value.terminal) == (REJECTED, "InputTooLarge", True)

    with pytest.raises(StepTriggerError, match="BUBU_TRIGGER_DEDUPE_MODE must be one of") as err:
        await port(plane, stored).trigger(TriggerCall("child", {}, env={"BUBU_TRIGGER_DEDUPE_MODE": "x"}))
    assert err.value.kind == FAILED

    await plane.client.create(story("child", SLEEP, "elsewhere"))
    with pytest.raises(StepTriggerError, match=r"was not stored: .*cross-namespace") as err:
        await port(plane, stored).trigger(TriggerCall("child", {}, namespace="elsewhere"))
    assert (err.value.kind, err.value.terminal) == (FAILED, True)


@pytest.mark.usefixtures("deciding")
async def test_large_inputs_are_offloaded_before_the_trigger_is_stored(
    plane: ControlPlane, stored: Resource
) -> None:
    big = {"doc": "x" * 5000, "small": 1}
    first = await port(plane, stored).trigger(TriggerCall("child", big, key="big-1"))
    trigger = await plane.client.get(STORY_TRIGGER, first.trigger, "default")
    inputs = trigger["spec"]["inputs"]
    assert first.story_run is not None
    ref = inputs["doc"]["$bubuStorageRef"]
    assert ref.startswith(f"inputs/default/{first.story_run}-") and inputs["small"] == 1
    blob = json.loads((plane.home / "storage" / ref).read_text())
    assert blob["data"] == "x" * 5000
    run = await _run(plane.client, first.story_run)
    assert run["spec"]["inputs"] == inputs  # the run holds the references; hashes agree
    again = await port(plane, stored).trigger(TriggerCall("child", big, key="big-1"))
    assert again.trigger == first.trigger  # the same references: the same trigger


async def test_no_decision_in_time_is_retryable_and_not_waiting_returns_at_once(
    plane: ControlPlane, stored: Resource
) -> None:
    triggers = port(plane, stored)  # no StoryTrigger controller runs
    submitted = await triggers.trigger(TriggerCall("child", {}, wait=False))
    assert (submitted.decision, submitted.story_run) == (None, None)
    with pytest.raises(StepTriggerError, match=r"is still pending after 0\.1s") as err:
        await triggers.trigger(TriggerCall("child", {}, env={"BUBU_K8S_OPERATION_TIMEOUT": "100ms"}))
    assert (err.value.kind, err.value.terminal) == (PENDING, False)


async def test_answer_checks_the_call_and_replies_once() -> None:
    assert await answer(None, {"story": "child"}) == dict(UNAVAILABLE)

    class Boom:
        async def trigger(self, call: TriggerCall) -> Any:
            raise RuntimeError("store down")

    bad = await answer(Boom(), {"story": "child", "call": 0})
    assert bad == {"error": "call must be an integer >= 1, got 0", "kind": FAILED, "terminal": True}
    boom = await answer(Boom(), {"story": "child", "inputs": {}, "env": {"PATH": "/bin"}})
    assert boom == {"error": "engine error while triggering story 'child': store down", "kind": FAILED}


async def test_the_throttle_of_the_environment_paces_the_calls_of_an_attempt(
    plane: ControlPlane, stored: Resource
) -> None:
    clock = FakeClock()
    triggers = StepRunTriggers(plane.client, clock, stored)
    env = {"BUBU_TRIGGER_THROTTLE_RATE_PER_SECOND": "1", "BUBU_TRIGGER_THROTTLE_BURST": "1"}
    first = await triggers.trigger(TriggerCall("child", {"n": 1}, wait=False, env=env))
    second = asyncio.ensure_future(triggers.trigger(TriggerCall("child", {"n": 2}, wait=False, env=env)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not second.done()  # waits for its token
    clock.advance(1.0)
    assert (await second).trigger != first.trigger
    unthrottled = await triggers.trigger(TriggerCall("child", {"n": 3}, wait=False))
    assert unthrottled.trigger not in (first.trigger, (await second).trigger)
