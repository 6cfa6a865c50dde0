"""Finished engram steps keep a compact summary in the run status (issue 8 item 1)."""

from __future__ import annotations

import json
from typing import Any

from tests.engine.harness import World

from bobrapet.engine.naming import compose_dns1123


def _chain(n: int) -> dict[str, Any]:
    steps = [
        {"name": f"s{i}", "ref": {"name": "e"}, **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(n)
    ]
    return {"steps": steps}


def test_a_succeeded_engram_step_keeps_phase_times_and_step_run_only() -> None:
    world = World(_chain(2))
    world.reconcile()
    world.set_step("s0", "Succeeded", output={"big": "x" * 10000}, message="a long story " * 100)
    world.reconcile()
    state = world.state("s0")
    assert state == {
        "phase": "Succeeded",
        "startedAt": state["startedAt"],
        "finishedAt": state["finishedAt"],
        "stepRun": compose_dns1123("run1", "s0"),
    }
    assert world.state("s1")["phase"] == "Pending"  # running steps keep their detail
    assert "message" in world.state("s1")


def test_failed_steps_keep_their_message_and_reason() -> None:
    world = World(_chain(2))
    world.reconcile()
    world.fail("s0", "boom")
    world.reconcile()
    assert world.state("s0")["phase"] == "Failed"
    assert world.state("s0")["message"] == "boom"


def test_status_grows_by_a_constant_per_finished_step() -> None:
    world = World(_chain(40))
    assert world.drive() == "Succeeded"
    sizes = [len(json.dumps(world.state(f"s{i}"), separators=(",", ":"))) for i in range(40)]
    assert max(sizes) - min(sizes) <= 2  # step names s0..s39 differ by one digit
    assert max(sizes) < 160


def test_a_step_that_waited_for_a_slot_started_when_its_stepruns_code_did() -> None:
    """The run's step state times a step from when its code started, not from when its
    StepRun was created waiting for a free execution slot (issue 8: capacity waits)."""
    from dataclasses import replace

    from bobrapet.engine import WAITING_FOR_CAPACITY
    from bobrapet.engine.timefmt import format_time

    world = World(_chain(1))
    world.reconcile()
    view = world.step_runs["s0"]
    world.step_runs["s0"] = replace(view, phase="Pending", reason=WAITING_FOR_CAPACITY, message="waiting")
    world.reconcile()
    queued_at = world.state("s0")["startedAt"]
    world.advance(3)
    code_started = world.now
    world.step_runs["s0"] = replace(world.step_runs["s0"], reason=None, started_at=code_started)
    world.advance(2)
    world.succeed("s0")
    world.reconcile()
    state = world.state("s0")
    assert state["startedAt"] == format_time(code_started) != queued_at
    assert state["finishedAt"] == format_time(world.now)
