"""Metrics of an engine process: recorded at decisions, exposed in the Prometheus format."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bobrapet.api.kinds import STORY
from bobrapet.runtime import metrics
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.metrics import Metrics
from bobrapet.runtime.request import Request, Result


def sample(recorder: Metrics, name: str, labels: dict[str, str]) -> float | None:
    value = recorder.registry.get_sample_value(name, labels)
    return None if value is None else float(value)


def test_metrics_are_off_until_enabled() -> None:
    """A command that never enables metrics neither records nor imports prometheus_client."""
    code = (
        "import sys; import bobrapet.host.engine_host; from bobrapet.runtime import metrics; "
        "assert metrics.current() is None; assert 'prometheus_client' not in sys.modules; "
        "assert metrics.enable() is metrics.enable() is metrics.current()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_run_and_step_outcomes_are_counted_once() -> None:
    recorder = Metrics()
    run = {"metadata": {"namespace": "ns"}, "spec": {"storyRef": {"name": "s"}}}
    status = {
        "phase": "Succeeded",
        "startedAt": "2026-01-01T00:00:00Z",
        "finishedAt": "2026-01-01T00:00:02.5Z",
    }
    recorder.run_finished(run, status)
    labels = {"namespace": "ns", "story": "s", "phase": "Succeeded"}
    assert sample(recorder, "bobrapet_storyruns_total", labels) == 1
    assert sample(recorder, "bobrapet_storyrun_duration_seconds_sum", labels) == 2.5

    step = {"metadata": {"namespace": "ns"}, "spec": {"engramRef": {"name": "e"}}}
    recorder.step_recorded(
        step, {"phase": "Running"}, {"phase": "Pending", "retries": 1, "exitClass": "retry"}
    )
    recorder.step_recorded(step, {"phase": "Running", "retries": 1}, {"phase": "Failed", "retries": 1})
    recorder.step_recorded(step, {"phase": "Failed"}, {"phase": "Failed"})  # already terminal: not again
    assert (
        sample(
            recorder, "bobrapet_steprun_retries_total", {"namespace": "ns", "engram": "e", "reason": "retry"}
        )
        == 1
    )
    assert (
        sample(recorder, "bobrapet_stepruns_total", {"namespace": "ns", "engram": "e", "phase": "Failed"})
        == 1
    )


def test_state_gauges_are_read_at_scrape_time() -> None:
    recorder = Metrics()
    depth = [3]
    recorder.observe_state("bobrapet_storyrun_queue_depth", "Queued runs.", lambda: depth[0])
    recorder.observe_state("bobrapet_broken", "Unreadable.", lambda: 1 / 0)
    assert "bobrapet_storyrun_queue_depth 3.0" in recorder.exposition().decode()
    depth[0] = 0
    text = recorder.exposition().decode()
    assert "bobrapet_storyrun_queue_depth 0.0" in text and "bobrapet_broken" not in text


async def test_reconciles_are_counted_by_result(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Metrics()
    monkeypatch.setattr(metrics, "_metrics", recorder)
    outcomes = iter([Result(), Result(requeue_after=5), RuntimeError("boom")])

    async def reconcile(request: Request) -> Result:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    controller = Controller("story", STORY, reconcile)
    for _ in range(3):
        await controller._process(Request("ns", "x"))
    for result in ("success", "requeue_after", "error"):
        assert (
            sample(recorder, "bobrapet_controller_reconcile_total", {"controller": "story", "result": result})
            == 1
        )
    assert sample(recorder, "bobrapet_controller_reconcile_errors_total", {"controller": "story"}) == 1
    assert (
        sample(recorder, "bobrapet_controller_reconcile_duration_seconds_count", {"controller": "story"}) == 3
    )
