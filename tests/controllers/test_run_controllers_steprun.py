"""StepRun controller edge cases: cancellation by another engine, unrecorded outcomes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from bobrapet.api.kinds import STEP_RUN
from bobrapet.controllers import runs
from bobrapet.controllers.attempts import Attempt
from bobrapet.controllers.execution import ExecutionEnv
from bobrapet.controllers.steprun import StepRunReconciler
from bobrapet.execution.request import ExecutionRequest
from bobrapet.executors.local import LocalExecutor
from bobrapet.runtime.lease import EngineLease
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request
from bobrapet.store.sqlite import SqliteClient


class FakeExecutor:
    def __init__(self) -> None:
        self.canceled: list[str] = []

    async def cancel(self, key: str) -> None:
        self.canceled.append(key)

    def reserve(self, request: ExecutionRequest) -> bool:
        return True

    def release(self, key: str) -> None:
        return None


def _step_run(name: str, status: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "default", "labels": {runs.LABEL_STORYRUN: "r"}}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StepRun",
        "metadata": metadata,
        "spec": {"storyRunRef": {"name": "r"}, "stepId": "a", "engramRef": {"name": "e"}},
        "status": status,
    }


def _reconciler(client: SqliteClient, tmp_path: Path, executor: FakeExecutor) -> StepRunReconciler:
    lease = EngineLease(tmp_path / "engines")
    lease.acquire()
    env = ExecutionEnv(executor=cast(LocalExecutor, executor), lease=lease, home=tmp_path, workdir=tmp_path)
    return StepRunReconciler(Manager(client), env)


async def _store(client: SqliteClient, obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.pop("status")
    created = await client.create(obj)
    return await client.update_status({**created, "status": status})


async def test_attempt_canceled_by_another_engine_is_stopped_locally(
    client: SqliteClient, tmp_path: Path
) -> None:
    """Another engine wrote Canceled for our running attempt: our process must still be stopped."""
    executor = FakeExecutor()
    reconciler = _reconciler(client, tmp_path, executor)
    status = {"phase": "Canceled", "podName": reconciler.env.lease.id, "finishedAt": "2026-01-01T00:00:00Z"}
    await _store(client, _step_run("r-a", status, {runs.ANNOTATION_CANCEL: "true"}))
    attempt = Attempt("default/r-a#0", None, None)
    reconciler.attempts[("default", "r-a")] = attempt
    await reconciler(Request("default", "r-a"))
    assert executor.canceled == ["default/r-a#0"]


async def test_outcome_is_recorded_despite_transient_store_errors(
    client: SqliteClient, tmp_path: Path, monkeypatch: Any
) -> None:
    """A failing status write must not leave the StepRun Running (held by a live engine) forever."""
    from datetime import UTC, datetime

    from bobrapet.controllers import attempts
    from bobrapet.execution.request import ExecutionRequest, ExecutionResult

    now = datetime(2026, 1, 1, tzinfo=UTC)

    class Done(FakeExecutor):
        async def run(self, request: ExecutionRequest) -> ExecutionResult:
            return ExecutionResult("Succeeded", {"ok": 1}, 0, None, None, None, [], now, now)

    executor = Done()
    reconciler = _reconciler(client, tmp_path, executor)
    status = {"phase": "Running", "podName": reconciler.env.lease.id, "startedAt": "2026-01-01T00:00:00Z"}
    claimed = await _store(client, _step_run("r-a", status))
    request = ExecutionRequest(
        key="default/r-a#0", entrypoint="m:f", command=None, inputs={}, config={}, env={},
        timeout=10.0, log_path=tmp_path / "log", workdir=tmp_path,
    )  # fmt: skip
    real = client.update_status
    failures = [3]

    async def flaky(obj: dict[str, Any]) -> dict[str, Any]:
        if failures[0] > 0:
            failures[0] -= 1
            raise OSError("database is locked")
        return await real(obj)

    monkeypatch.setattr(client, "update_status", flaky)
    monkeypatch.setattr(attempts, "RECORD_RETRY", 0.001)
    attempt = Attempt("default/r-a#0", None, None)
    reconciler.attempts[("default", "r-a")] = attempt
    await asyncio.wait_for(reconciler.runner.execute(claimed, request, attempt), timeout=5)
    stored = await client.get(STEP_RUN, "r-a", "default")
    assert stored["status"]["phase"] != "Running"  # recorded (a failure may be retried: Pending)
    assert not reconciler.attempts
