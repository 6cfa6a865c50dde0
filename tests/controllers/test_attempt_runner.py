"""The attempt runner is a manager runnable: it owns the running attempts, not the reconciler.

Stopping the manager alone (no reconciler call) cancels the local attempts and leaves their
StepRuns claimed for a takeover; the executor is reached only through the Executor protocol.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.controllers.ctrl_objects import engram, engram_template, step, story, story_run

from bobrapet.api.kinds import STEP_RUN, STORY_RUN
from bobrapet.controllers import attempts
from bobrapet.controllers.attempts import NAME, AttemptRunner
from bobrapet.controllers.execution import ExecutionEnv
from bobrapet.controllers.registry import setup_all
from bobrapet.engine import is_waiting_for_capacity
from bobrapet.execution.request import ExecutionRequest, ExecutionResult
from bobrapet.executors.protocol import Executor, OnStarted
from bobrapet.runtime.lease import EngineLease
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


class SlotExecutor(HangingExecutor):
    """One slot, FIFO: ``reserve`` never finds it free (every attempt waits), ``run`` awaits
    ``on_started`` once the slot is its own; each attempt runs ``seconds`` then succeeds."""

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__()
        self.seconds = seconds
        self.slot = asyncio.Lock()
        self.refused: list[str] = []

    def reserve(self, request: ExecutionRequest) -> bool:
        return False

    async def run(self, request: ExecutionRequest, on_started: OnStarted | None = None) -> ExecutionResult:
        from datetime import UTC, datetime

        async with self.slot:
            if on_started is not None and not await on_started():
                self.refused.append(request.key)
                now = datetime.now(UTC)
                return ExecutionResult("Failed", None, -1, None, None, "canceled", [], now, now)
            self.started.append(request.key)
            begin = datetime.now(UTC)
            await asyncio.sleep(self.seconds)
            return ExecutionResult(
                "Succeeded", {"ok": True}, 0, None, None, None, [], begin, datetime.now(UTC)
            )


async def _run_waiting_chain(
    client: SqliteClient, tmp_path: Path, executor: SlotExecutor, steps: int
) -> list[tuple[str, str, dict[str, Any]]]:
    """Run a chain of ``steps`` steps whose attempts all wait for the executor's one slot;
    return the StepRun writes (event type, name, status) in order."""
    await client.create(engram_template("tpl", image=None, entrypoint="m:f"))
    await client.create(engram("e"))
    chain = [step(f"s{i}", "e", with_={"n": i}, needs=[f"s{i - 1}"] if i else []) for i in range(steps)]
    await client.create(story("chain", chain))
    watch = client.watch(STEP_RUN, "default")
    await client.create(story_run("r", "chain"))
    lease = EngineLease(tmp_path / "engines")
    lease.acquire()
    env = ExecutionEnv(executor=executor, lease=lease, home=tmp_path, workdir=tmp_path)
    manager = Manager(client, settle=0.05)
    setup_all(manager, execution=env)
    writes: list[tuple[str, str, dict[str, Any]]] = []
    async with manager:

        async def done() -> bool:
            run = await client.get(STORY_RUN, "r", "default")
            return (run.get("status") or {}).get("phase") == "Succeeded"

        assert await manager.run_until(done, timeout=10)
    lease.release()
    async with asyncio.timeout(5):
        async for event in watch:
            writes.append((event.type, event.object["metadata"]["name"], event.object.get("status") or {}))
            if sum(1 for _, _, s in writes if s.get("phase") == "Succeeded") == steps:
                break
    return writes


async def test_steps_that_waited_for_capacity_cost_no_running_write(
    client: SqliteClient, tmp_path: Path
) -> None:
    """A quick step that waited for a slot goes from WaitingForCapacity to its outcome: its
    StepRun is written twice (the claimed create and the outcome), as a step that did not wait."""
    executor = SlotExecutor()
    writes = await _run_waiting_chain(client, tmp_path, executor, 3)
    assert executor.started == ["default/r-s0#0", "default/r-s1#0", "default/r-s2#0"]
    for name in ("r-s0", "r-s1", "r-s2"):
        mine = [(kind, status) for kind, n, status in writes if n == name]
        assert [kind for kind, _ in mine] == ["ADDED", "MODIFIED"], mine
        created, outcome = (status for _, status in mine)
        assert is_waiting_for_capacity(created)
        assert outcome["phase"] == "Succeeded" and outcome["startedAt"]


async def test_a_step_that_waited_and_still_runs_after_the_hold_is_written_running(
    client: SqliteClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running (since its code started) is written once the attempt has run RUNNING_HOLD."""
    monkeypatch.setattr(attempts, "RUNNING_HOLD", 0.05)
    writes = await _run_waiting_chain(client, tmp_path, SlotExecutor(seconds=0.5), 1)
    assert [(kind, status.get("phase")) for kind, _, status in writes] == [
        ("ADDED", "Pending"),
        ("MODIFIED", "Running"),
        ("MODIFIED", "Succeeded"),
    ]
    running, outcome = writes[1][2], writes[2][2]
    assert running["startedAt"] == outcome["startedAt"]


async def test_a_waiting_attempt_whose_claim_was_taken_does_not_run(
    client: SqliteClient, tmp_path: Path
) -> None:
    """The claim changed after this engine wrote it (here: another holder): nothing runs and
    no outcome is written over the other holder's claim."""
    from bobrapet.controllers.attempts import Attempt
    from bobrapet.controllers.events import EventRecorder
    from bobrapet.engine.steprun import waiting_for_capacity
    from bobrapet.runtime.clock import RealClock

    lease = EngineLease(tmp_path / "engines")
    lease.acquire()
    executor = SlotExecutor()
    env = ExecutionEnv(executor=executor, lease=lease, home=tmp_path, workdir=tmp_path)
    clock = RealClock()
    body = {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StepRun",
        "metadata": {"name": "x", "namespace": "default", "labels": {"bubustack.io/storyrun": "r"}},
        "spec": {"storyRunRef": {"name": "r"}, "stepId": "a", "engramRef": {"name": "e"}},
    }
    await client.create(body)
    now = clock.now()
    mine = await client.update_status(
        {**(await client.get(STEP_RUN, "x", "default")), "status": waiting_for_capacity(
            None, holder=lease.id, message="wait", now=now)}
    )  # fmt: skip
    taken = await client.update_status(
        {**mine, "status": waiting_for_capacity(None, holder="other", message="wait", now=now)}
    )
    cache = {"x": mine}  # the engine's cache has not seen the takeover yet
    runner = AttemptRunner(
        client, clock, env, EventRecorder(client, clock, lease.id), cached=lambda n, ns: cache.get(n)
    )
    request = ExecutionRequest(
        key="default/x#0", entrypoint="m:f", command=None, inputs={}, config={}, env={},
        timeout=10.0, log_path=tmp_path / "log", workdir=tmp_path,
    )  # fmt: skip
    cache["x"] = taken  # ... now it has
    await runner.execute(mine, request, Attempt(request.key, None, None, mine), waiting=True)
    assert executor.refused == ["default/x#0"] and not executor.started
    assert (await client.get(STEP_RUN, "x", "default"))["status"]["podName"] == "other"
    lease.release()
