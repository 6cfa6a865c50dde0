"""Engram controller end to end over the SQLite store."""

from __future__ import annotations

import asyncio

from tests.controllers.conftest import Settle
from tests.controllers.ctrl_objects import engram, engram_template, ready, step, step_run, story

from bobrapet.api.kinds import ENGRAM, ENGRAM_TEMPLATE, STEP_RUN, STORY
from bobrapet.controllers.registry import setup_all
from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.manager import Manager
from bobrapet.store.sqlite import SqliteClient


async def test_engram_with_template_is_valid(client: SqliteClient, settle: Settle) -> None:
    await client.create(engram_template("tpl"))
    await client.create(engram("e"))
    await settle()
    got = await client.get(ENGRAM, "e", "default")
    assert got["status"]["validationStatus"] == "valid"
    assert "validationErrors" not in got["status"]
    cond = ready(got)
    assert (cond["status"], cond["reason"]) == ("True", "TemplateResolved")
    assert got["status"]["observedGeneration"] == 1
    assert got["status"]["usageCount"] == 0
    assert got["status"]["triggers"] == 0


async def test_template_deleted_and_recreated(client: SqliteClient, running: Manager) -> None:
    await client.create(engram_template("tpl"))
    await client.create(engram("e"))
    assert await running.wait_idle(timeout=20)
    assert (await client.get(ENGRAM, "e", "default"))["status"]["validationStatus"] == "valid"

    await client.delete(ENGRAM_TEMPLATE, "tpl")
    assert await running.wait_idle(timeout=20)
    got = await client.get(ENGRAM, "e", "default")
    assert got["status"]["validationStatus"] == "invalid"
    assert got["status"]["validationErrors"] == [
        'spec.templateRef.name: EngramTemplate "tpl" not found; create it or fix the reference'
    ]
    cond = ready(got)
    assert (cond["status"], cond["reason"]) == ("False", "TemplateNotFound")

    await client.create(engram_template("tpl"))
    assert await running.wait_idle(timeout=20)
    got = await client.get(ENGRAM, "e", "default")
    assert got["status"]["validationStatus"] == "valid"
    assert ready(got)["reason"] == "TemplateResolved"


async def test_missing_template_from_the_start(client: SqliteClient, settle: Settle) -> None:
    await client.create(engram("e", template="ghost"))
    await settle()
    got = await client.get(ENGRAM, "e", "default")
    assert got["status"]["validationStatus"] == "invalid"
    assert ready(got)["message"] == (
        'spec.templateRef.name: EngramTemplate "ghost" not found; create it or fix the reference'
    )


async def test_usage_count_counts_every_kind_of_story_reference(client: SqliteClient, settle: Settle) -> None:
    await client.create(engram_template("tpl"))
    await client.create(engram("e"))
    await client.create(engram("unused"))
    await client.create(story("main", [step("a", "e"), step("b", "e")]))  # counted once
    await client.create(story("comp", [step("a", "x")], compensations=[step("undo", "e")]))
    await client.create(story("fin", [step("a", "x")], finally_=[step("z", "e")]))
    parallel = step("p", type="parallel", with_={"steps": [step("branch", "e")]})
    await client.create(story("par", [parallel]))
    cross = step("c", None, ref={"name": "e", "namespace": "default"})
    await client.create(story("cross", [cross], namespace="team-b"))
    await client.create(story("other-ns", [step("a", "e")], namespace="team-c"))  # resolves to team-c/e
    await settle()
    assert (await client.get(ENGRAM, "e", "default"))["status"]["usageCount"] == 5
    assert (await client.get(ENGRAM, "unused", "default"))["status"]["usageCount"] == 0


async def test_usage_follows_story_edits_and_deletes(client: SqliteClient, running: Manager) -> None:
    await client.create(engram_template("tpl"))
    await client.create(engram("a"))
    await client.create(engram("b"))
    await client.create(story("s", [step("one", "a")]))
    assert await running.wait_idle(timeout=20)
    assert (await client.get(ENGRAM, "a", "default"))["status"]["usageCount"] == 1

    s = await client.get(STORY, "s", "default")
    s["spec"]["steps"] = [step("one", "b")]
    await client.update(s)
    assert await running.wait_idle(timeout=20)
    assert (await client.get(ENGRAM, "a", "default"))["status"]["usageCount"] == 0
    assert (await client.get(ENGRAM, "b", "default"))["status"]["usageCount"] == 1

    await client.delete(STORY, "s", "default")
    assert await running.wait_idle(timeout=20)
    assert (await client.get(ENGRAM, "b", "default"))["status"]["usageCount"] == 0


async def test_story_edited_after_restart_still_updates_dropped_engram(
    client: SqliteClient, settle: Settle
) -> None:
    """A story first seen by a fresh manager as MODIFIED: its old references are unknown."""
    await client.create(engram_template("tpl"))
    await client.create(engram("a"))
    await client.create(story("s", [step("one", "a")]))
    await settle()
    assert (await client.get(ENGRAM, "a", "default"))["status"]["usageCount"] == 1
    manager = Manager(client, settle=0.05)
    setup_all(manager)
    async with manager:
        assert await manager.wait_idle(timeout=20)
        s = await client.get(STORY, "s", "default")
        s["spec"]["steps"] = [step("one", "zzz")]
        await client.update(s)
        assert await manager.wait_idle(timeout=20)
    assert (await client.get(ENGRAM, "a", "default"))["status"]["usageCount"] == 0


async def _after_debounce(manager: Manager, clock: FakeClock) -> None:
    """StepRun events reach the Engram controller debounced: let the burst's timer fire."""
    queue = manager.controller("engram").queue
    for _ in range(400):
        if queue.waiting:
            break
        await asyncio.sleep(0.005)
    assert queue.waiting, "the StepRun events were not debounced"
    clock.advance(1.0)
    assert await manager.wait_idle(timeout=20)


async def test_triggers_count_step_runs(client: SqliteClient, running: Manager, clock: FakeClock) -> None:
    await client.create(engram_template("tpl"))
    await client.create(engram("e"))
    for i in range(3):
        await client.create(step_run(f"run-s{i}", "e"))
    await client.create(step_run("other", "f"))
    await _after_debounce(running, clock)
    assert (await client.get(ENGRAM, "e", "default"))["status"]["triggers"] == 3
    await client.delete(STEP_RUN, "run-s0", "default")
    await _after_debounce(running, clock)
    assert (await client.get(ENGRAM, "e", "default"))["status"]["triggers"] == 2


async def test_controllers_never_touch_spec_and_do_not_rewrite_unchanged_status(
    client: SqliteClient, running: Manager
) -> None:
    await client.create(engram_template("tpl"))
    await client.create(engram("e"))
    await client.create(story("s", [step("one", "e")]))
    assert await running.wait_idle(timeout=20)
    before = {
        (k.kind, o["metadata"]["name"]): o
        for k in (ENGRAM_TEMPLATE, ENGRAM, STORY)
        for o in await client.list(k)
    }
    await running.resync()
    assert await running.wait_idle(timeout=20)
    for k in (ENGRAM_TEMPLATE, ENGRAM, STORY):
        for obj in await client.list(k):
            old = before[(k.kind, obj["metadata"]["name"])]
            assert obj["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]
            assert obj["metadata"]["generation"] == 1
