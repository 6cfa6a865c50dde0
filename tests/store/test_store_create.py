"""Create semantics of the embedded store (uid, resourceVersion, generation, names, errors)."""

from __future__ import annotations

import asyncio
import copy
import re
import uuid

import pytest

from bobrapet.api.errors import AlreadyExists, BadRequest, Invalid
from bobrapet.api.kinds import ENGRAM_TEMPLATE, SECRET, STORY
from bobrapet.store.sqlite import SqliteClient
from bobrapet.store.sqlite import client as client_module

from .store_helpers import FakeClock, owned_by, step_run, story


async def test_create_assigns_uid_rv_generation_and_timestamp(client: SqliteClient) -> None:
    created = await client.create(story("a"))
    meta = created["metadata"]
    assert uuid.UUID(meta["uid"]).version == 4
    assert meta["resourceVersion"].isdigit()
    assert meta["generation"] == 1
    assert meta["creationTimestamp"] == "2026-11-30T05:00:00Z"
    assert meta["namespace"] == "default"
    assert await client.get(STORY, "a") == created


async def test_resource_versions_are_monotonic_and_uids_unique(client: SqliteClient) -> None:
    created = [await client.create(story(f"s{i}")) for i in range(5)]
    versions = [int(o["metadata"]["resourceVersion"]) for o in created]
    assert versions == sorted(versions)
    assert len(set(versions)) == 5
    assert len({o["metadata"]["uid"] for o in created}) == 5
    assert await client.resource_version() == str(versions[-1])


async def test_creation_timestamp_follows_injected_clock(client: SqliteClient, clock: FakeClock) -> None:
    clock.advance(3661.9)
    created = await client.create(story("a"))
    assert created["metadata"]["creationTimestamp"] == "2026-11-30T06:01:01Z"


async def test_create_ignores_client_supplied_system_fields(client: SqliteClient) -> None:
    body = story(
        "a",
        metadata={
            "uid": "mine",
            "generation": 7,
            "creationTimestamp": "2000-01-01T00:00:00Z",
            "deletionTimestamp": "2000-01-01T00:00:00Z",
        },
    )
    created = await client.create(body)
    meta = created["metadata"]
    assert meta["uid"] != "mine"
    assert meta["generation"] == 1
    assert meta["creationTimestamp"] == "2026-11-30T05:00:00Z"
    assert "deletionTimestamp" not in meta


async def test_create_with_resource_version_is_rejected(client: SqliteClient) -> None:
    with pytest.raises(BadRequest, match="resourceVersion must not be set"):
        await client.create(story("a", metadata={"resourceVersion": "5"}))
    assert await client.list(STORY) == []


async def test_status_in_create_body_is_dropped(client: SqliteClient) -> None:
    created = await client.create(story("a", status={"phase": "Running"}))
    assert "status" not in created
    assert "status" not in await client.get(STORY, "a")


async def test_caller_object_is_not_mutated_and_results_are_fresh(client: SqliteClient) -> None:
    body = story("a")
    original = copy.deepcopy(body)
    created = await client.create(body)
    assert body == original
    created["spec"]["steps"].append({"name": "mutated"})
    created["metadata"]["labels"] = {"x": "y"}
    fetched = await client.get(STORY, "a")
    assert fetched["spec"] == {"steps": [{"name": "a"}]}
    fetched["spec"]["steps"].clear()
    assert (await client.get(STORY, "a"))["spec"] == {"steps": [{"name": "a"}]}


async def test_generate_name_appends_five_allowed_characters(client: SqliteClient) -> None:
    created = await client.create(story(None, metadata={"generateName": "run-"}))
    name = created["metadata"]["name"]
    assert re.fullmatch(r"run-[bcdfghjklmnpqrstvwxz2456789]{5}", name)
    assert created["metadata"]["generateName"] == "run-"
    assert (await client.get(STORY, name))["metadata"]["uid"] == created["metadata"]["uid"]


async def test_generate_name_truncates_long_prefix(client: SqliteClient) -> None:
    created = await client.create(story(None, metadata={"generateName": "x" * 80}))
    assert len(created["metadata"]["name"]) == 63


async def test_generate_name_retries_on_collision(
    client: SqliteClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.create(story("run-bbbbb"))
    names = iter(["run-bbbbb", "run-ccccc"])
    monkeypatch.setattr(client_module, "generate_name", lambda prefix: next(names))
    monkeypatch.setattr("bobrapet.store.sqlite.objectmeta.generate_name", lambda prefix: "run-bbbbb")
    created = await client.create(story(None, metadata={"generateName": "run-"}))
    assert created["metadata"]["name"] == "run-ccccc"


async def test_a_taken_name_allocates_no_resource_version(
    client: SqliteClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await client.create(story("run-bbbbb"))
    writes = client.writes
    with pytest.raises(AlreadyExists):
        await client.create(story("run-bbbbb"))
    assert client.writes == writes
    assert await client.resource_version() == first["metadata"]["resourceVersion"]
    names = iter(["run-bbbbb", "run-ccccc"])
    monkeypatch.setattr(client_module, "generate_name", lambda prefix: next(names))
    monkeypatch.setattr("bobrapet.store.sqlite.objectmeta.generate_name", lambda prefix: "run-bbbbb")
    created = await client.create(story(None, metadata={"generateName": "run-"}))
    assert created["metadata"]["resourceVersion"] == str(int(first["metadata"]["resourceVersion"]) + 1)
    stored = await client.get(STORY, "run-ccccc")
    assert stored == created


async def test_missing_name_and_generate_name_is_invalid(client: SqliteClient) -> None:
    with pytest.raises(Invalid) as info:
        await client.create(story(None))
    assert "metadata.name: name or generateName is required" in info.value.message
    status = info.value.to_status()
    assert status["code"] == 422
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "metadata.name"


@pytest.mark.parametrize("name", ["Upper", "under_score", "-lead", "a" * 254])
async def test_invalid_names_are_rejected(client: SqliteClient, name: str) -> None:
    with pytest.raises(Invalid) as info:
        await client.create(story(name))
    assert info.value.causes[0].field == "metadata.name"


async def test_invalid_namespace_is_rejected(client: SqliteClient) -> None:
    with pytest.raises(Invalid) as info:
        await client.create(story("a", namespace="Bad_NS"))
    assert info.value.causes[0].field == "metadata.namespace"


async def test_non_string_label_value_is_invalid(client: SqliteClient) -> None:
    with pytest.raises(Invalid) as info:
        await client.create(story("a", metadata={"labels": {"replicas": 3}}))
    assert info.value.causes[0].field == "metadata.labels.replicas"


async def test_already_exists_has_kubernetes_status_body(client: SqliteClient) -> None:
    await client.create(story("a"))
    with pytest.raises(AlreadyExists) as info:
        await client.create(story("a"))
    assert info.value.to_status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'stories.bubustack.io "a" already exists',
        "reason": "AlreadyExists",
        "code": 409,
        "details": {"name": "a", "group": "bubustack.io", "kind": "stories"},
    }


async def test_same_name_in_other_namespace_or_kind_is_fine(client: SqliteClient) -> None:
    await client.create(story("a"))
    await client.create(story("a", namespace="other"))
    await client.create(step_run("a", "s"))
    assert len(await client.list(STORY)) == 2
    assert len(await client.list(STORY, "other")) == 1


async def test_cluster_scoped_kind_drops_namespace(client: SqliteClient) -> None:
    created = await client.create(
        {
            "apiVersion": "catalog.bubustack.io/v1alpha1",
            "kind": "EngramTemplate",
            "metadata": {"name": "tpl", "namespace": "ignored"},
            "spec": {"version": "1"},
        }
    )
    assert "namespace" not in created["metadata"]
    assert (await client.get(ENGRAM_TEMPLATE, "tpl", "whatever"))["metadata"]["name"] == "tpl"


async def test_unknown_kind_is_bad_request(client: SqliteClient) -> None:
    expected = re.escape('no matches for kind "Nope" in version "bubustack.io/v1alpha1"')
    with pytest.raises(BadRequest, match=expected):
        await client.create({"apiVersion": "bubustack.io/v1alpha1", "kind": "Nope", "metadata": {}})
    with pytest.raises(BadRequest, match="apiVersion and kind are required"):
        await client.create({"metadata": {"name": "a"}})


async def test_non_json_values_are_bad_request(client: SqliteClient) -> None:
    with pytest.raises(BadRequest, match="not valid JSON"):
        await client.create(story("a", spec={"when": object()}))


async def test_secret_string_data_is_encoded(client: SqliteClient) -> None:
    created = await client.create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"k": "v"}}
    )
    assert created["data"] == {"k": "dg=="}
    assert created["type"] == "Opaque"
    assert "stringData" not in await client.get(SECRET, "creds")


async def test_writes_counter_counts_committed_writes(client: SqliteClient) -> None:
    await client.create(story("a"))
    await client.create(story("b"))
    with pytest.raises(AlreadyExists):
        await client.create(story("a"))
    assert client.writes == 2


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        ({"bad key": "v"}, "metadata.labels"),
        ({"ok": "not valid!"}, "metadata.labels.ok"),
        ({"ok": "v" * 64}, "metadata.labels.ok"),
    ],
)
async def test_invalid_label_keys_and_values_are_rejected(
    client: SqliteClient, labels: dict[str, str], field: str
) -> None:
    with pytest.raises(Invalid) as info:
        await client.create(story("a", metadata={"labels": labels}))
    assert info.value.causes[0].field == field
    assert await client.list(STORY) == []


async def test_owner_reference_requires_identity_fields(client: SqliteClient) -> None:
    with pytest.raises(Invalid) as info:
        await client.create(story("a", metadata={"ownerReferences": [{"uid": "u1"}]}))
    fields = [c.field for c in info.value.causes]
    assert fields == [
        "metadata.ownerReferences[0].apiVersion",
        "metadata.ownerReferences[0].kind",
        "metadata.ownerReferences[0].name",
    ]


async def test_concurrent_creates_of_one_name_admit_exactly_one(client: SqliteClient) -> None:
    results = await asyncio.gather(*(client.create(story("same")) for _ in range(5)), return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, AlreadyExists) for r in results) == 4


async def test_owner_references_allow_only_one_controller(client: SqliteClient) -> None:
    a = await client.create(story("a"))
    b = await client.create(story("b"))
    both = owned_by(story("c"), a, b)
    for ref in both["metadata"]["ownerReferences"]:
        ref["controller"] = True
    with pytest.raises(Invalid) as info:
        await client.create(both)
    assert [c.field for c in info.value.causes] == ["metadata.ownerReferences"]
    assert "Only one reference can have Controller set to true" in info.value.causes[0].message
    assert await client.list(STORY) == [a, b]


async def test_invalid_generate_name_is_reported_on_generate_name(client: SqliteClient) -> None:
    """The user wrote ``generateName``; the error must name it, not only the generated name."""
    with pytest.raises(Invalid) as info:
        await client.create(story(None, metadata={"generateName": "Run_"}))
    fields = [c.field for c in info.value.causes]
    assert fields[0] == "metadata.generateName"
    assert "'Run_'" in info.value.causes[0].message
    assert await client.list(STORY) == []
    created = await client.create(story(None, metadata={"generateName": "run-"}))  # trailing '-' is fine
    assert created["metadata"]["name"].startswith("run-")


async def test_nan_and_infinity_are_bad_request(client: SqliteClient) -> None:
    """JSON has no NaN/Infinity: the Kubernetes API would refuse them, so the store must too
    (otherwise an engram output that works embedded breaks on a cluster)."""
    with pytest.raises(BadRequest, match="NaN"):
        await client.create(story("a", spec={"threshold": float("nan")}))
    created = await client.create(story("a"))
    with pytest.raises(BadRequest, match="Infinity"):
        await client.update_status(dict(created, status={"score": float("inf")}))
    assert await client.get(STORY, "a") == created
