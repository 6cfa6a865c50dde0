"""The database file: WAL mode, reopening, schema versions, lifecycle of a client."""

from __future__ import annotations

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
