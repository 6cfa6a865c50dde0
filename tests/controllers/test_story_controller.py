"""Story controller end to end over the SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.controllers.conftest import Settle, settled_after_debounce
from tests.controllers.ctrl_objects import (
    engram,
    engram_template,
    impulse,
    ready,
    step,
    story,
    story_run,
    transport,
)

from bobrapet.api.errors import Cause, Invalid, NotFound
from bobrapet.api.kinds import ENGRAM, IMPULSE, STORY, STORY_RUN, TRANSPORT_KIND
from bobrapet.controllers.registry import setup_all
from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.manager import Manager
from bobrapet.store.sqlite import SqliteClient

FINALIZER = "story.bubustack.io/finalizer"


async def test_valid_story(client: SqliteClient, settle: Settle) -> None:
    await client.create(engram_template("tpl"))
    await client.create(engram("e"))
    await client.create(
        story(
            "s",
            [step("a", "e"), step("b", "e")],
            compensations=[step("c", "e")],
            finally_=[step("d", "e")],
        )
    )
    await settle()
    got = await client.get(STORY, "s", "default")
    status = got["status"]
    assert status["validationStatus"] == "valid"
    assert status["stepsTotal"] == 4
    assert status["observedGeneration"] == 1
    assert "validationErrors" not in status and "validationWarnings" not in status
    cond = ready(got)
    assert (cond["status"], cond["reason"]) == ("True", "ValidationPassed")
    assert FINALIZER in got["metadata"]["finalizers"]
    assert got["metadata"]["generation"] == 1, "adding the finalizer is not a spec change"


async def test_missing_engram_then_created(client: SqliteClient, running: Manager) -> None:
    await client.create(engram_template("tpl"))
    await client.create(story("s", [step("fetch", "fetcher"), step("ok", "known")]))
    await client.create(engram("known"))
    assert await running.wait_idle(timeout=20)
    got = await client.get(STORY, "s", "default")
    assert got["status"]["validationStatus"] == "invalid"
    assert got["status"]["validationErrors"] == [
        'step "fetch" (spec.steps[0].ref): Engram "fetcher" does not exist; create it or fix the reference'
    ]
    cond = ready(got)
    assert (cond["status"], cond["reason"]) == ("False", "EngramReferenceInvalid")
    assert "fetch" in cond["message"] and "fetcher" in cond["message"]

    await client.create(engram("fetcher"))
    assert await running.wait_idle(timeout=20)
    got = await client.get(STORY, "s", "default")
    assert got["status"]["validationStatus"] == "valid"
    assert "validationErrors" not in got["status"]
    assert ready(got)["reason"] == "ValidationPassed"

    await client.delete(ENGRAM, "fetcher", "default")
    assert await running.wait_idle(timeout=20)
    assert (await client.get(STORY, "s", "default"))["status"]["validationStatus"] == "invalid"


async def test_parallel_branches_and_cross_namespace_refs_are_checked(
    client: SqliteClient, settle: Settle
) -> None:
    parallel = step("p", type="parallel", with_={"steps": [step("left", "ghost")]})
    cross = step("x", None, ref={"name": "remote", "namespace": "team-b"})
    await client.create(story("s", [parallel, cross]))
    await settle()
    errors = (await client.get(STORY, "s", "default"))["status"]["validationErrors"]
    assert errors == [
        'step "p/left" (spec.steps[0].with.steps[0].ref): Engram "ghost" does not exist; '
        "create it or fix the reference",
        'step "x" (spec.steps[1].ref): Engram "remote" in namespace "team-b" does not exist; '
        "create it or fix the reference",
    ]


async def test_execute_story_target_must_exist(client: SqliteClient, running: Manager) -> None:
    call = step("call", type="executeStory", with_={"storyRef": {"name": "child", "version": "2"}})
    await client.create(story("parent", [call]))
    assert await running.wait_idle(timeout=20)
    got = await client.get(STORY, "parent", "default")
    assert got["status"]["validationErrors"] == [
        'step "call" (spec.steps[0].with.storyRef): Story "child" does not exist; '
        "create it or fix the reference"
    ]
    assert ready(got)["reason"] == "StoryReferenceInvalid"

    await client.create(story("child", [step("w", type="sleep")], version="1"))
    assert await running.wait_idle(timeout=20)
    got = await client.get(STORY, "parent", "default")
    assert got["status"]["validationStatus"] == "valid"
    assert got["status"]["validationWarnings"] == [
        'step "call" pins Story "child" version "2", but the Story is version "1"'
    ]


async def test_transports_status_and_references(client: SqliteClient, running: Manager) -> None:
    await client.create(engram_template("tpl"))
    await client.create(engram("e", mode="deployment"))
    transports = [{"name": "media", "transportRef": "livekit"}]
    await client.create(story("batch", [step("a", "e")], transports=transports))
    await client.create(story("live", [step("a", "e")], transports=transports, pattern="realtime"))
    assert await running.wait_idle(timeout=20)
    batch = await client.get(STORY, "batch", "default")
    assert batch["status"]["validationErrors"] == [
        'transport "media" (spec.transports[0].transportRef): Transport "livekit" does not exist; '
        "create it or fix the reference"
    ]
    assert ready(batch)["reason"] == "TransportReferenceInvalid"
    assert batch["status"]["transports"] == [
        {"name": "media", "transportRef": "livekit", "mode": "fallback", "modeReason": "batch-pattern"}
    ]
    live = await client.get(STORY, "live", "default")
    assert live["status"]["transports"][0]["mode"] == "hot"
    assert live["status"]["transports"][0]["modeReason"] == "streaming-default"

    await client.create(transport("livekit"))
    assert await running.wait_idle(timeout=20)
    assert (await client.get(STORY, "batch", "default"))["status"]["validationStatus"] == "valid"
    assert (await client.get(STORY, "live", "default"))["status"]["validationStatus"] == "valid"

    await client.delete(TRANSPORT_KIND, "livekit")
    assert await running.wait_idle(timeout=20)
    assert (await client.get(STORY, "live", "default"))["status"]["validationStatus"] == "invalid"


async def test_realtime_story_needs_long_running_engrams(client: SqliteClient, running: Manager) -> None:
    await client.create(engram_template("tpl"))
    await client.create(engram("batchy"))
    await client.create(story("live", [step("a", "batchy")], pattern="realtime"))
    assert await running.wait_idle(timeout=20)
    got = await client.get(STORY, "live", "default")
    assert got["status"]["validationErrors"] == [
        'step "a" (spec.steps[0].ref): Engram "batchy" runs in mode "job"; '
        "realtime stories need Engrams with spec.mode deployment or statefulset"
    ]
    e = await client.get(ENGRAM, "batchy", "default")
    e["spec"]["mode"] = "statefulset"
    await client.update(e)
    assert await running.wait_idle(timeout=20)
    assert (await client.get(STORY, "live", "default"))["status"]["validationStatus"] == "valid"


async def test_mixed_problems_use_validation_failed(client: SqliteClient, settle: Settle) -> None:
    call = step("call", type="executeStory", with_={"storyRef": {"name": "nope"}})
    await client.create(story("s", [step("a", "ghost"), call]))
    await settle()
    got = await client.get(STORY, "s", "default")
    assert len(got["status"]["validationErrors"]) == 2
    assert ready(got)["reason"] == "ValidationFailed"


async def test_invalid_engram_is_a_warning(client: SqliteClient, settle: Settle) -> None:
    await client.create(engram("e", template="missing"))
    await client.create(story("s", [step("a", "e")]))
    await settle()
    got = await client.get(STORY, "s", "default")
    assert got["status"]["validationStatus"] == "valid"
    assert got["status"]["validationWarnings"] == [
        'step "a": Engram "e" is invalid: spec.templateRef.name: EngramTemplate "missing" not found; '
        "create it or fix the reference"
    ]


async def test_usage_count_and_triggers(client: SqliteClient, running: Manager, clock: FakeClock) -> None:
    await client.create(story("s", [step("a", type="sleep")]))
    await client.create(impulse("i1", "s"))
    await client.create(impulse("i2", "s"))
    await client.create(impulse("i3", "other"))
    for i in range(3):
        await client.create(story_run(f"r{i}", "s"))
    await client.create(story_run("r-other", "other"))
    await settled_after_debounce(running, clock)
    got = await client.get(STORY, "s", "default")
    assert got["status"]["usageCount"] == 2
    assert got["status"]["triggers"] == 0

    for name in ("r0", "r1"):
        run = await client.get(STORY_RUN, name, "default")
        run["status"] = {"phase": "Running", "triggerTokens": ["story"]}
        await client.update_status(run)
    await settled_after_debounce(running, clock)
    assert (await client.get(STORY, "s", "default"))["status"]["triggers"] == 2

    i1 = await client.get(IMPULSE, "i1", "default")
    i1["spec"]["storyRef"] = {"name": "other"}
    await client.update(i1)
    assert await running.wait_idle(timeout=20)
    assert (await client.get(STORY, "s", "default"))["status"]["usageCount"] == 1


async def test_finalizer_is_removed_on_delete(client: SqliteClient, running: Manager) -> None:
    await client.create(story("s", [step("a", type="sleep")]))
    assert await running.wait_idle(timeout=20)
    assert FINALIZER in (await client.get(STORY, "s", "default"))["metadata"]["finalizers"]
    await client.delete(STORY, "s", "default")
    assert await running.wait_idle(timeout=20)
    with pytest.raises(NotFound):
        await client.get(STORY, "s", "default")


async def test_status_is_written_when_admission_rejects_the_finalizer_update(tmp_path: Path) -> None:
    """Admission rules that tightened after a Story was stored must not hide its status."""

    async def reject_story_updates(
        obj: dict[str, Any], old: dict[str, Any] | None, *, subresource: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        if old is not None and obj.get("kind") == "Story":
            raise Invalid("Story", obj["metadata"]["name"], [Cause("spec.steps", "now forbidden")])
        return obj, []

    client = SqliteClient(tmp_path / "state.db", admission=reject_story_updates)
    try:
        await client.create(story("s", [step("a", type="sleep")]))
        manager = Manager(client, settle=0.05)
        setup_all(manager)
        async with manager:
            assert await manager.wait_idle(timeout=20)
        got = await client.get(STORY, "s", "default")
        assert got["status"]["validationStatus"] == "valid"
        assert "finalizers" not in got["metadata"]
    finally:
        client.close()
