"""StoryRun controller edge cases, driven by a Manager on the real SQLite store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from tests.controllers.ctrl_objects import engram, engram_template, step, story, story_run
from tests.controllers.fakes import EchoExecutor

from bobrapet.api.kinds import STORY_RUN
from bobrapet.api.types.enums import TERMINAL_PHASES
from bobrapet.controllers.execution import ExecutionEnv
from bobrapet.controllers.registry import setup_all
from bobrapet.execution.request import ExecutionRequest, ExecutionResult
from bobrapet.executors.local import LocalExecutor
from bobrapet.runtime.lease import EngineLease
from bobrapet.runtime.manager import Manager
from bobrapet.store.sqlite import SqliteClient

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def engine(client: SqliteClient, tmp_path: Path) -> AsyncIterator[Manager]:
    lease = EngineLease(tmp_path / "engines")
    lease.acquire()
    env = ExecutionEnv(
        executor=cast(LocalExecutor, EchoExecutor()), lease=lease, home=tmp_path, workdir=tmp_path
    )
    manager = Manager(client, settle=0.05)
    setup_all(manager, execution=env)
    async with manager:
        yield manager
    lease.release()


async def _finished(manager: Manager, client: SqliteClient, name: str) -> dict[str, Any]:
    async def done() -> bool:
        run = await client.get(STORY_RUN, name, "default")
        return (run.get("status") or {}).get("phase") in TERMINAL_PHASES

    await manager.run_until(done, timeout=5)
    return await client.get(STORY_RUN, name, "default")


async def test_step_run_name_taken_by_another_run_fails_the_step(
    client: SqliteClient, engine: Manager
) -> None:
    """Run "x" step "y-z" and run "x-y" step "z" both map to StepRun "x-y-z": the second
    run must not take the other run's StepRun for its own (nor wait for it forever)."""
    await client.create(engram_template("tpl", image=None, entrypoint="m:f"))
    await client.create(engram("e"))
    await client.create(story("s1", [step("y-z", "e", with_={"who": "s1"})]))
    await client.create(story("s2", [step("z", "e", with_={"who": "s2"})]))
    await client.create(story_run("x", "s1"))
    first = await _finished(engine, client, "x")
    assert first["status"]["phase"] == "Succeeded"
    await client.create(story_run("x-y", "s2"))
    second = await _finished(engine, client, "x-y")
    assert second["status"].get("phase") in TERMINAL_PHASES, json.dumps(second["status"], indent=1)
    state = second["status"]["stepStates"]["z"]
    assert state["phase"] == "Failed"
    assert "x-y-z" in state["message"]


async def test_deleted_run_stops_being_woken_for_capacity(client: SqliteClient, tmp_path: Path) -> None:
    """A run that held queued steps and was deleted is no longer woken on every StepRun end."""
    from bobrapet.controllers.storyrun import StoryRunReconciler
    from bobrapet.runtime.request import Request

    lease = EngineLease(tmp_path / "engines")
    env = ExecutionEnv(
        executor=cast(LocalExecutor, EchoExecutor()), lease=lease, home=tmp_path, workdir=tmp_path
    )
    reconciler = StoryRunReconciler(Manager(client), env)
    reconciler.queued.add(("default", "gone"))
    await reconciler(Request("default", "gone"))
    assert reconciler.queued_runs({"status": {"phase": "Succeeded"}}) == []


async def test_child_run_name_taken_by_another_run_fails_the_step(
    client: SqliteClient, engine: Manager
) -> None:
    """The same collision for an executeStory child: the step fails instead of waiting forever."""
    await client.create(engram_template("tpl", image=None, entrypoint="m:f"))
    await client.create(engram("e"))
    await client.create(story("leaf", [step("only", "e", with_={"who": "leaf"})]))
    sub = {"storyRef": {"name": "leaf"}}
    await client.create(story("s1", [step("y-z", type="executeStory", with_=sub)]))
    await client.create(story("s2", [step("z", type="executeStory", with_=sub)]))
    await client.create(story_run("x", "s1"))
    assert (await _finished(engine, client, "x"))["status"]["phase"] == "Succeeded"
    await client.create(story_run("x-y", "s2"))
    second = await _finished(engine, client, "x-y")
    assert second["status"].get("phase") in TERMINAL_PHASES, json.dumps(second["status"], indent=1)
    assert second["status"]["stepStates"]["z"]["phase"] == "Failed"


class HangingExecutor(EchoExecutor):
    """Attempts never finish (until the engine stops them)."""

    async def run(self, request: ExecutionRequest) -> ExecutionResult:
        self.requests.append(request)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_engine_stopped_mid_attempt_is_taken_over_by_the_next(
    client: SqliteClient, tmp_path: Path
) -> None:
    """Engine 1 stops while a step runs (its StepRun stays claimed by it); engine 2, with a
    new lease, takes the attempt over and finishes the run."""
    from bobrapet.api.kinds import STEP_RUN

    await client.create(engram_template("tpl", image=None, entrypoint="m:f"))
    await client.create(engram("e"))
    await client.create(story("s", [step("a", "e", with_={"n": 1})]))
    await client.create(story_run("r", "s"))

    first_lease = EngineLease(tmp_path / "engines")
    first_lease.acquire()
    hanging = HangingExecutor()
    env = ExecutionEnv(
        executor=cast(LocalExecutor, hanging), lease=first_lease, home=tmp_path, workdir=tmp_path
    )
    manager = Manager(client, settle=0.05)
    setup_all(manager, execution=env)
    async with manager:

        async def claimed() -> bool:
            found = await client.list(STEP_RUN, "default")
            return any((o.get("status") or {}).get("phase") == "Running" for o in found)

        assert await manager.run_until(claimed, timeout=5)
        step_controller = manager.controller("steprun")
        await manager.stop(grace=1.0)
        await step_controller.reconciler.shutdown()  # type: ignore[attr-defined]
    first_lease.release()
    [held] = await client.list(STEP_RUN, "default")
    assert held["status"]["podName"] == first_lease.id

    second_lease = EngineLease(tmp_path / "engines")
    second_lease.acquire()
    echo = EchoExecutor()
    env = ExecutionEnv(
        executor=cast(LocalExecutor, echo), lease=second_lease, home=tmp_path, workdir=tmp_path
    )
    manager = Manager(client, settle=0.05)
    setup_all(manager, execution=env)
    async with manager:
        final = await _finished(manager, client, "r")
    second_lease.release()
    assert final["status"]["phase"] == "Succeeded", json.dumps(final["status"], indent=1)
    assert len(echo.keys) == 1


class SpyAdmission:
    """The real admission, recording which path each created object took."""

    def __init__(self, client: SqliteClient) -> None:
        self.client = client
        self.full: list[str] = []
        self.short: list[str] = []

    async def __call__(
        self, obj: dict[str, Any], old: dict[str, Any] | None, *, subresource: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        from bobrapet.api.admission import admit

        if old is None:
            self.full.append(obj["kind"])
        result = await admit(obj, old, self.client.lookup, subresource=subresource)
        return result.object, result.warnings

    def admit_trusted(self, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
        from bobrapet.api.admission import admit_trusted

        result = admit_trusted(obj)
        if result is None:
            return None
        self.short.append(obj["kind"])
        return result.object, result.warnings


async def test_engine_built_step_runs_take_the_short_admission_path(
    client: SqliteClient, engine: Manager
) -> None:
    spy = SpyAdmission(client)
    client.admission = spy
    await client.create(engram_template("tpl", image=None, entrypoint="m:f"))
    await client.create(engram("e"))
    await client.create(story("leaf", [step("only", "e", with_={"who": "leaf"})]))
    sub = {"storyRef": {"name": "leaf"}}
    await client.create(
        story("s", [step("a", "e", with_={"who": "s"}), step("b", type="executeStory", with_=sub)])
    )
    await client.create(story_run("x", "s"))
    assert (await _finished(engine, client, "x"))["status"]["phase"] == "Succeeded"
    # x-a and the child run's step; each run's copy of its Story
    assert sorted(spy.short) == ["ConfigMap", "ConfigMap", "StepRun", "StepRun"]
    # users' objects and the child StoryRun (inputs vs the child Story's schema) in full
    assert spy.full.count("StoryRun") == 2 and "StepRun" not in spy.full and "ConfigMap" not in spy.full


async def test_step_progress_is_held_back_and_written_in_batches(
    client: SqliteClient, engine: Manager
) -> None:
    """A chain of quick steps: the run's status mirrors each step's end, but that progress is
    written together (fewer status writes than steps); the final status shows every step."""
    from bobrapet.controllers.progress_hold import STATUS_HOLD

    await client.create(engram_template("tpl", image=None, entrypoint="m:f"))
    await client.create(engram("e"))
    steps = [step(f"s{i}", "e", with_={"who": str(i)}, needs=[f"s{i - 1}"] if i else []) for i in range(6)]
    await client.create(story("chain", steps))
    watch = client.watch(STORY_RUN, "default")
    await client.create(story_run("c", "chain"))
    final = await _finished(engine, client, "c")
    assert final["status"]["phase"] == "Succeeded"
    phases = {n: s["phase"] for n, s in final["status"]["stepStates"].items()}
    assert phases == {f"s{i}": "Succeeded" for i in range(6)}
    writes = 0
    async with asyncio.timeout(STATUS_HOLD + 2):
        async for event in watch:
            writes += 1
            if (event.object.get("status") or {}).get("phase") == "Succeeded":
                break
    assert writes < 6, f"{writes} StoryRun writes for 6 steps"


def test_held_status_is_dropped_when_someone_else_writes_the_status() -> None:
    from bobrapet.controllers.progress_hold import HeldStatus, ProgressHold
    from bobrapet.runtime.clock import FakeClock

    progress = ProgressHold(FakeClock())
    base = {"metadata": {"name": "r", "resourceVersion": "5"}, "status": {"phase": "Running"}}
    planned = {"phase": "Running", "stepsComplete": 1}
    progress.held[("default", "r")] = HeldStatus(base, planned, due=1e12, at=0.0)
    respec = {**base, "metadata": {"name": "r", "resourceVersion": "6"}}  # a spec write: same status
    assert progress.planned(("default", "r"), respec)["status"] == planned
    other = {"metadata": {"name": "r", "resourceVersion": "7"}, "status": {"phase": "Running", "x": 1}}
    assert progress.planned(("default", "r"), other) is other
    assert ("default", "r") not in progress.held


def test_the_progress_hold_grows_while_many_runs_hold_progress() -> None:
    """Hundreds of runs in flight: each run's first held change waits longer (their progress
    writes stay about PROGRESS_WRITE_RATE a second), as the load is when the run is planned."""
    from tests.engine.harness import make_story

    from bobrapet.controllers.progress_hold import (
        MAX_STATUS_HOLD,
        PROGRESS_WRITE_RATE,
        STATUS_HOLD,
        HeldStatus,
        ProgressHold,
    )
    from bobrapet.engine import Plan, compile_graph
    from bobrapet.runtime.clock import FakeClock

    graph = compile_graph(make_story({"steps": [{"name": "a", "ref": {"name": "e"}}]}))
    clock = FakeClock()
    progress = ProgressHold(clock)
    stored = {"metadata": {"name": "r", "resourceVersion": "5"}, "status": {"phase": "Running"}}
    pending = {"phase": "Running", "stepStates": {"a": {"phase": "Pending"}}}
    running = {"phase": "Running", "stepStates": {"a": {"phase": "Running"}}}
    assert progress.limit() == STATUS_HOLD
    assert progress.hold(("default", "r"), stored, stored["status"], Plan(pending), graph) == STATUS_HOLD
    others = int(PROGRESS_WRITE_RATE * 3)  # three seconds of progress writes at that rate
    for i in range(others):
        progress.held[("default", f"o{i}")] = HeldStatus(stored, pending, due=1e12, at=0.0)
    assert progress.limit() == pytest.approx((others + 1) / PROGRESS_WRITE_RATE)
    clock.advance(0.5)
    # planned again under that load: its deadline moves, counted from its first held change
    wait = progress.hold(("default", "r"), stored, pending, Plan(running), graph)
    assert wait == pytest.approx(progress.limit() - 0.5)
    for i in range(others, int(PROGRESS_WRITE_RATE * MAX_STATUS_HOLD * 2)):
        progress.held[("default", f"o{i}")] = HeldStatus(stored, pending, due=1e12, at=0.0)
    assert progress.limit() == MAX_STATUS_HOLD


async def _with_due_held_status(
    client: SqliteClient, tmp_path: Path, status: dict[str, Any], *, timed: bool
) -> Any:
    """A reconciler (fake clock) holding ``status`` for run ``r``, due now."""
    from bobrapet.controllers.progress_hold import HeldStatus
    from bobrapet.controllers.storyrun import StoryRunReconciler
    from bobrapet.runtime.clock import FakeClock

    await client.create(story("s", [step("a", "e")]))
    stored = await client.create(story_run("r", "s"))
    clock = FakeClock()
    executor = cast(LocalExecutor, EchoExecutor())
    env = ExecutionEnv(executor=executor, lease=EngineLease(tmp_path / "e"), home=tmp_path, workdir=tmp_path)
    reconciler = StoryRunReconciler(Manager(client, clock=clock), env)
    now = clock.monotonic()
    reconciler.progress.held[("default", "r")] = HeldStatus(stored, status, due=now, at=now, timed=timed)
    return reconciler


async def test_a_due_held_status_with_nothing_new_is_written_without_planning(
    client: SqliteClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bobrapet.controllers.storyrun as storyrun_controller
    from bobrapet.runtime.request import Request

    planned = {"phase": "Running", "stepsComplete": 1}
    reconciler = await _with_due_held_status(client, tmp_path, planned, timed=False)

    def no_planning(snapshot: Any) -> Any:
        raise AssertionError("planned again")

    monkeypatch.setattr(storyrun_controller, "make_plan", no_planning)
    await reconciler(Request("default", "r"))
    assert (await client.get(STORY_RUN, "r", "default"))["status"] == planned
    assert ("default", "r") not in reconciler.progress.held


async def test_a_held_status_whose_plan_has_a_timer_is_planned_again(
    client: SqliteClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flush shortcut would drop the plan's timer (a sleep, a timeout): plan again."""
    import bobrapet.controllers.storyrun as storyrun_controller
    from bobrapet.runtime.request import Request

    reconciler = await _with_due_held_status(client, tmp_path, {"phase": "Running"}, timed=True)
    planned: list[Any] = []
    real = storyrun_controller.make_plan

    def spy(snapshot: Any) -> Any:
        planned.append(snapshot)
        return real(snapshot)

    monkeypatch.setattr(storyrun_controller, "make_plan", spy)
    await reconciler(Request("default", "r"))
    assert planned


async def test_step_run_created_but_not_cached_yet_is_not_created_again(
    client: SqliteClient, tmp_path: Path
) -> None:
    """A plan made before the StepRun cache caught up with this engine's own creation asks to
    create it again: that creation is left out (it would only find the StepRun) and the run
    is planned again before the StepRun would be created anyway; an event showing the
    StepRun, or a deletion by a plan, ends that."""
    from bobrapet.controllers.story_snapshots import RunStory
    from bobrapet.controllers.storyrun import UNSEEN_TTL, StoryRunReconciler
    from bobrapet.engine import NewStepRun, Plan

    lease = EngineLease(tmp_path / "engines")
    env = ExecutionEnv(
        executor=cast(LocalExecutor, EchoExecutor()), lease=lease, home=tmp_path, workdir=tmp_path
    )
    reconciler = StoryRunReconciler(Manager(client), env)
    created: list[str] = []

    async def create(body: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
        created.append(body["metadata"]["name"])
        return await client.create(body, trusted=True)

    reconciler.create_step_run = create
    run = await client.create(story_run("r", "s"))
    new = NewStepRun(name="r-a", step_id="a", spec={"stepId": "a"}, labels={"bubustack.io/storyrun": "r"})

    def plan() -> Plan:
        return Plan(status=dict(run.get("status") or {}), create_step_runs=[new])

    await reconciler._apply(run, run, plan(), RunStory("default", "s", None))
    assert created == ["r-a"]  # the cache (not started) does not have it: remembered as unseen
    relaunch, hold = await reconciler._apply(run, run, plan(), RunStory("default", "s", None))
    assert created == ["r-a"] and not relaunch
    assert hold is not None and hold <= UNSEEN_TTL
    reconciler.step_run_event({"metadata": {"namespace": "default", "name": "r-a"}, "status": {}})
    assert not reconciler.unseen
    reconciler._remember_unseen(("default", "r-a"))
    deleting = Plan(status=dict(run.get("status") or {}), delete_step_runs=["r-a"])
    await reconciler._apply(run, run, deleting, RunStory("default", "s", None))
    assert not reconciler.unseen
