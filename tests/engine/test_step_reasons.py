"""Step states carry their state in ``reason`` fields; messages are for people only."""

from __future__ import annotations

from typing import Any

from tests.engine.harness import World

from bobrapet.api.phases import STOP_PHASES, StepReason, is_terminal_phase
from bobrapet.engine import Capacity
from bobrapet.engine.context import is_queued, is_started


def e(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "ref": {"name": "e"}, **kw}


def test_terminal_phase_helper_and_stop_phases() -> None:
    assert is_terminal_phase("Skipped") and is_terminal_phase("Compensated")
    assert not is_terminal_phase("Running") and not is_terminal_phase(None)
    assert STOP_PHASES == ("Succeeded", "Failed", "Canceled")


def test_a_queued_step_is_marked_by_its_reason() -> None:
    world = World({"steps": [e("a"), e("b")], "policy": {"concurrency": 1}})
    world.reconcile()
    held = world.state("b")
    assert (held["phase"], held["reason"]) == ("Pending", StepReason.QUEUED)
    assert held["message"].startswith("Queued due to story concurrency limit")
    assert is_queued(held) and not is_started(held)
    # the message alone marks nothing: a started step may say anything
    assert not is_queued({"phase": "Pending", "message": "Queued due to my own reasons"})
    assert is_queued({"phase": "Pending", "message": "waiting", "reason": StepReason.QUEUED})


def test_a_queued_step_that_starts_loses_the_queued_reason() -> None:
    world = World({"steps": [e("a")]}, capacity=Capacity(outranked=True))
    world.reconcile()
    assert world.state("a")["reason"] == StepReason.QUEUED
    world.capacity = Capacity()
    world.reconcile()
    started = world.state("a")
    assert "reason" not in started and started["message"] == "StepRun created"
    assert "startedAt" in started


def test_condition_false_and_its_cascade_carry_reasons() -> None:
    story = {
        "steps": [
            {"name": "c", "type": "condition", "if": "{{ inputs.go }}"},
            e("a", needs=["c"]),
            e("b", needs=["a"]),
            e("own", **{"if": "{{ inputs.go }}"}),
            e("after-own", needs=["own"]),
        ]
    }
    world = World(story, inputs={"go": False})
    assert world.drive() == "Succeeded"
    assert world.state("c")["reason"] == StepReason.CONDITION_FALSE
    for name in ("a", "b"):
        state = world.state(name)
        assert (state["phase"], state["reason"]) == ("Skipped", StepReason.CONDITION_SKIPPED)
        assert state["message"] == "Skipped because condition 'c' was false"
    # a step skipped by its own ``if`` does not cascade
    assert "reason" not in world.state("own")
    assert world.state("after-own")["phase"] == "Succeeded"


def test_stop_and_its_effects_carry_reasons() -> None:
    story = {
        "steps": [e("slow"), {"name": "halt", "type": "stop"}, e("later", needs=["halt"])],
        "compensations": [e("undo")],
    }
    world = World(story)
    world.reconcile()
    assert world.state("halt")["reason"] == StepReason.STOPPED
    assert world.state("slow")["reason"] == StepReason.STORY_STOPPED
    assert world.state("slow")["message"] == "Canceled because the story was stopped by step 'halt'"
    assert world.state("later")["reason"] == StepReason.STORY_STOPPED
    assert world.state("undo")["reason"] == StepReason.STORY_STOPPED
    assert world.phase == "Succeeded"


def test_an_invalid_stop_phase_fails_the_step_and_stops_nothing() -> None:
    world = World({"steps": [{"name": "halt", "type": "stop", "with": {"phase": "Aborted"}}, e("x")]})
    world.reconcile()
    state = world.state("halt")
    assert (state["phase"], state["reason"]) == ("Failed", "InvalidConfiguration")
    assert "with.phase must be one of Succeeded, Failed, Canceled" in state["message"]
