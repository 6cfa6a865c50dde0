"""A run executes the Story it started with (its stored copy), on the real SQLite store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from tests.controllers.ctrl_objects import engram, engram_template, step, story, story_run
from tests.controllers.fakes import EchoExecutor

from bobrapet.api import runmeta
from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import CONFIG_MAP, STEP_RUN, STORY, STORY_RUN
from bobrapet.api.types.enums import TERMINAL_PHASES
from bobrapet.controllers.execution import ExecutionEnv
from bobrapet.controllers.registry import setup_all
from bobrapet.controllers.story_snapshots import (
    DATA_KEY,
    StorySnapshots,
    body_of,
    config_map,
    read_run_story,
)
from bobrapet.engine.dag import compile_graph
from bobrapet.engine.story_pin import StoryPin, pin_for
from bobrapet.executors.local import LocalExecutor
from bobrapet.runtime.cache import ObjectCache
from bobrapet.runtime.lease import EngineLease
from bobrapet.runtime.manager import Manager
from bobrapet.store.sqlite import SqliteClient

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Engine:
    """Managers with every controller and an echo executor, started and stopped at will."""

    def __init__(self, client: SqliteClient, tmp_path: Path) -> None:
        self.client = client
        self.tmp_path = tmp_path
        self.executor = EchoExecutor()
        self.manager: Manager | None = None
        self.lease: EngineLease | None = None

    async def start(self) -> Manager:
        self.lease = EngineLease(self.tmp_path / "engines")
        self.lease.acquire()
        env = ExecutionEnv(
            executor=cast(LocalExecutor, self.executor),
            lease=self.lease,
            home=self.tmp_path,
            workdir=self.tmp_path,
        )
        self.manager = Manager(self.client, settle=0.05)
        setup_all(self.manager, execution=env)
        await self.manager.__aenter__()
        return self.manager

    async def stop(self) -> None:
        if self.manager is not None:
            await self.manager.__aexit__(None, None, None)
            self.manager = None
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    async def until(self, name: str, predicate: Any, timeout: float = 10) -> dict[str, Any]:
        assert self.manager is not None

        async def check() -> bool:
            run = await self.client.get(STORY_RUN, name, "default")
            return bool(predicate(run.get("status") or {}))

        assert await self.manager.run_until(check, timeout=timeout), (
            await self.client.get(STORY_RUN, name, "default")
        )["status"]
        return await self.client.get(STORY_RUN, name, "default")

    async def finished(self, name: str) -> dict[str, Any]:
        return await self.until(name, lambda s: s.get("phase") in TERMINAL_PHASES)


@pytest.fixture
async def engine(client: SqliteClient, tmp_path: Path) -> AsyncIterator[Engine]:
    world = Engine(client, tmp_path)
    yield world
    await world.stop()


def _waiting_at_gate(status: dict[str, Any]) -> bool:
    return ((status.get("stepStates") or {}).get("g") or {}).get("phase") == "Paused"


def gated(last: dict[str, Any], version: str | None = None) -> dict[str, Any]:
    """a -> g (gate) -> ``last``; the output names the last step's ``who``."""
    extra: dict[str, Any] = {"version": version} if version else {}
    return story(
        "s",
        [
            step("a", "e", with_={"who": "a"}),
            step("g", type="gate", needs=["a"]),
            {**last, "needs": ["g"]},
        ],
        output={"last": "{{ steps['" + last["name"] + "'].output.who }}"},
        **extra,
    )


async def _edit(client: SqliteClient, body: dict[str, Any]) -> None:
    current = await client.get(STORY, "s", "default")
    await client.update({**current, "spec": body["spec"]})


async def _approve(client: SqliteClient, name: str) -> None:
    run = await client.get(STORY_RUN, name, "default")
    status = {**run["status"], "gates": {"g": {"state": "Approved"}}}
    await client.update_status({**run, "status": status})


async def _catalog(client: SqliteClient) -> None:
    await client.create(engram_template("tpl", image=None, entrypoint="m:f"))
    await client.create(engram("e"))


async def test_an_edit_while_a_run_waits_changes_neither_the_run_nor_its_step_runs(
    client: SqliteClient, engine: Engine
) -> None:
    await _catalog(client)
    await client.create(gated(step("b", "e", with_={"who": "b"})))
    await client.create(story_run("r", "s"))
    await engine.start()
    run = await engine.until("r", _waiting_at_gate)
    pin = StoryPin.from_status(run["status"])
    assert pin is not None and pin.generation == 1
    # A new version: b now has a post-execution check that always fails, and a new step c.
    # Neither may reach the run (StoryRun controller) nor its StepRun b (StepRun controller).
    edited = gated(step("b", "e", with_={"who": "b2"}, postExecution={"condition": "false"}))
    edited["spec"]["steps"].append(step("c", "e", with_={"who": "c"}, needs=["g"]))
    await _edit(client, edited)
    await _approve(client, "r")
    run = await engine.finished("r")
    assert run["status"]["phase"] == "Succeeded", json.dumps(run["status"], indent=1)
    assert run["status"]["output"] == {"last": "b"}
    assert [r.inputs.get("who") for r in engine.executor.requests] == ["a", "b"]
    assert set(run["status"]["stepStates"]) == {"a", "g", "b"}
    assert run["status"]["storySnapshot"] == pin.to_status()
    step_run = await client.get(STEP_RUN, "r-b", "default")
    assert step_run["metadata"]["annotations"][runmeta.STORY_SNAPSHOT] == pin.hash
    stored = await client.get(CONFIG_MAP, pin.name, "default")
    assert stored["immutable"] is True
    assert stored["metadata"]["ownerReferences"][0]["uid"] == run["metadata"]["uid"]
    assert json.loads(stored["data"][DATA_KEY])["spec"]["steps"][2]["name"] == "b"
    shown = await read_run_story(client, run)
    assert shown is not None and [s["name"] for s in shown["spec"]["steps"]] == ["a", "g", "b"]
    asked = {runmeta.REDRIVE_TOKEN: "t9", runmeta.REDRIVE_LATEST: "t9"}
    pending = {**run, "metadata": {**run["metadata"], "annotations": asked}}
    shown = await read_run_story(client, pending)  # redrive --latest pending: the current Story
    assert shown is not None and [s["name"] for s in shown["spec"]["steps"]] == ["a", "g", "b", "c"]
    # A new run takes the current Story.
    await client.create(story_run("r2", "s"))
    await engine.until("r2", _waiting_at_gate)
    await _approve(client, "r2")
    second = await engine.finished("r2")
    assert second["status"]["phase"] == "Failed"  # b's new check
    assert set(second["status"]["stepStates"]) == {"a", "g", "b", "c"}
    assert second["status"]["storySnapshot"]["generation"] == 2
    # Deleting a run deletes its copy.
    await client.delete(STORY_RUN, "r", "default")
    assert engine.manager is not None
    await engine.manager.wait_idle(timeout=10)
    with pytest.raises(NotFound):
        await client.get(CONFIG_MAP, pin.name, "default")


async def test_a_copy_stored_before_a_crash_is_adopted(client: SqliteClient, engine: Engine) -> None:
    """The engine died after storing the copy and before recording it: the restart converges."""
    await _catalog(client)
    stored_story = await client.create(story("s", [step("a", "e", with_={"who": "a"})]))
    run = await client.create(story_run("r", "s"))
    pin, body = pin_for("r", stored_story)
    owner = {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StoryRun",
        "name": "r",
        "uid": run["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    await client.create(config_map(pin, body, run, owner))
    await engine.start()
    done = await engine.finished("r")
    assert done["status"]["phase"] == "Succeeded"
    assert done["status"]["storySnapshot"] == pin.to_status()
    copies = [c for c in await client.list(CONFIG_MAP, "default") if c["metadata"]["name"].startswith("r-")]
    assert [c["metadata"]["name"] for c in copies] == [pin.name]


async def test_a_lost_copy_fails_the_run_and_redrive_latest_recovers(
    client: SqliteClient, engine: Engine
) -> None:
    await _catalog(client)
    await client.create(gated(step("b", "e", with_={"who": "b"})))
    await client.create(story_run("r", "s"))
    await engine.start()
    run = await engine.until("r", _waiting_at_gate)
    await engine.stop()
    pin = StoryPin.from_status(run["status"])
    assert pin is not None
    await client.delete(CONFIG_MAP, pin.name, "default")
    await _edit(client, gated(step("c", "e", with_={"who": "c"})))
    await engine.start()  # a fresh process: nothing in memory
    await _approve(client, "r")
    failed = await engine.finished("r")
    assert failed["status"]["phase"] == "Failed"
    assert "ConfigMap" in failed["status"]["message"] and "--latest" in failed["status"]["message"]
    ready = next(c for c in failed["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "StoryReferenceInvalid"
    # redrive --latest: the run restarts on the current Story.
    annotations = {**failed["metadata"].get("annotations", {})}
    annotations[runmeta.REDRIVE_TOKEN] = annotations[runmeta.REDRIVE_LATEST] = "t1"
    await client.update({**failed, "metadata": {**failed["metadata"], "annotations": annotations}})
    await engine.until(
        "r", lambda s: (s.get("storySnapshot") or {}).get("generation") == 2 and _waiting_at_gate(s)
    )
    await _approve(client, "r")
    done = await engine.finished("r")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["output"] == {"last": "c"}
    assert done["status"]["storySnapshot"]["generation"] == 2


async def test_a_version_pin_is_checked_when_the_run_starts(client: SqliteClient, engine: Engine) -> None:
    await _catalog(client)
    await client.create(story("s", [step("a", "e", with_={"who": "a"})], version="1"))
    run = story_run("r", "s")
    run["spec"]["storyRef"]["version"] = "1"
    await client.create(run)  # admitted: the Story has version 1 now
    current = await client.get(STORY, "s", "default")
    await client.update({**current, "spec": {**current["spec"], "version": "2"}})
    await engine.start()
    failed = await engine.finished("r")
    assert failed["status"]["phase"] == "Failed"
    assert "has version '2', expected '1'" in failed["status"]["message"]
    assert "storySnapshot" not in failed["status"]
    assert [r.inputs.get("who") for r in engine.executor.requests] == []


async def test_an_execute_story_child_pins_its_own_story(client: SqliteClient, engine: Engine) -> None:
    await _catalog(client)
    await client.create(story("child", [step("x", "e", with_={"who": "x"})]))
    call = step("call", type="executeStory", with_={"storyRef": {"name": "child"}})
    await client.create(story("parent", [call]))
    await client.create(story_run("p", "parent"))
    await engine.start()
    parent = await engine.finished("p")
    assert parent["status"]["phase"] == "Succeeded", parent["status"]
    child_name = parent["status"]["stepStates"]["call"]["subStoryRunName"]
    child = await client.get(STORY_RUN, child_name, "default")
    child_pin = StoryPin.from_status(child["status"])
    parent_pin = StoryPin.from_status(parent["status"])
    assert child_pin is not None and parent_pin is not None
    stored = await client.get(CONFIG_MAP, child_pin.name, "default")
    assert json.loads(stored["data"][DATA_KEY])["metadata"]["name"] == "child"
    assert child_pin.hash != parent_pin.hash


async def test_runs_of_one_story_share_one_parsed_copy_and_graph(client: SqliteClient) -> None:
    stored = await client.create(story("s", [step("a", "e")]))
    cache = ObjectCache(STORY)
    cache.replace([stored])
    snapshots = StorySnapshots(client, cache)
    one = snapshots.current(
        {"metadata": {"name": "r1", "namespace": "default"}, "spec": {"storyRef": {"name": "s"}}}
    )
    two = snapshots.current(
        {"metadata": {"name": "r2", "namespace": "default"}, "spec": {"storyRef": {"name": "s"}}}
    )
    assert one.story is not None and one.story is two.story
    assert compile_graph(one.story) is compile_graph(two.story)
    assert one.pin is not None and two.pin is not None
    assert one.pin.hash == two.pin.hash and one.pin.name != two.pin.name
    assert snapshots.cached_model(one.pin.hash) is one.story


def test_a_copy_whose_content_does_not_match_its_hash_is_refused() -> None:
    stored = story("s", [step("a", "e")])
    pin, body = pin_for("r", stored)
    run = {"metadata": {"name": "r", "namespace": "default", "uid": "u"}}
    good = config_map(pin, body, run, {"uid": "u"})
    assert body_of(good, pin.hash) == (body, None)
    altered = {**good, "data": {DATA_KEY: good["data"][DATA_KEY].replace('"a"', '"z"')}}
    found, problem = body_of(altered, pin.hash)
    assert found is None and problem is not None and pin.name in problem


async def test_a_started_run_finishes_after_its_story_is_deleted(
    client: SqliteClient, engine: Engine
) -> None:
    await _catalog(client)
    await client.create(gated(step("b", "e", with_={"who": "b"})))
    await client.create(story_run("r", "s"))
    await engine.start()
    await engine.until("r", _waiting_at_gate)
    await client.delete(STORY, "s", "default")
    assert engine.manager is not None

    async def gone() -> bool:
        try:
            await client.get(STORY, "s", "default")
        except NotFound:
            return True
        return False

    assert await engine.manager.run_until(gone, timeout=10)
    await _approve(client, "r")
    done = await engine.finished("r")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["output"] == {"last": "b"}
