"""Update semantics: generation, no-op updates, optimistic concurrency, immutable fields."""

from __future__ import annotations

import pytest

from bobrapet.api.errors import BadRequest, Conflict, Invalid, NotFound
from bobrapet.api.kinds import CONFIG_MAP, STORY
from bobrapet.store.sqlite import SqliteClient

from .store_helpers import FakeClock, story

CONFLICT_MESSAGE = (
    'Operation cannot be fulfilled on stories.bubustack.io "a": the object has been modified; '
    "please apply your changes to the latest version and try again"
)


async def test_generation_bumps_on_spec_change(client: SqliteClient) -> None:
    created = await client.create(story("a"))
    created["spec"]["steps"].append({"name": "b"})
    updated = await client.update(created)
    assert updated["metadata"]["generation"] == 2
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert updated["spec"]["steps"][-1] == {"name": "b"}


async def test_metadata_change_bumps_rv_but_not_generation(client: SqliteClient) -> None:
    created = await client.create(story("a"))
    created["metadata"]["labels"] = {"team": "x"}
    created["metadata"]["annotations"] = {"note": "y"}
    updated = await client.update(created)
    assert updated["metadata"]["generation"] == 1
    assert updated["metadata"]["labels"] == {"team": "x"}
    assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]


async def test_update_replaces_metadata_maps(client: SqliteClient) -> None:
    created = await client.create(story("a", metadata={"labels": {"a": "1", "b": "2"}}))
    created["metadata"]["labels"] = {"b": "3"}
    updated = await client.update(created)
    assert updated["metadata"]["labels"] == {"b": "3"}
    assert await client.list(STORY, labels="a") == []


async def test_no_op_update_writes_nothing(client: SqliteClient) -> None:
    created = await client.create(story("a", metadata={"labels": {"x": "y"}}))
    writes = client.writes
    again = await client.update(created)
    assert again == created
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert client.writes == writes
    assert await client.resource_version() == created["metadata"]["resourceVersion"]


async def test_stale_resource_version_conflicts(client: SqliteClient) -> None:
    created = await client.create(story("a"))
    first = dict(created, spec={"steps": [{"name": "first"}]})
    await client.update(first)
    stale = dict(created, spec={"steps": [{"name": "second"}]})
    with pytest.raises(Conflict) as info:
        await client.update(stale)
    status = info.value.to_status()
    assert status["message"] == CONFLICT_MESSAGE
    assert status["code"] == 409
    assert status["reason"] == "Conflict"
    assert status["details"] == {"name": "a", "group": "bubustack.io", "kind": "stories"}
    assert (await client.get(STORY, "a"))["spec"] == {"steps": [{"name": "first"}]}


async def test_update_without_resource_version_is_invalid_for_custom_resources(client: SqliteClient) -> None:
    """The API server refuses unconditional updates of custom resources (422), unlike ConfigMaps."""
    created = await client.create(story("a"))
    writes = client.writes
    with pytest.raises(Invalid) as info:
        await client.update(story("a", spec={"steps": [{"name": "y"}]}))
    status = info.value.to_status()
    assert status["code"] == 422
    assert status["message"].startswith(
        'stories.bubustack.io "a" is invalid: metadata.resourceVersion: Invalid value: 0: '
        "must be specified for an update"
    )
    assert status["details"]["kind"] == "stories"
    assert status["details"]["causes"][0]["field"] == "metadata.resourceVersion"
    assert client.writes == writes
    assert await client.get(STORY, "a") == created
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "1"}}
    await client.create(config)
    updated = await client.update(dict(config, data={"k": "2"}))
    assert updated["data"] == {"k": "2"}


async def test_update_of_missing_object_is_not_found(client: SqliteClient) -> None:
    with pytest.raises(NotFound) as info:
        await client.update(story("ghost"))
    assert info.value.to_status()["message"] == 'stories.bubustack.io "ghost" not found'
    assert info.value.to_status()["code"] == 404


async def test_system_fields_are_immutable(client: SqliteClient, clock: FakeClock) -> None:
    created = await client.create(story("a"))
    clock.advance(60)
    body = story("a", spec={"steps": [{"name": "z"}]})
    body["metadata"].update(
        {
            "creationTimestamp": "1999-01-01T00:00:00Z",
            "generation": 42,
            "deletionTimestamp": "1999-01-01T00:00:00Z",
            "resourceVersion": created["metadata"]["resourceVersion"],
        }
    )
    updated = await client.update(body)
    meta = updated["metadata"]
    assert meta["uid"] == created["metadata"]["uid"]
    assert meta["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    assert meta["generation"] == 2
    assert "deletionTimestamp" not in meta


async def test_different_uid_is_a_conflict(client: SqliteClient) -> None:
    created = await client.create(story("a"))
    await client.delete(STORY, "a")
    await client.create(story("a"))
    body = dict(created, spec={"steps": []})
    body["metadata"] = dict(created["metadata"], resourceVersion="")
    with pytest.raises(Conflict, match="Precondition failed: UID in precondition"):
        await client.update(body)


async def test_status_in_update_body_is_ignored(client: SqliteClient) -> None:
    created = await client.create(story("a"))
    created["status"] = {"phase": "Hacked"}
    updated = await client.update(created)
    assert "status" not in updated
    with_status = await client.update_status(dict(updated, status={"phase": "Real"}))
    with_status["status"] = {"phase": "Hacked"}
    with_status["spec"] = {"steps": []}
    final = await client.update(with_status)
    assert final["status"] == {"phase": "Real"}
    assert final["spec"] == {"steps": []}


async def test_invalid_resource_version_is_bad_request(client: SqliteClient) -> None:
    created = await client.create(story("a"))
    created["metadata"]["resourceVersion"] = "abc"
    with pytest.raises(BadRequest, match="resourceVersion 'abc' is not valid"):
        await client.update(created)


async def test_update_without_name_is_invalid(client: SqliteClient) -> None:
    with pytest.raises(Invalid) as info:
        await client.update(story(None))
    assert info.value.causes[0].field == "metadata.name"


async def test_kind_without_status_subresource_bumps_generation_on_data(client: SqliteClient) -> None:
    cm = await client.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    )
    cm["data"] = {"a": "2"}
    updated = await client.update(cm)
    assert updated["metadata"]["generation"] == 2
    assert (await client.get(CONFIG_MAP, "c"))["data"] == {"a": "2"}
