"""Watch: ordering, since, DELETED state, filters, Expired, in-process wake-ups."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bobrapet.api.errors import BadRequest, StatusError
from bobrapet.api.kinds import STEP_RUN, STORY
from bobrapet.store.client import WatchEvent
from bobrapet.store.sqlite import SqliteClient

from .store_helpers import step_run, story


async def take(stream: AsyncIterator[WatchEvent], count: int, timeout: float = 2.0) -> list[WatchEvent]:
    async def collect() -> list[WatchEvent]:
        return [await anext(stream) for _ in range(count)]

    return await asyncio.wait_for(collect(), timeout)


async def bookmark(client: SqliteClient) -> str:
    """A resourceVersion after one unrelated write (``"0"`` would mean "replay current state")."""
    await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "seed-"}})
    return await client.resource_version()


def summary(events: list[WatchEvent]) -> list[tuple[str, str]]:
    return [(e.type, e.object["metadata"]["name"]) for e in events]


async def test_watch_since_replays_in_order(client: SqliteClient) -> None:
    start = await bookmark(client)
    a = await client.create(story("a"))
    await client.update(dict(a, spec={"steps": []}))
    await client.create(story("b"))
    await client.delete(STORY, "a")
    events = await take(client.watch(STORY, since=start), 4)
    assert summary(events) == [("ADDED", "a"), ("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    versions = [int(e.object["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)


async def test_watch_resumes_after_given_version(client: SqliteClient) -> None:
    first = await client.create(story("a"))
    await client.create(story("b"))
    events = await take(client.watch(STORY, since=first["metadata"]["resourceVersion"]), 1)
    assert summary(events) == [("ADDED", "b")]


async def test_watch_without_since_starts_now(client: SqliteClient) -> None:
    await client.create(story("old"))
    stream = client.watch(STORY)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    await client.create(story("new"))
    event = await asyncio.wait_for(pending, 1.0)
    assert (event.type, event.object["metadata"]["name"]) == ("ADDED", "new")


async def test_watch_since_zero_replays_complete_history(client: SqliteClient) -> None:
    await client.create(story("a"))
    await client.create(story("b"))
    await client.delete(STORY, "a")
    stream = client.watch(STORY, since="0")
    assert summary(await take(stream, 3)) == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    await client.create(story("c"))
    assert summary(await take(stream, 1)) == [("ADDED", "c")]


async def test_watch_since_zero_after_pruning_replays_current_state(db_path: Path) -> None:
    async with SqliteClient(db_path, event_retention=3, prune_every=1) as small:
        await small.create(story("a"))
        await small.create(story("b"))
        await small.delete(STORY, "a")
        for i in range(5):
            await small.create(step_run(f"other-{i}", "x"))
        stream = small.watch(STORY, since="0")
        assert summary(await take(stream, 1)) == [("ADDED", "b")]
        await small.create(story("c"))
        assert summary(await take(stream, 1)) == [("ADDED", "c")]


async def test_deleted_event_carries_last_state(client: SqliteClient) -> None:
    obj = await client.create(story("a", metadata={"finalizers": ["f/x"]}))
    start = obj["metadata"]["resourceVersion"]
    await client.update_status(dict(obj, status={"phase": "Done"}))
    await client.delete(STORY, "a")
    marked = await client.get(STORY, "a")
    marked["metadata"]["finalizers"] = []
    await client.update(marked)
    events = await take(client.watch(STORY, since=start), 3)
    assert [e.type for e in events] == ["MODIFIED", "MODIFIED", "DELETED"]
    deleted = events[-1].object
    assert deleted["status"] == {"phase": "Done"}
    assert deleted["metadata"]["deletionTimestamp"]
    assert int(deleted["metadata"]["resourceVersion"]) > int(marked["metadata"]["resourceVersion"])


async def test_cascade_emits_deleted_for_dependents(client: SqliteClient) -> None:
    start = await bookmark(client)
    owner = await client.create(story("owner"))
    child = step_run("child", "a")
    child["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "bubustack.io/v1alpha1",
            "kind": "Story",
            "name": "owner",
            "uid": owner["metadata"]["uid"],
        }
    ]
    await client.create(child)
    await client.delete(STORY, "owner")
    events = await take(client.watch(STEP_RUN, since=start), 2)
    assert summary(events) == [("ADDED", "child"), ("DELETED", "child")]


async def test_watch_filters_kind_and_namespace(client: SqliteClient) -> None:
    start = await bookmark(client)
    await client.create(story("a", namespace="one"))
    await client.create(step_run("s", "x", namespace="one"))
    await client.create(story("b", namespace="two"))
    await client.create(story("c", namespace="one"))
    events = await take(client.watch(STORY, "one", since=start), 2)
    assert summary(events) == [("ADDED", "a"), ("ADDED", "c")]


async def test_watch_sees_another_client_in_same_process_at_once(client: SqliteClient, db_path: Path) -> None:
    stream = client.watch(STORY)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    async with SqliteClient(db_path, poll_interval=30.0) as other:
        await other.create(story("x"))
    event = await asyncio.wait_for(pending, 1.0)
    assert event.object["metadata"]["name"] == "x"


async def test_same_process_write_wakes_watch_without_polling(db_path: Path) -> None:
    async with SqliteClient(db_path, poll_interval=30.0) as slow:
        stream = slow.watch(STORY)
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)
        await slow.create(story("x"))
        event = await asyncio.wait_for(pending, 1.0)
        assert event.type == "ADDED"


async def test_since_older_than_retained_events_is_expired(db_path: Path) -> None:
    async with SqliteClient(db_path, event_retention=5, prune_every=1) as small:
        for i in range(20):
            await small.create(story(f"s{i}"))
        with pytest.raises(StatusError) as info:
            await take(small.watch(STORY, since="1"), 1)
        assert info.value.reason == "Expired"
        assert info.value.code == 410
        assert info.value.to_status()["code"] == 410
        recent = str(int(await small.resource_version()) - 2)
        assert len(await take(small.watch(STORY, since=recent), 2)) == 2


async def test_lagging_watch_expires_instead_of_skipping(db_path: Path) -> None:
    async with SqliteClient(db_path, event_retention=5, prune_every=1) as small:
        stream = small.watch(STORY, since=await bookmark(small))
        for i in range(20):
            await small.create(story(f"s{i}"))
        with pytest.raises(StatusError, match="too old resource version"):
            await take(stream, 1)


async def test_invalid_since_is_bad_request(client: SqliteClient) -> None:
    with pytest.raises(BadRequest, match="invalid resourceVersion 'abc'"):
        client.watch(STORY, since="abc")
    with pytest.raises(BadRequest, match="must be a non-negative integer"):
        client.watch(STORY, since="-3")


async def test_watch_without_since_starts_at_call_time(client: SqliteClient) -> None:
    stream = client.watch(STORY)
    await client.create(story("created-before-first-read"))
    assert summary(await take(stream, 1)) == [("ADDED", "created-before-first-read")]


async def test_close_ends_watch(db_path: Path) -> None:
    store = SqliteClient(db_path)
    stream = store.watch(STORY)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    store.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 1.0)


async def test_change_log_is_pruned_to_retention(db_path: Path) -> None:
    async with SqliteClient(db_path, event_retention=50, prune_every=10) as small:
        for i in range(300):
            await small.create(story(f"s{i}"))
    conn = sqlite3.connect(db_path)
    (count,) = conn.execute("SELECT COUNT(*) FROM events").fetchone()
    (compacted,) = conn.execute("SELECT value FROM meta WHERE key = 'compacted'").fetchone()
    conn.close()
    assert 50 <= count <= 60
    assert compacted == 300 - count


async def test_since_newer_than_the_store_is_expired(tmp_path: Path) -> None:
    """A bookmark from a replaced state file must force a re-list, not silently skip every event
    until the new file's resourceVersions catch up."""
    first_path = tmp_path / "old.db"
    async with SqliteClient(first_path) as first:
        for i in range(5):
            await first.create(story(f"s{i}"))
        bookmark_rv = await first.resource_version()
    async with SqliteClient(tmp_path / "new.db") as replaced:
        await replaced.create(story("fresh"))
        with pytest.raises(StatusError) as info:
            await take(replaced.watch(STORY, since=bookmark_rv), 1)
        assert info.value.code == 410
        assert "re-list" in info.value.message


async def joined(stream: AsyncIterator[WatchEvent], client: SqliteClient, kind_name: str) -> None:
    """Start ``stream`` and let it join the client's feed (it consumes one seed event)."""
    await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "seed-"}})
    if kind_name == "story":
        await client.create(story(f"seed-{id(stream)}"))
    else:
        await client.create(step_run(f"seed-{id(stream)}", "x"))
    assert len(await take(stream, 1)) == 1


async def test_watches_of_every_kind_share_one_change_log_reader(client: SqliteClient) -> None:
    stories, steps = client.watch(STORY), client.watch(STEP_RUN)
    await joined(stories, client, "story")
    await joined(steps, client, "steprun")
    await asyncio.sleep(0.01)
    reads = client.feed.reads
    for i in range(5):
        await client.create(story(f"a{i}"))
        await client.create(step_run(f"s{i}", "x"))
        await asyncio.sleep(0)
    assert summary(await take(stories, 5)) == [("ADDED", f"a{i}") for i in range(5)]
    assert summary(await take(steps, 5)) == [("ADDED", f"s{i}") for i in range(5)]
    # one query per wake-up for both kinds (a reader per kind would need one per kind and write)
    assert client.feed.reads - reads <= 5


async def test_a_watch_catching_up_joins_the_running_feed_without_gaps(client: SqliteClient) -> None:
    live = client.watch(STORY)
    await joined(live, client, "story")
    start = await client.resource_version()
    for i in range(600):  # more than one batch of the change log
        await client.create(story(f"s{i:03d}"))
    late = client.watch(STORY, since=start)
    first = await take(late, 1)  # reading its backlog while the feed moves on
    for i in range(600, 610):
        await client.create(story(f"s{i:03d}"))
        await asyncio.sleep(0)
    rest = await take(late, 609)
    names = [n for _, n in summary(first + rest)]
    assert names == [f"s{i:03d}" for i in range(610)]
    assert [n for _, n in summary(await take(live, 610))] == names
    await client.create(story("after"))
    assert summary(await take(late, 1)) == summary(await take(live, 1)) == [("ADDED", "after")]


async def test_a_joined_watch_expires_when_the_feed_falls_behind_the_pruning(db_path: Path) -> None:
    async with SqliteClient(db_path, event_retention=5, prune_every=1) as small:
        stream = small.watch(STORY)
        await joined(stream, small, "story")
        for i in range(20):  # no await yields here: the feed cannot read in between
            await small.create(story(f"s{i}"))
        with pytest.raises(StatusError, match="too old resource version") as info:
            await take(stream, 1)
        assert info.value.code == 410


async def test_the_feed_stops_when_no_watch_is_left(client: SqliteClient) -> None:
    stream = client.watch(STORY)
    await joined(stream, client, "story")
    assert client.feed.running
    await stream.aclose()  # type: ignore[attr-defined]
    await client.create(story("wake"))
    await asyncio.sleep(0.05)
    assert not client.feed.running
    again = client.watch(STORY)
    await client.create(story("next"))
    assert summary(await take(again, 1)) == [("ADDED", "next")]
