"""Status merge patches: only the change is encoded and logged; readers see whole objects."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bobrapet.api.errors import Conflict
from bobrapet.api.kinds import STEP_RUN
from bobrapet.store.client import WatchEvent
from bobrapet.store.sqlite import SqliteClient, mergepatch


def _run(name: str = "a") -> dict[str, Any]:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StepRun",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"storyRunRef": {"name": "r"}, "stepId": "a", "engramRef": {"name": "e"}},
    }


def _state(i: int) -> dict[str, Any]:
    return {"phase": "Succeeded", "startedAt": f"2026-01-01T00:00:{i % 60:02d}Z", "stepRun": f"run-s{i}"}


async def _take(stream: AsyncIterator[WatchEvent], count: int) -> list[WatchEvent]:
    async def collect() -> list[WatchEvent]:
        return [await anext(stream) for _ in range(count)]

    return await asyncio.wait_for(collect(), 5.0)


def _log_bytes(db_path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT type, length(data) FROM events ORDER BY rv").fetchall()
    return [(str(t), int(n)) for t, n in rows]


def test_merge_patch_round_trips_and_shares_untouched_values() -> None:
    kept = {"phase": "Succeeded"}
    old = {"phase": "Running", "stepStates": {"a": kept, "b": {"phase": "Running", "message": "m"}}, "x": [1]}
    new = {"phase": "Running", "stepStates": {"a": kept, "b": {"phase": "Succeeded"}, "c": {}}, "y": 2}
    patch = mergepatch.diff(old, new)
    assert patch == {"stepStates": {"b": {"phase": "Succeeded", "message": None}, "c": {}}, "x": None, "y": 2}
    applied = mergepatch.apply(old, patch)
    assert applied == new
    assert applied["stepStates"]["a"] is kept
    assert old["stepStates"]["b"] == {"phase": "Running", "message": "m"}  # arguments untouched
    assert mergepatch.diff(new, new) == {}


def test_merge_patch_refuses_nulls_it_cannot_say() -> None:
    assert mergepatch.diff({"a": 1}, {"a": None}) is None
    assert mergepatch.diff({}, {"a": {"b": [None]}}) is None
    assert mergepatch.diff([], {}) is None


async def test_patch_status_writes_only_the_change(client: SqliteClient, db_path: Path) -> None:
    obj = await client.create(_run())
    states: dict[str, Any] = {}
    status: dict[str, Any] = {"phase": "Running", "stepStates": states}
    obj = await client.update_status({**obj, "status": status})
    sizes = []
    for i in range(200):
        states = {**states, f"s{i}": _state(i)}
        new_status = {**status, "stepStates": states}
        obj = await client.patch_status({**obj, "status": new_status}, status)
        status = new_status
        sizes.append(_log_bytes(db_path)[-1])
    assert {t for t, _ in sizes} == {"PATCHED"}
    # The 200th write logs as many bytes as the 10th: O(change), not O(status).
    assert sizes[-1][1] <= sizes[9][1] + 16  # a few more digits in names and versions
    stored = await client.get(STEP_RUN, "a", "default")
    assert stored["status"] == status
    assert stored["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert len(stored["status"]["stepStates"]) == 200


async def test_patch_status_checks_the_resource_version(client: SqliteClient) -> None:
    obj = await client.create(_run())
    first = await client.patch_status({**obj, "status": {"phase": "Running"}}, obj.get("status"))
    with pytest.raises(Conflict):  # obj is stale: its base is not what is stored
        await client.patch_status({**obj, "status": {"phase": "Failed"}}, obj.get("status"))
    assert (await client.get(STEP_RUN, "a", "default"))["status"] == {"phase": "Running"}
    unchanged = await client.patch_status(first, first["status"])
    assert unchanged["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


async def test_patch_with_null_falls_back_to_a_whole_write(client: SqliteClient, db_path: Path) -> None:
    obj = await client.create(_run())
    await client.patch_status({**obj, "status": {"phase": "Running", "output": None}}, None)
    assert (await client.get(STEP_RUN, "a", "default"))["status"] == {"phase": "Running", "output": None}
    assert _log_bytes(db_path)[-1][0] == "MODIFIED"


async def test_patch_updates_selectable_field_index(client: SqliteClient) -> None:
    obj = await client.create(_run())
    obj = await client.patch_status({**obj, "status": {"phase": "Running"}}, None)
    running = await client.list(STEP_RUN, fields="status.phase=Running")
    assert [o["metadata"]["name"] for o in running] == ["a"]
    await client.patch_status({**obj, "status": {"phase": "Succeeded"}}, obj["status"])
    assert await client.list(STEP_RUN, fields="status.phase=Running") == []
    assert len(await client.list(STEP_RUN, fields="status.phase=Succeeded")) == 1


async def test_watchers_get_whole_objects_for_patches(client: SqliteClient, db_path: Path) -> None:
    live = client.watch(STEP_RUN, "default")
    obj = await client.create(_run())
    status: dict[str, Any] = {"phase": "Running", "stepStates": {}}
    versions = []
    for i in range(5):
        new_status = {**status, "stepStates": {**status["stepStates"], f"s{i}": _state(i)}}
        obj = await client.patch_status({**obj, "status": new_status}, status if i else None)
        status = new_status
        versions.append((obj["metadata"]["resourceVersion"], status))
    events = await _take(live, 6)
    assert events[0].type == "ADDED"
    for event, (rv, expected) in zip(events[1:], versions, strict=True):
        assert event.type == "MODIFIED"
        assert event.object["metadata"]["resourceVersion"] == rv
        assert event.object["status"] == expected
        assert event.object["spec"] == obj["spec"]
    # Another process's watch, from the start of history: it never delivers a wrong state,
    # and ends at the stored object.
    async with SqliteClient(db_path) as other:
        replay = other.watch(STEP_RUN, "default", since="0")
        seen = [await anext(replay)]
        while seen[-1].object["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            seen.append(await asyncio.wait_for(anext(replay), 5.0))
        by_rv = dict(versions)
        for event in seen[1:]:
            assert event.object["status"] == by_rv[event.object["metadata"]["resourceVersion"]]
        assert seen[-1].object == await client.get(STEP_RUN, "a", "default")
