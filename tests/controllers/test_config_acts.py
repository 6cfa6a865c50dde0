"""Configuration keys reach the run controllers: queue priority and priority aging."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from bobrapet.api.phases import StepReason
from bobrapet.api.timestamps import format_timestamp
from bobrapet.controllers.execution import ExecutionEnv
from bobrapet.controllers.storyrun import StoryRunReconciler
from bobrapet.engine.operator_config import parse_settings
from bobrapet.executors.local import LocalExecutor
from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.lease import EngineLease
from bobrapet.runtime.manager import Manager
from bobrapet.store.sqlite import SqliteClient


def _reconciler(
    client: SqliteClient, clock: FakeClock, tmp_path: Path, raw: dict[str, Any]
) -> StoryRunReconciler:
    lease = EngineLease(tmp_path / "engines")
    env = ExecutionEnv(
        executor=cast(LocalExecutor, None),
        lease=lease,
        home=tmp_path,
        workdir=tmp_path,
        config=parse_settings(raw).engine,
    )
    return StoryRunReconciler(Manager(client, clock=clock), env)


def _queued_run(since: str) -> dict[str, Any]:
    state = {
        "phase": "Pending",
        "reason": StepReason.QUEUED,
        "message": "Queued due to capacity",
        "startedAt": since,
    }
    return {
        "metadata": {"name": "r", "namespace": "default", "uid": "u"},
        "status": {"stepStates": {"a": state}},
    }


def test_priority_aging_and_default_priority_come_from_the_configuration(
    client: SqliteClient, clock: FakeClock, tmp_path: Path
) -> None:
    run = _queued_run(format_timestamp(clock.now()))
    clock.advance(30)
    default = _reconciler(client, clock, tmp_path, {})
    assert default._priority(run, None) == 0  # aging 60 s: not a point yet
    tuned = _reconciler(
        client,
        clock,
        tmp_path,
        {"storyrun.queue.default.priority-aging-seconds": 10, "storyrun.queue.default.default-priority": 5},
    )
    assert tuned._priority(run, None) == 5 + 3
