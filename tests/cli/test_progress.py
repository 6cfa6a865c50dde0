"""The progress views, fed with sequences of StoryRun dicts (no engine, no clock)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from bobrapet.cli.progress import (
    GateHint,
    LiveProgress,
    PlainProgress,
    format_seconds,
    open_progress,
    parse_time,
    readable_duration,
    snapshot,
)

T0 = "2026-01-01T00:00:00.100Z"


class Ticks:
    """A fake monotonic clock advanced by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def storyrun(phase: str | None, steps: dict[str, dict[str, Any]], **status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"stepStates": steps, **status}
    if phase:
        body["phase"] = phase
    return {"metadata": {"name": "hello-abc12", "namespace": "default"}, "status": body}


def plain(gates: tuple[str, ...] = ()) -> tuple[PlainProgress, list[str], Ticks]:
    lines: list[str] = []
    clock = Ticks()
    return PlainProgress(lines.append, clock=clock, gates=gates), lines, clock


def test_one_line_per_change_and_nothing_when_unchanged() -> None:
    view, lines, clock = plain()
    view.update(storyrun(None, {}))
    view.update(storyrun("Running", {"fetch": {"phase": "Running"}}))
    view.update(storyrun("Running", {"fetch": {"phase": "Running", "message": "still going"}}))
    clock.now += 0.25
    view.update(
        storyrun(
            "Running",
            {"fetch": {"phase": "Succeeded"}, "store": {"phase": "Running"}},
        )
    )
    view.update(
        storyrun(
            "Succeeded",
            {"fetch": {"phase": "Succeeded"}, "store": {"phase": "Succeeded"}},
            duration="1.5s",
            message="done",
        )
    )
    assert lines == [
        "run hello-abc12 Running",
        "step fetch Running",
        "step fetch Succeeded 0.2s",
        "step store Running",
        "step store Succeeded 0ms",
        "run hello-abc12 Succeeded 1.5s: done",
    ]


def test_sub_second_timestamps_win_over_observation() -> None:
    view, lines, clock = plain()
    view.update(storyrun("Running", {"a": {"phase": "Running"}}))
    clock.now += 5
    view.update(
        storyrun(
            "Running",
            {
                "a": {
                    "phase": "Succeeded",
                    "startedAt": "2026-01-01T00:00:00.100Z",
                    "finishedAt": "2026-01-01T00:00:00.400Z",
                }
            },
        )
    )
    assert lines[-1] == "step a Succeeded 0.3s"


def test_second_precision_timestamps_used_when_never_seen_active() -> None:
    view, lines, _ = plain()
    view.update(
        storyrun(
            "Succeeded",
            {
                "a": {
                    "phase": "Succeeded",
                    "startedAt": "2026-01-01T00:00:00Z",
                    "finishedAt": "2026-01-01T00:01:05Z",
                },
                "b": {"phase": "Skipped"},
            },
        )
    )
    assert lines[:2] == ["step a Succeeded 1m5s", "step b Skipped"]


def test_skipped_step_has_no_duration() -> None:
    view, lines, clock = plain()
    view.update(storyrun("Running", {"b": {"phase": "Pending"}}))
    clock.now += 2
    view.update(storyrun("Running", {"b": {"phase": "Skipped", "startedAt": T0, "finishedAt": T0}}))
    assert lines[-1] == "step b Skipped"


def test_failure_message_retries_and_gate_hint() -> None:
    view, lines, _ = plain(gates=("approve",))
    step_runs = [{"spec": {"stepId": "fetch"}, "status": {"retries": 1}}]
    view.update(storyrun("Running", {"fetch": {"phase": "Running"}, "approve": {"phase": "Paused"}}))
    view.update(
        storyrun("Running", {"fetch": {"phase": "Running"}, "approve": {"phase": "Paused"}}), step_runs
    )
    view.update(
        storyrun(
            "Running", {"fetch": {"phase": "Failed", "message": "boom"}, "approve": {"phase": "Paused"}}
        ),
        step_runs,
    )
    assert lines[0] == "run hello-abc12 Running"
    assert lines[1] == "step fetch Running"
    assert lines[2].startswith(
        "step approve Paused (waiting for a decision: bobrapet approve hello-abc12 approve"
    )
    assert lines[3] == "step fetch Running (retry 1)"
    assert lines[4].startswith("step fetch Failed ") and lines[4].endswith(" (retry 1): boom")


def test_step_running_again_after_redrive_is_reported() -> None:
    view, lines, clock = plain()
    view.update(storyrun("Running", {"a": {"phase": "Running"}}))
    clock.now += 3
    view.update(storyrun("Failed", {"a": {"phase": "Failed", "message": "x"}}))
    clock.now += 60
    view.update(storyrun("Running", {"a": {"phase": "Running"}}))
    clock.now += 0.5
    view.update(storyrun("Succeeded", {"a": {"phase": "Succeeded"}}))
    steps = [line for line in lines if line.startswith("step")]
    assert steps == ["step a Running", "step a Failed 3.0s: x", "step a Running", "step a Succeeded 0.5s"]


def test_snapshot_tolerates_missing_status_and_odd_entries() -> None:
    view = snapshot({"metadata": {"name": "r"}})
    assert view.phase == "Pending" and view.steps == ()
    view = snapshot({"metadata": {"name": "r"}, "status": {"stepStates": {"a": None, "b": {}}}})
    assert [s.name for s in view.steps] == ["b"] and view.steps[0].phase == "Pending"


def test_format_seconds() -> None:
    assert format_seconds(0.012) == "12ms"
    assert format_seconds(0.2) == "0.2s"
    assert format_seconds(9.94) == "9.9s"
    assert format_seconds(42.4) == "42s"
    assert format_seconds(65) == "1m5s"
    assert format_seconds(7380) == "2h3m"
    assert format_seconds(-1) == "0ms"


def test_parse_time() -> None:
    assert parse_time("2026-01-01T00:00:00Z") == (parse_time("2026-01-01T00:00:00Z") or (0, False))
    assert parse_time("2026-01-01T00:00:00.5Z") is not None
    assert parse_time("2026-01-01T00:00:00.5Z")[1] is True  # type: ignore[index]
    assert parse_time("garbage") is None
    assert parse_time(None) is None


def test_live_view_renders_a_table_with_pending_steps() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=False, color_system=None)
    clock = Ticks()
    view = LiveProgress(console, clock=clock, gates=("approve",), steps=("fetch", "approve", "later"))
    view.update(storyrun("Running", {"fetch": {"phase": "Succeeded"}, "approve": {"phase": "Paused"}}))
    console.print(view.render())
    text = buffer.getvalue()
    assert "run hello-abc12 Running" in text and "1/3 steps" in text
    assert "fetch" in text and "Succeeded" in text
    assert "bobrapet approve|reject hello-abc12 approve" in text
    assert "later" in text


def test_open_progress_is_plain_when_not_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False)
    with open_progress(console) as view:
        view.update(storyrun("Running", {"a": {"phase": "Running"}}))
    assert buffer.getvalue().splitlines() == ["run hello-abc12 Running", "step a Running"]


def test_open_progress_is_live_on_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    with open_progress(console, steps=("a",)) as view:
        assert isinstance(view, LiveProgress)
        view.update(storyrun("Succeeded", {"a": {"phase": "Succeeded"}}, duration="1s"))
    assert "Succeeded" in buffer.getvalue()


def test_pending_prints_nothing_but_is_remembered() -> None:
    view, lines, _ = plain()
    view.update(storyrun("Pending", {"a": {"phase": "Pending"}}))
    view.update(storyrun("Running", {"a": {"phase": "Pending"}}))
    view.update(storyrun("Running", {"a": {"phase": "Running"}}))
    view.update(storyrun("Running", {"a": {"phase": "Pending"}}))  # queued again: silent
    view.update(storyrun("Running", {"a": {"phase": "Running"}}))
    assert lines == ["run hello-abc12 Running", "step a Running", "step a Running"]


def test_run_duration_is_readable() -> None:
    view, lines, _ = plain()
    view.update(storyrun("Succeeded", {}, duration="11.908ms", message="ok"))
    assert lines == ["run hello-abc12 Succeeded 12ms: ok"]
    assert readable_duration("2.784605s") == "2.8s"
    assert readable_duration("1m5.5s") == "1m6s"
    assert readable_duration("0s") == "0ms"
    assert readable_duration("soon") == "soon"
    assert readable_duration(None) is None and readable_duration("") is None


def test_step_pending_in_the_run_but_running_as_steprun_shows_running() -> None:
    step_runs = [{"spec": {"stepId": "a"}, "status": {"phase": "Running"}}]
    view = snapshot(storyrun("Running", {"a": {"phase": "Pending"}, "b": {"phase": "Pending"}}), step_runs)
    assert [(s.name, s.phase) for s in view.steps] == [("a", "Running"), ("b", "Pending")]
    done = [{"spec": {"stepId": "a"}, "status": {"phase": "Running"}}]
    failed = snapshot(storyrun("Running", {"a": {"phase": "Failed"}}), done)
    assert failed.steps[0].phase == "Failed"  # the run's terminal phase is never overridden


def test_gate_hint_carries_home_and_namespace() -> None:
    lines: list[str] = []
    hint = GateHint(cli="bobrapet --home /h", flags=" -n team")
    view = PlainProgress(lines.append, clock=Ticks(), gates=("approve",), hint=hint)
    view.update(storyrun("Running", {"approve": {"phase": "Paused"}}))
    assert lines[1] == (
        "step approve Paused (waiting for a decision: bobrapet --home /h approve hello-abc12 approve -n team"
        " | bobrapet --home /h reject hello-abc12 approve -n team)"
    )
    live = LiveProgress(Console(file=io.StringIO(), width=200), clock=Ticks(), gates=("approve",), hint=hint)
    live.update(storyrun("Running", {"approve": {"phase": "Paused"}}))
    out = Console(file=io.StringIO(), width=200, record=True)
    out.print(live.render())
    assert "bobrapet --home /h approve|reject hello-abc12 approve -n team" in out.export_text()


def test_step_still_running_in_the_run_but_succeeded_as_steprun_shows_succeeded() -> None:
    """The run's status mirrors step progress a little later than the StepRuns."""
    step_runs = [
        {"spec": {"stepId": "a"}, "status": {"phase": "Succeeded"}},
        {"spec": {"stepId": "b"}, "status": {"phase": "Running"}},
        {"spec": {"stepId": "c"}, "status": {"phase": "Failed"}},
    ]
    states = {"a": {"phase": "Running"}, "b": {"phase": "Pending"}, "c": {"phase": "Running"}}
    view = snapshot(storyrun("Running", states), step_runs)
    assert [(s.name, s.phase) for s in view.steps] == [("a", "Succeeded"), ("b", "Running"), ("c", "Running")]


def test_a_started_step_the_run_does_not_list_yet_is_shown_from_its_steprun() -> None:
    step_runs = [
        {"spec": {"stepId": "a"}, "status": {"phase": "Succeeded"}},
        {"spec": {"stepId": "b"}, "status": {"phase": "Running"}},
        {"metadata": {"labels": {"bubustack.io/parent-step": "p"}}, "spec": {"stepId": "p-x"}, "status": {}},
    ]
    view = snapshot(storyrun("Running", {"a": {"phase": "Running"}}), step_runs)
    assert [(s.name, s.phase) for s in view.steps] == [("a", "Succeeded"), ("b", "Running")]
