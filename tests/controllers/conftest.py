"""Fixtures for controller tests: a real SQLite store and a helper that runs every
controller until the manager is idle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bobrapet.controllers.registry import setup_all
from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.manager import Manager
from bobrapet.store.sqlite import SqliteClient

Settle = Callable[[], Awaitable[None]]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[SqliteClient]:
    store = SqliteClient(tmp_path / "state.db")
    yield store
    store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settle(client: SqliteClient, clock: FakeClock) -> Settle:
    """Start a manager with every controller, wait until idle, stop it."""

    async def run() -> None:
        manager = Manager(client, clock=clock, settle=0.05)
        setup_all(manager)
        async with manager:
            assert await manager.wait_idle(timeout=20), "controllers did not settle"

    return run


@pytest.fixture
async def running(client: SqliteClient, clock: FakeClock) -> AsyncIterator[Manager]:
    """A manager with every controller, running for the whole test."""
    manager = Manager(client, clock=clock, settle=0.05)
    setup_all(manager)
    async with manager:
        assert await manager.wait_idle(timeout=20)
        yield manager


async def settled_after_debounce(manager: Manager, clock: FakeClock) -> None:
    """Settle controllers whose watches debounce (on the fake clock): move time on until idle."""
    quiet = 0
    for _ in range(200):
        clock.advance(1.0)
        quiet = quiet + 1 if await manager.wait_idle(timeout=0.1) else 0
        if quiet == 3:
            return
    raise AssertionError("controllers did not settle")
