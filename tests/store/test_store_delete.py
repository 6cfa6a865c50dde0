"""Deletion: finalizers and deletionTimestamp, removal, ownerReference cascades."""

from __future__ import annotations

import sqlite3

import pytest

from bobrapet.api.errors import Invalid, NotFound
from bobrapet.api.kinds import CONFIG_MAP, STEP_RUN, STORY, STORY_RUN
from bobrapet.store.sqlite import SqliteClient

from .store_helpers import FakeClock, owned_by, step_run, story


def story_run(name: str) -> dict[str, object]:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StoryRun",
        "metadata": {"name": name},
        "spec": {"storyRef": {"name": "s1"}},
    }


async def test_delete_without_finalizers_removes(client: SqliteClient) -> None:
    await client.create(story("a"))
    await client.delete(STORY, "a")
    with pytest.raises(NotFound):
        await client.get(STORY, "a")


async def test_delete_missing_is_not_found_with_status_body(client: SqliteClient) -> None:
    with pytest.raises(NotFound) as info:
        await client.delete(STORY, "ghost", "ns1")
    assert info.value.to_status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'stories.bubustack.io "ghost" not found',
        "reason": "NotFound",
        "code": 404,
        "details": {"name": "ghost", "group": "bubustack.io", "kind": "stories"},
    }


async def test_core_kind_not_found_message_has_no_group(client: SqliteClient) -> None:
    with pytest.raises(NotFound, match='configmaps "c" not found'):
        await client.get(CONFIG_MAP, "c")


async def test_delete_with_finalizers_sets_deletion_timestamp_once(
    client: SqliteClient, clock: FakeClock
) -> None:
    await client.create(story("a", metadata={"finalizers": ["x/f"]}))
    clock.advance(10)
    await client.delete(STORY, "a")
    marked = await client.get(STORY, "a")
    assert marked["metadata"]["deletionTimestamp"] == "2026-11-30T05:00:10Z"
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 0
    clock.advance(10)
    writes = client.writes
    await client.delete(STORY, "a")
    again = await client.get(STORY, "a")
    assert again == marked
    assert client.writes == writes


async def test_clearing_finalizers_removes_deleting_object(client: SqliteClient) -> None:
    await client.create(story("a", metadata={"finalizers": ["x/f", "y/g"]}))
    await client.delete(STORY, "a")
    obj = await client.get(STORY, "a")
    obj["metadata"]["finalizers"] = ["y/g"]
    still = await client.update(obj)
    assert still["metadata"]["finalizers"] == ["y/g"]
    still["metadata"]["finalizers"] = []
    final = await client.update(still)
    assert final["metadata"]["finalizers"] == []
    with pytest.raises(NotFound):
        await client.get(STORY, "a")


async def test_deleting_object_still_accepts_status_and_spec_updates(client: SqliteClient) -> None:
    await client.create(story("a", metadata={"finalizers": ["x/f"]}))
    await client.delete(STORY, "a")
    obj = await client.get(STORY, "a")
    updated = await client.update_status(dict(obj, status={"phase": "Finalizing"}))
    assert updated["metadata"]["deletionTimestamp"]


async def test_no_new_finalizers_on_deleting_object(client: SqliteClient) -> None:
    await client.create(story("a", metadata={"finalizers": ["x/f"]}))
    await client.delete(STORY, "a")
    obj = await client.get(STORY, "a")
    obj["metadata"]["finalizers"] = ["x/f", "new/one"]
    with pytest.raises(Invalid, match="no new finalizers can be added if the object is being deleted"):
        await client.update(obj)


async def test_cascade_deletes_dependents_multi_level(client: SqliteClient) -> None:
    run = await client.create(story_run("r1"))
    step = await client.create(owned_by(step_run("r1-a", "a"), run))
    cm = await client.create(
        owned_by({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "r1-a-out"}}, step)
    )
    grandchild = await client.create(
        owned_by({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}}, cm)
    )
    unrelated = await client.create(step_run("other", "b"))
    await client.delete(STORY_RUN, "r1")
    assert await client.list(STORY_RUN) == []
    assert [o["metadata"]["name"] for o in await client.list(STEP_RUN)] == ["other"]
    assert await client.list(CONFIG_MAP) == []
    assert grandchild["metadata"]["uid"] != unrelated["metadata"]["uid"]


async def test_cascade_honours_dependent_finalizers(client: SqliteClient) -> None:
    run = await client.create(story_run("r1"))
    await client.create(owned_by(step_run("r1-a", "a", finalizers=["steprun/f"]), run))
    await client.delete(STORY_RUN, "r1")
    step = await client.get(STEP_RUN, "r1-a")
    assert step["metadata"]["deletionTimestamp"]
    step["metadata"]["finalizers"] = []
    await client.update(step)
    assert await client.list(STEP_RUN) == []


async def test_cascade_waits_for_owner_finalizers(client: SqliteClient) -> None:
    run = await client.create(dict(story_run("r1"), metadata={"name": "r1", "finalizers": ["run/f"]}))
    await client.create(owned_by(step_run("r1-a", "a"), run))
    await client.delete(STORY_RUN, "r1")
    assert len(await client.list(STEP_RUN)) == 1
    marked = await client.get(STORY_RUN, "r1")
    marked["metadata"]["finalizers"] = []
    await client.update(marked)
    assert await client.list(STEP_RUN) == []
    assert await client.list(STORY_RUN) == []


async def test_dependent_with_another_live_owner_survives(client: SqliteClient) -> None:
    r1 = await client.create(story_run("r1"))
    r2 = await client.create(story_run("r2"))
    await client.create(owned_by(step_run("shared", "a"), r1, r2))
    await client.delete(STORY_RUN, "r1")
    survivor = await client.get(STEP_RUN, "shared")
    refs = survivor["metadata"]["ownerReferences"]
    assert [r["uid"] for r in refs] == [r2["metadata"]["uid"]]
    await client.delete(STORY_RUN, "r2")
    assert await client.list(STEP_RUN) == []


async def test_delete_is_namespaced(client: SqliteClient) -> None:
    await client.create(story("a", namespace="one"))
    await client.create(story("a", namespace="two"))
    await client.delete(STORY, "a", "one")
    assert [o["metadata"]["namespace"] for o in await client.list(STORY)] == ["two"]


async def test_collect_garbage_removes_objects_whose_owners_are_gone(client: SqliteClient) -> None:
    run = await client.create(story_run("r1"))
    await client.create(owned_by(step_run("live", "a"), run))
    ghost = await client.create(story_run("gone"))
    await client.create(owned_by(step_run("orphan", "a"), ghost))
    await client.create(owned_by(step_run("orphan-kept", "b", finalizers=["f/x"]), ghost))
    # the owner vanishes without a cascade (e.g. state written by an older version)
    raw = sqlite3.connect(client.path, isolation_level=None)
    raw.execute("DELETE FROM objects WHERE uid = ?", (ghost["metadata"]["uid"],))
    raw.close()
    writes = await client.collect_garbage()
    assert writes == 2
    names = sorted(o["metadata"]["name"] for o in await client.list(STEP_RUN))
    assert names == ["live", "orphan-kept"]
    assert (await client.get(STEP_RUN, "orphan-kept"))["metadata"]["deletionTimestamp"]
    assert await client.collect_garbage() == 0


async def test_marking_for_deletion_bumps_generation_once(client: SqliteClient) -> None:
    """Like the API server's markAsDeleting: generation+1 when deletionTimestamp is first set."""
    await client.create(story("a", metadata={"finalizers": ["x/f"]}))
    await client.delete(STORY, "a")
    marked = await client.get(STORY, "a")
    assert marked["metadata"]["generation"] == 2
    await client.delete(STORY, "a")
    assert (await client.get(STORY, "a"))["metadata"]["generation"] == 2
    run = await client.create(story_run("r1"))
    await client.create(owned_by(step_run("r1-a", "a", finalizers=["steprun/f"]), run))
    await client.delete(STORY_RUN, "r1")
    assert (await client.get(STEP_RUN, "r1-a"))["metadata"]["generation"] == 2


async def test_dependent_created_after_its_owner_is_gone_is_collected(client: SqliteClient) -> None:
    """The Kubernetes collector deletes a dependent whose owners are all absent; nothing else calls
    ``collect_garbage`` in embedded mode, so the store must not keep such orphans (a StepRun of a
    deleted StoryRun would otherwise live, and run, forever)."""
    run = await client.create(story_run("r1"))
    await client.delete(STORY_RUN, "r1")
    stream = client.watch(STEP_RUN)
    created = await client.create(owned_by(step_run("r1-a", "a"), run))
    assert created["metadata"]["uid"]
    with pytest.raises(NotFound):
        await client.get(STEP_RUN, "r1-a")
    assert [(e.type, e.object["metadata"]["name"]) for e in [await anext(stream), await anext(stream)]] == [
        ("ADDED", "r1-a"),
        ("DELETED", "r1-a"),
    ]
    # a finalizer only marks it; another live owner keeps it (the dangling reference is dropped)
    await client.create(owned_by(step_run("r1-b", "b", finalizers=["steprun/f"]), run))
    assert (await client.get(STEP_RUN, "r1-b"))["metadata"]["deletionTimestamp"]
    live = await client.create(story_run("r2"))
    await client.create(owned_by(step_run("r1-c", "c"), live, run))
    kept = await client.get(STEP_RUN, "r1-c")
    assert [r["name"] for r in kept["metadata"]["ownerReferences"]] == ["r2"]
    # an update pointing an object at a vanished owner collects it too
    loose = await client.create(step_run("loose", "d"))
    await client.update(owned_by(loose, run))
    with pytest.raises(NotFound):
        await client.get(STEP_RUN, "loose")
    assert await client.collect_garbage() == 0


def _index_rows(client: SqliteClient) -> tuple[int, int]:
    raw = sqlite3.connect(client.path)
    try:
        (idx,) = raw.execute("SELECT COUNT(*) FROM idx").fetchone()
        (owners,) = raw.execute("SELECT COUNT(*) FROM owners").fetchone()
    finally:
        raw.close()
    return int(idx), int(owners)


async def test_removal_drops_the_stored_index_and_owner_entries(client: SqliteClient) -> None:
    """Entries are removed by key, from the stored state: an update that empties the finalizers
    and changes labels, owners and selectable fields in the same write leaves none behind."""
    run = await client.create(story_run("r1"))
    other = await client.create(story_run("r2"))
    empty = _index_rows(client)
    await client.create(owned_by(step_run("a", "s1", labels={"x": "1"}, finalizers=["f/x"]), run))
    await client.create(owned_by(step_run("b", "s2", labels={"x": "1"}), run))
    await client.delete(STEP_RUN, "a")
    marked = await client.get(STEP_RUN, "a")
    marked["metadata"].update(finalizers=[], labels={"y": "2"})
    marked["metadata"]["ownerReferences"] = owned_by(marked, other)["metadata"]["ownerReferences"]
    marked["spec"]["stepId"] = "renamed"
    await client.update(marked)
    await client.delete(STEP_RUN, "b")
    assert _index_rows(client) == empty
    assert await client.list(STEP_RUN, labels="x=1") == []
    assert await client.list(STEP_RUN, fields="spec.stepId=s1") == []
    # a new object (which may reuse a row id) matches only its own entries
    await client.create(step_run("c", "s3"))
    assert [o["metadata"]["name"] for o in await client.list(STEP_RUN, labels="x")] == []
    assert [o["metadata"]["name"] for o in await client.list(STEP_RUN, fields="spec.stepId=s3")] == ["c"]
