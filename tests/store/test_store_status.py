"""The status subresource: update_status changes status only; update never changes status."""

from __future__ import annotations

from typing import Any

import pytest

from bobrapet.api.errors import BadRequest, Conflict, Invalid, NotFound
from bobrapet.api.kinds import STORY
from bobrapet.store.sqlite import SqliteClient

from .store_helpers import story


async def test_update_status_changes_only_status(client: SqliteClient) -> None:
    created = await client.create(story("a", metadata={"labels": {"x": "1"}}))
    body = dict(created, status={"phase": "Ready"}, spec={"steps": []})
    body["metadata"] = dict(created["metadata"], labels={"x": "2"}, finalizers=["f"])
    updated = await client.update_status(body)
    assert updated["status"] == {"phase": "Ready"}
    assert updated["spec"] == created["spec"]
    assert updated["metadata"]["labels"] == {"x": "1"}
    assert "finalizers" not in updated["metadata"]
    assert updated["metadata"]["generation"] == 1
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert await client.get(STORY, "a") == updated


async def test_status_no_op_writes_nothing(client: SqliteClient) -> None:
    created = await client.create(story("a"))
    first = await client.update_status(dict(created, status={"phase": "Ready"}))
    writes = client.writes
    again = await client.update_status(dict(first))
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert client.writes == writes


async def test_status_update_with_stale_rv_conflicts(client: SqliteClient) -> None:
    created = await client.create(story("a"))
    await client.update_status(dict(created, status={"phase": "One"}))
    with pytest.raises(Conflict, match="the object has been modified"):
        await client.update_status(dict(created, status={"phase": "Two"}))
    assert (await client.get(STORY, "a"))["status"] == {"phase": "One"}


async def test_status_update_without_rv_is_invalid(client: SqliteClient) -> None:
    """The status subresource of a custom resource refuses unconditional updates too (422)."""
    created = await client.create(story("a"))
    with pytest.raises(Invalid, match=r"metadata\.resourceVersion: Invalid value: 0: must be specified"):
        await client.update_status(story("a", status={"phase": "X"}))
    assert await client.get(STORY, "a") == created


async def test_status_update_without_status_clears_it(client: SqliteClient) -> None:
    created = await client.create(story("a"))
    with_status = await client.update_status(dict(created, status={"phase": "X"}))
    del with_status["status"]
    cleared = await client.update_status(with_status)
    assert "status" not in cleared


async def test_status_update_of_missing_object_is_not_found(client: SqliteClient) -> None:
    with pytest.raises(NotFound):
        await client.update_status(story("ghost", status={"phase": "X"}))


async def test_kind_without_status_subresource_rejects_status_update(client: SqliteClient) -> None:
    cm = await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    with pytest.raises(BadRequest, match="configmaps have no status subresource; use update"):
        await client.update_status(dict(cm, status={"x": 1}))


async def test_caller_status_dict_is_copied(client: SqliteClient) -> None:
    created = await client.create(story("a"))
    status: dict[str, Any] = {"phase": "X", "items": [1]}
    await client.update_status(dict(created, status=status))
    status["items"].append(2)
    assert (await client.get(STORY, "a"))["status"] == {"phase": "X", "items": [1]}
