"""Impulse controller end to end over the SQLite store."""

from __future__ import annotations

from tests.controllers.conftest import Settle, settled_after_debounce
from tests.controllers.ctrl_objects import impulse, impulse_template, ready, step, story, story_run

from bobrapet.api.kinds import IMPULSE, IMPULSE_TEMPLATE, STORY, STORY_RUN
from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.manager import Manager
from bobrapet.store.sqlite import SqliteClient


async def test_valid_impulse_is_pending_until_its_workload_is_ready(
    client: SqliteClient, settle: Settle
) -> None:
    await client.create(impulse_template("itpl"))
    await client.create(story("s", [step("a", type="sleep")]))
    await client.create(impulse("i", "s"))
    await settle()
    got = await client.get(IMPULSE, "i", "default")
    assert got["status"]["phase"] == "Pending"
    cond = ready(got)
    assert (cond["status"], cond["reason"]) == ("False", "Reconciling")
    assert got["status"]["triggersReceived"] == 0
    assert got["status"]["observedGeneration"] == 1

    got["status"]["readyReplicas"] = 1
    got["status"]["replicas"] = 1
    await client.update_status(got)
    await settle()
    got = await client.get(IMPULSE, "i", "default")
    assert got["status"]["phase"] == "Running"
    assert (ready(got)["status"], ready(got)["reason"]) == ("True", "DeploymentReady")


async def test_missing_references(client: SqliteClient, running: Manager) -> None:
    await client.create(impulse("i", "s", template="ghost"))
    assert await running.wait_idle(timeout=20)
    got = await client.get(IMPULSE, "i", "default")
    cond = ready(got)
    assert cond["status"] == "False"
    assert cond["reason"] == "ValidationFailed"
    assert cond["message"] == (
        'spec.templateRef.name: ImpulseTemplate "ghost" not found; create it or fix the reference; '
        'spec.storyRef: Story "s" not found in namespace "default"; create it or fix the reference'
    )

    await client.create(impulse_template("ghost"))
    assert await running.wait_idle(timeout=20)
    cond = ready(await client.get(IMPULSE, "i", "default"))
    assert (cond["reason"], cond["message"]) == (
        "StoryNotFound",
        'spec.storyRef: Story "s" not found in namespace "default"; create it or fix the reference',
    )

    await client.create(story("s", [step("a", type="sleep")]))
    assert await running.wait_idle(timeout=20)
    assert ready(await client.get(IMPULSE, "i", "default"))["reason"] == "Reconciling"

    await client.delete(IMPULSE_TEMPLATE, "ghost")
    assert await running.wait_idle(timeout=20)
    assert ready(await client.get(IMPULSE, "i", "default"))["reason"] == "TemplateNotFound"


async def test_counters_from_story_runs_keep_sdk_fields(
    client: SqliteClient, running: Manager, clock: FakeClock
) -> None:
    await client.create(impulse_template("itpl"))
    await client.create(story("s", [step("a", type="sleep")]))
    await client.create(impulse("i", "s"))
    assert await running.wait_idle(timeout=20)
    sdk = await client.get(IMPULSE, "i", "default")
    sdk["status"]["throttledTriggers"] = 7
    await client.update_status(sdk)

    tokens = {
        "r1": ["impulse", "impulse-success"],
        "r2": ["impulse", "impulse-failed"],
        "r3": ["impulse"],
    }
    for name, toks in tokens.items():
        await client.create(story_run(name, "s", impulse_name="i"))
        run = await client.get(STORY_RUN, name, "default")
        run["status"] = {"triggerTokens": toks}
        if "impulse-success" in toks:
            run["status"]["finishedAt"] = "2026-01-01T00:05:00Z"
        await client.update_status(run)
    await client.create(story_run("unrelated", "s"))
    await settled_after_debounce(running, clock)
    got = await client.get(IMPULSE, "i", "default")
    status = got["status"]
    assert (status["triggersReceived"], status["storiesLaunched"], status["failedTriggers"]) == (3, 1, 1)
    assert status["throttledTriggers"] == 7, "SDK-owned fields are kept"
    assert status["lastSuccess"] == "2026-01-01T00:05:00Z"
    assert (
        status["lastTrigger"]
        == (await client.get(STORY_RUN, "r3", "default"))["metadata"]["creationTimestamp"]
    )
    assert (await client.get(STORY, "s", "default"))["status"]["usageCount"] == 1
