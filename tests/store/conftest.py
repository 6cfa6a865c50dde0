"""Fixtures for the embedded store tests: a real SQLite file under tmp_path and a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bobrapet.store.sqlite import SqliteClient

from .store_helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


@pytest.fixture
async def client(db_path: Path, clock: FakeClock) -> AsyncIterator[SqliteClient]:
    async with SqliteClient(db_path, clock=clock) as c:
        yield c
