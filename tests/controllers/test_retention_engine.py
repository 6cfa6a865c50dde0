"""TTL and retention act while an engine runs (not only when a later engine starts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from tests.controllers.ctrl_objects import engram, engram_template, step, story, story_run
from tests.controllers.fakes import EchoExecutor

from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import STEP_RUN, STORY_RUN
from bobrapet.api.timestamps import format_timestamp
from bobrapet.controllers.execution import ExecutionEnv
from bobrapet.controllers.registry import setup_all
from bobrapet.engine.config import EngineConfig
from bobrapet.executors.local import LocalExecutor
from bobrapet.executors.logpath import inputs_log_path, step_log_path
from bobrapet.runtime.lease import EngineLease
from bobrapet.runtime.manager import Manager
from bobrapet.store.sqlite import SqliteClient

pytestmark = pytest.mark.slow


CONFIG = EngineConfig(child_ttl_seconds=0.5, retention_seconds=1.0, requeue_base_delay=600.0)


@pytest.fixture
async def engine(client: SqliteClient, tmp_path: Path) -> AsyncIterator[Manager]:
    lease = EngineLease(tmp_path / "engines")
    lease.acquire()
    env = ExecutionEnv(
        executor=cast(LocalExecutor, EchoExecutor()),
        lease=lease,
        home=tmp_path,
        workdir=tmp_path,
        config=CONFIG,
    )
    manager = Manager(client, settle=0.05)
    setup_all(manager, execution=env)
    async with manager:
        yield manager
    lease.release()


async def _gone(manager: Manager, client: SqliteClient, name: str) -> bool:
    async def done() -> bool:
        try:
            await client.get(STORY_RUN, name, "default")
        except NotFound:
            return True
        return False

    return await manager.run_until(done, timeout=20)


async def test_children_then_run_are_deleted_on_schedule(
    client: SqliteClient, engine: Manager, tmp_path: Path
) -> None:
    await client.create(engram_template("tpl", image=None, entrypoint="m:f"))
    await client.create(engram("e"))
    await client.create(story("s", [step("a", "e", with_={"x": 1})]))
    logs = [step_log_path(tmp_path, "default", "r-a"), inputs_log_path(tmp_path, "default", "r")]
    for path in logs:  # what the executor writes (the test executor writes nothing)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    await client.create(story_run("r", "s"))

    async def children_cleaned() -> bool:
        run = await client.get(STORY_RUN, "r", "default")
        return bool((run.get("status") or {}).get("childrenCleanedAt"))

    assert await engine.run_until(children_cleaned, timeout=20)
    assert (await client.get(STORY_RUN, "r", "default"))["status"]["phase"] == "Succeeded"
    assert await client.list(STEP_RUN, "default") == []
    assert not logs[0].exists()  # deleted with its StepRun
    assert await _gone(engine, client, "r")
    assert not logs[1].exists()  # deleted with its run


async def test_a_run_finished_by_another_engine_is_deleted_on_schedule(
    client: SqliteClient, engine: Manager
) -> None:
    """Another process finished the run and exited: this engine must still apply retention."""
    await client.create(story_run("elsewhere", "missing-story"))  # Pending: nothing runs here

    async def pending() -> bool:
        run = await client.get(STORY_RUN, "elsewhere", "default")
        return (run.get("status") or {}).get("phase") == "Pending"

    assert await engine.run_until(pending, timeout=20)
    run = await client.get(STORY_RUN, "elsewhere", "default")
    finished = {**run["status"], "phase": "Succeeded", "finishedAt": format_timestamp(datetime.now(UTC))}
    await client.update_status({**run, "status": finished})
    assert await _gone(engine, client, "elsewhere")
