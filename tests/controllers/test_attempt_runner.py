"""The attempt runner is a manager runnable: it owns the running attempts, not the reconciler.

Stopping the manager alone (no reconciler call) cancels the local attempts and leaves their
StepRuns claimed for a takeover; the executor is reached only through the Executor protocol.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.controllers.ctrl_objects import engram, engram_template, step, story, story_run

from bobrapet.api.kinds import STEP_RUN
from bobrapet.controllers.attempts import NAME, AttemptRunner
from bobrapet.controllers.execution import ExecutionEnv
from bobrapet.controllers.registry import setup_all
from bobrapet.execution.request import ExecutionRequest, ExecutionResult
from bobrapet.executors.local.lease import EngineLease
from bobrapet.executors.protocol import Executor, OnStarted
from bobrapet.runtime.manager import Manager
from bobrapet.store.sqlite import SqliteClient


class HangingExecutor:
    """A complete :class:`Executor` whose attempts run until canceled."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.canceled_tasks: list[str] = []
        self.reserved: list[str] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @property
    def capacity(self) -> tuple[int, int]:
        return len(self.reserved), 8

    def reserve(self, request: ExecutionRequest) -> bool:
        self.reserved.append(request.key)
        return True

    def release(self, key: str) -> None:
        return None

    async def run(self, request: ExecutionRequest, on_started: OnStarted | None = None) -> ExecutionResult:
        self.started.append(request.key)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.canceled_tasks.append(request.key)
            raise
        raise AssertionError("unreachable")

    async def cancel(self, key: str) -> None:
        return None


async def test_manager_stop_cancels_attempts_and_keeps_the_claim(
    client: SqliteClient, tmp_path: Path
) -> None:
    await client.create(engram_template("tpl", image=None, entrypoint="m:f"))
    await client.create(engram("e"))
    await client.create(story("s", [step("a", "e", with_={"n": 1})]))
    await client.create(story_run("r", "s"))
    lease = EngineLease(tmp_path / "engines")
    lease.acquire()
    executor = HangingExecutor()
    typed: Executor = executor  # the fake satisfies the protocol (checked by the type checker)
    env = ExecutionEnv(executor=typed, lease=lease, home=tmp_path, workdir=tmp_path)
    manager = Manager(client, settle=0.05)
    setup_all(manager, execution=env)
    runner = manager.runnable(NAME)
    assert isinstance(runner, AttemptRunner)
    async with manager:

        async def running() -> bool:
            return bool(executor.started) and bool(runner.attempts)

        assert await manager.run_until(running, timeout=5)
        [attempt] = runner.attempts.values()
        assert attempt.task is not None and not attempt.task.done()
    # Manager.stop (the context exit) stopped the runner: the attempt's task ended
    assert attempt.task.done()
    assert executor.canceled_tasks == executor.started == ["default/r-a#0"]
    assert not runner.attempts
    lease.release()
    [held] = await client.list(STEP_RUN, "default")
    assert held["status"]["phase"] == "Running"
    assert held["status"]["podName"] == lease.id


async def test_runner_refuses_work_after_stop(client: SqliteClient, tmp_path: Path) -> None:
    """A hand-over racing with the engine's exit gives the slot back and leaves the claim."""
    from bobrapet.controllers.attempts import Attempt
    from bobrapet.controllers.events import EventRecorder
    from bobrapet.runtime.clock import RealClock

    lease = EngineLease(tmp_path / "engines")
    lease.acquire()
    released: list[str] = []

    class Releasing(HangingExecutor):
        def release(self, key: str) -> None:
            released.append(key)

    env = ExecutionEnv(executor=Releasing(), lease=lease, home=tmp_path, workdir=tmp_path)
    clock = RealClock()
    runner = AttemptRunner(client, clock, env, EventRecorder(client, clock, lease.id))
    await runner.start()
    await runner.stop()
    request = ExecutionRequest(
        key="default/x#0", entrypoint="m:f", command=None, inputs={}, config={}, env={},
        timeout=10.0, log_path=tmp_path / "log", workdir=tmp_path,
    )  # fmt: skip
    stored: dict[str, Any] = {"metadata": {"name": "x", "namespace": "default"}}
    runner.submit(stored, request, Attempt(request.key, None, None, stored), waiting=False)
    assert released == ["default/x#0"] and not runner.attempts
    lease.release()
