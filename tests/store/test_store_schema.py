"""The database file: WAL mode, reopening, schema versions, lifecycle of a client."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bobrapet.api.errors import StatusError
from bobrapet.api.kinds import STORY
from bobrapet.store.client import Client
from bobrapet.store.sqlite import SqliteClient
from bobrapet.store.sqlite.schema import SCHEMA_VERSION

from .store_helpers import story


async def test_file_is_created_in_wal_mode(db_path: Path) -> None:
    async with SqliteClient(db_path):
        pass
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_reopening_keeps_objects_and_versions(db_path: Path) -> None:
    async with SqliteClient(db_path) as first:
        created = await first.create(story("a"))
    async with SqliteClient(db_path) as second:
        assert await second.get(STORY, "a") == created
        later = await second.create(story("b"))
    assert int(later["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


async def test_newer_schema_is_refused_with_a_clear_message(db_path: Path) -> None:
    async with SqliteClient(db_path):
        pass
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StatusError, match="written by a newer bobrapet"):
        SqliteClient(db_path)


async def test_closed_client_refuses_calls(db_path: Path) -> None:
    store = SqliteClient(db_path)
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(StatusError, match="is closed"):
        await store.get(STORY, "a")


async def test_sqlite_client_satisfies_the_client_protocol(db_path: Path) -> None:
    async with SqliteClient(db_path) as store:
        protocol_view: Client = store  # checked statically by mypy
        assert await protocol_view.list(STORY) == []


async def test_busy_database_is_a_clear_status_error_and_writes_nothing(db_path: Path) -> None:
    async with SqliteClient(db_path, busy_timeout=0.2) as client:
        await client.create(story("a"))
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        try:
            with pytest.raises(StatusError) as info:
                await client.create(story("b"))
            assert info.value.reason == "ServiceUnavailable"
            assert info.value.code == 503
            assert str(db_path) in info.value.message and "busy" in info.value.message
            obj = await client.get(STORY, "a")  # reads still work (WAL)
            with pytest.raises(StatusError, match="busy"):
                await client.update(obj)
            with pytest.raises(StatusError, match="busy"):
                await client.delete(STORY, "a")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert [o["metadata"]["name"] for o in await client.list(STORY)] == ["a"]
        await client.create(story("b"))


async def test_unreadable_state_file_is_a_status_error(tmp_path: Path) -> None:
    bad = tmp_path / "state.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StatusError) as info:
        SqliteClient(bad)
    assert str(bad) in info.value.message


def _as_schema_v1(path: Path, counter: int | None = None) -> int:
    """Turn a current file back into the v1 layout (by-oid indexes, a stored counter)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        (rv,) = conn.execute("SELECT max(rv) FROM events").fetchone()
        conn.execute("CREATE INDEX idx_by_oid ON idx (oid)")
        conn.execute("CREATE INDEX owners_by_oid ON owners (oid)")
        conn.execute("INSERT INTO meta (key, value) VALUES ('rv', ?)", (counter or rv,))
        conn.execute("PRAGMA user_version = 1")
    finally:
        conn.close()
    return int(counter or rv)


def _index_names(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()


async def test_v1_file_is_migrated_and_keeps_its_versions(db_path: Path) -> None:
    async with SqliteClient(db_path) as first:
        await first.create(story("a", metadata={"labels": {"x": "1"}}))
        bookmark = await first.resource_version()
        await first.create(story("b"))
    last = _as_schema_v1(db_path)
    async with SqliteClient(db_path) as second:
        assert await second.resource_version() == str(last)
        events = []
        async for event in second.watch(STORY, since=bookmark):
            events.append(event)
            break
        assert [e.object["metadata"]["name"] for e in events] == ["b"]
        created = await second.create(story("c"))
        assert created["metadata"]["resourceVersion"] == str(last + 1)
        await second.delete(STORY, "a")
        assert await second.list(STORY, labels="x=1") == []
    assert not {"idx_by_oid", "owners_by_oid"} & _index_names(db_path)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT key FROM meta").fetchall() == [("compacted",)]
    conn.close()


async def test_v1_counter_ahead_of_its_log_is_never_reused(db_path: Path) -> None:
    async with SqliteClient(db_path) as first:
        await first.create(story("a"))
    ahead = _as_schema_v1(db_path, counter=40)
    async with SqliteClient(db_path) as second:
        assert await second.resource_version() == str(ahead)
        assert (await second.create(story("b")))["metadata"]["resourceVersion"] == str(ahead + 1)


async def test_versions_stay_monotonic_when_the_log_keeps_nothing(db_path: Path) -> None:
    async with SqliteClient(db_path, event_retention=0, prune_every=1) as small:
        created = [await small.create(story(f"s{i}")) for i in range(5)]
    versions = [int(obj["metadata"]["resourceVersion"]) for obj in created]
    async with SqliteClient(db_path, event_retention=0, prune_every=1) as again:
        assert await again.resource_version() == str(versions[-1])
        later = await again.create(story("t"))
    assert versions == sorted(set(versions))
    assert int(later["metadata"]["resourceVersion"]) == versions[-1] + 1


async def test_wal_is_checkpointed_off_the_writer_thread(db_path: Path) -> None:
    async with SqliteClient(db_path, checkpoint_every=5) as client:
        checkpointer = client._checkpointer
        assert checkpointer is not None
        for i in range(4):
            await client.create(story(f"s{i}"))
        assert checkpointer._thread is None  # a short-lived client never starts the thread
        for i in range(4, 40):
            await client.create(story(f"s{i}"))
        deadline = asyncio.get_running_loop().time() + 10
        while checkpointer.runs == 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert checkpointer.runs > 0
        thread = checkpointer._thread
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()
    async with SqliteClient(db_path, checkpoint_every=None) as plain:
        assert plain._checkpointer is None
        assert len(await plain.list(STORY)) == 40
