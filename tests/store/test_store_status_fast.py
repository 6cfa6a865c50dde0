"""The status fast path (no admission): preconditions, no-ops, field indexes, events."""

from __future__ import annotations

from typing import Any

import pytest

from bobrapet.api.errors import Conflict
from bobrapet.api.kinds import STEP_RUN
from bobrapet.store.sqlite import SqliteClient


def _step_run(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StepRun",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"storyRunRef": {"name": "r"}, "stepId": "a", "engramRef": {"name": "e"}},
    }


async def _phases(client: SqliteClient, phase: str) -> list[str]:
    found = await client.list(STEP_RUN, "default", fields=f"status.phase={phase}")
    return sorted(o["metadata"]["name"] for o in found)


async def test_phase_index_follows_status_writes(client: SqliteClient) -> None:
    created = await client.create(_step_run("a"))
    await client.create(_step_run("b"))
    running = await client.update_status({**created, "status": {"phase": "Running", "n": 1.5}})
    assert await _phases(client, "Running") == ["a"]
    done = await client.update_status({**running, "status": {"phase": "Succeeded", "output": {"é": [1]}}})
    assert await _phases(client, "Running") == []
    assert await _phases(client, "Succeeded") == ["a"]
    cleared = await client.update_status({**done, "status": {}})
    assert await _phases(client, "Succeeded") == []
    assert (await client.get(STEP_RUN, "a", "default"))["status"] == {}
    assert cleared["metadata"]["resourceVersion"] != done["metadata"]["resourceVersion"]


async def test_no_op_write_keeps_version_and_emits_nothing(client: SqliteClient) -> None:
    created = await client.create(_step_run("a"))
    first = await client.update_status({**created, "status": {"phase": "Running", "msg": "ünï"}})
    again = await client.update_status({**first, "status": {"phase": "Running", "msg": "ünï"}})
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert again["status"] == first["status"]


async def test_stale_version_conflicts(client: SqliteClient) -> None:
    created = await client.create(_step_run("a"))
    await client.update_status({**created, "status": {"phase": "Running"}})
    with pytest.raises(Conflict):
        await client.update_status({**created, "status": {"phase": "Failed"}})
    assert await _phases(client, "Running") == ["a"]
    assert await _phases(client, "Failed") == []


async def test_returned_object_is_independent_of_the_store(client: SqliteClient) -> None:
    created = await client.create(_step_run("a"))
    status: dict[str, Any] = {"phase": "Running", "items": [1]}
    written = await client.update_status({**created, "status": status})
    written["metadata"]["labels"] = {"x": "y"}
    status["items"].append(2)
    stored = await client.get(STEP_RUN, "a", "default")
    assert stored["status"] == {"phase": "Running", "items": [1]}
    assert "labels" not in stored["metadata"] or stored["metadata"]["labels"] != {"x": "y"}
