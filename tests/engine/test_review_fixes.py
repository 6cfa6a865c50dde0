"""Regression tests for engine bugs found in review (each failed before its fix)."""

from __future__ import annotations

from typing import Any

from tests.engine.harness import World, make_story

from bobrapet.api.runmeta import REDRIVE_FROM_STEP


def e(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "ref": {"name": "e"}, **kw}


def test_if_blocked_on_unknown_step_fails_instead_of_hanging() -> None:
    # A dynamic reference cannot be mined: once the dependencies are done, waiting for a
    # step that does not exist can never end, so the step fails (the run must not hang).
    story = {"steps": [e("a"), e("b", needs=["a"], **{"if": "steps[inputs.which].output.ok"})]}
    world = World(story, inputs={"which": "nope"})
    assert world.drive() == "Failed"
    state = world.state("b")
    assert state["phase"] == "Failed" and state["reason"] == "ExpressionFailed"
    assert "nope" in state["message"]


def test_if_blocked_on_running_step_waits() -> None:
    story = {"steps": [e("a"), e("slow"), e("b", needs=["a"], **{"if": "steps[inputs.which].output.ok"})]}
    world = World(story, inputs={"which": "slow"})
    world.reconcile()
    world.succeed("a")
    world.reconcile()
    assert world.state("b") == {}
    world.succeed("slow", {"ok": True})
    assert world.drive() == "Succeeded"
    assert "b" in world.creation_order


def test_parallel_branch_blocked_on_unknown_step_fails() -> None:
    branch = {"name": "x", "ref": {"name": "e"}, "with": {"v": "{{ steps[inputs.which].output }}"}}
    story = {"steps": [{"name": "p", "type": "parallel", "with": {"steps": [branch]}}]}
    world = World(story, inputs={"which": "nope"})
    assert world.drive() == "Failed"
    assert world.state("p")["reason"] == "ExpressionFailed"


def test_execute_story_blocked_on_unknown_step_fails() -> None:
    step = {
        "name": "x",
        "type": "executeStory",
        "with": {"storyRef": {"name": "child"}, "with": {"v": "{{ steps[inputs.which].output }}"}},
    }
    child = make_story({"steps": [e("c")]}, "child")
    world = World({"steps": [step]}, inputs={"which": "nope"}, sub_stories={"x": child})
    assert world.drive() == "Failed"
    assert world.state("x")["reason"] == "ExpressionFailed"


def test_on_timeout_is_case_insensitive_like_admission() -> None:
    # Admission accepts onTimeout case-insensitively; the engine must not reject what it admitted.
    world = World(
        {
            "steps": [
                {"name": "g", "type": "gate", "with": {"timeout": "1s", "onTimeout": "Skip"}},
                {
                    "name": "w",
                    "type": "wait",
                    "with": {"until": "false", "timeout": "1s", "onTimeout": "FAIL"},
                },
            ]
        }
    )
    assert world.drive() == "Failed"
    assert world.state("g")["phase"] == "Skipped"
    assert world.state("w")["phase"] == "Timeout"


def test_redrive_from_step_restarts_story_timeout_clock() -> None:
    world = World({"steps": [e("a"), e("b", needs=["a"])], "policy": {"timeouts": {"story": "10s"}}})
    assert world.drive() == "Succeeded"
    world.advance(100)
    world.run["metadata"]["annotations"][REDRIVE_FROM_STEP] = "b:1"
    world.reconcile()
    assert world.phase == "Running"
    assert world.drive() == "Succeeded"
    assert world.status["attempts"] == 2


def test_wait_on_unknown_step_fails_instead_of_polling_forever() -> None:
    world = World({"steps": [{"name": "w", "type": "wait", "with": {"until": "steps.zzz.output.ok"}}]})
    assert world.drive(max_plans=20) == "Failed"
    assert world.state("w")["reason"] == "ExpressionFailed"


def test_wait_on_running_sibling_step_waits_for_it() -> None:
    story = {"steps": [e("a"), {"name": "w", "type": "wait", "with": {"until": "steps.a.output.ok"}}]}
    world = World(story)
    world.reconcile()
    assert world.state("w")["phase"] == "Paused"
    world.succeed("a", {"ok": True})
    assert world.drive() == "Succeeded"
