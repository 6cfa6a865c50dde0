"""Which StoryRun status changes only mirror engram step progress (and may be held back)."""

from __future__ import annotations

import copy
from typing import Any

from tests.engine.harness import make_story

from bobrapet.engine import compile_graph, progress_only

STORY = make_story(
    {
        "steps": [
            {"name": "a", "ref": {"name": "e"}},
            {"name": "b", "ref": {"name": "e"}, "needs": ["a"]},
            {"name": "nap", "type": "sleep", "with": {"duration": "1s"}, "needs": ["b"]},
        ]
    }
)
GRAPH = compile_graph(STORY)


def status(**states: dict[str, Any]) -> dict[str, Any]:
    done = sum(1 for s in states.values() if s.get("phase") == "Succeeded")
    active = [n for n, s in states.items() if s.get("phase") == "Running"]
    return {"phase": "Running", "stepsComplete": done, "active": active, "stepStates": dict(states)}


RUNNING = {"phase": "Running", "startedAt": "t0"}
DONE = {"phase": "Succeeded", "startedAt": "t0", "finishedAt": "t1", "stepRun": "r-a"}


def test_engram_steps_starting_and_succeeding_are_progress() -> None:
    old = status(a=RUNNING)
    assert progress_only(old, status(a=DONE, b=RUNNING), GRAPH)
    assert progress_only(old, status(a={**RUNNING, "phase": "Pending"}), GRAPH)


def test_run_phase_failures_primitives_and_removals_are_written_at_once() -> None:
    old = status(a=RUNNING)
    assert not progress_only(old, {**status(a=DONE), "phase": "Succeeded"}, GRAPH)
    assert not progress_only(old, status(a={**RUNNING, "phase": "Failed"}), GRAPH)
    assert not progress_only(status(a=DONE, b=DONE), status(a=DONE, b=DONE, nap=RUNNING), GRAPH)
    assert not progress_only(status(a=DONE, b=RUNNING), status(b=RUNNING), GRAPH)
    assert not progress_only(old, {**status(a=DONE), "conditions": [{"type": "Ready"}]}, GRAPH)
    assert not progress_only(old, status(a=DONE, ghost=RUNNING), GRAPH)  # not a step of the Story


def test_a_plans_changed_steps_are_all_that_is_checked() -> None:
    old = status(a=RUNNING)
    assert progress_only(old, status(a=DONE, b=RUNNING), GRAPH, {"a", "b"})
    assert not progress_only(old, status(a=DONE, b={**RUNNING, "phase": "Failed"}), GRAPH, {"a", "b"})
    assert not progress_only(old, {**status(a=DONE), "phase": "Failed"}, GRAPH, {"a"})  # fields still checked


def test_a_plan_reports_every_step_whose_state_it_changed() -> None:
    """``changed_steps`` may be all that :func:`progress_only` checks: it must cover every
    step state that differs from the run the plan was made from."""
    from tests.engine.harness import World

    world = World(STORY)
    for act in (lambda: None, lambda: world.succeed("a"), lambda: world.fail("b"), lambda: None):
        act()
        before = copy.deepcopy(world.status.get("stepStates") or {})
        made = world.reconcile()  # applies the plan
        after = made.status.get("stepStates") or {}
        differing = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
        assert made.changed_steps is None or differing <= made.changed_steps
