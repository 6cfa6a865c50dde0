"""Whole runs of plain engram DAGs: chain, fan-out/fan-in, diamond, lattice."""

from __future__ import annotations

from typing import Any

from tests.engine.harness import World


def _steps(*specs: tuple[str, list[str]]) -> dict[str, Any]:
    return {"steps": [{"name": n, "ref": {"name": "e"}, **({"needs": d} if d else {})} for n, d in specs]}


def _check_order(world: World) -> None:
    story = world.story
    assert story is not None
    for step in story.spec.steps:
        for dep in step.needs or []:
            assert world.finish_order.index(dep) < world.creation_order.index(step.name)


def test_chain_runs_in_order_and_succeeds() -> None:
    world = World(_steps(("a", []), ("b", ["a"]), ("c", ["b"])))
    assert world.drive() == "Succeeded"
    assert world.creation_order == ["a", "b", "c"]
    _check_order(world)
    status = world.status
    assert status["stepsComplete"] == 3 and status["stepsTotal"] == 3
    assert status["message"] == "All steps completed successfully."
    assert status["attempts"] == 1
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "Completed"
    assert status["duration"] == "0s"


def test_fan_out_fan_in() -> None:
    world = World(_steps(("a", []), ("b1", ["a"]), ("b2", ["a"]), ("b3", ["a"]), ("z", ["b1", "b2", "b3"])))
    world.reconcile()
    assert world.creation_order == ["a"]
    world.succeed("a")
    world.reconcile()
    assert sorted(world.creation_order) == ["a", "b1", "b2", "b3"]
    assert world.drive() == "Succeeded"
    _check_order(world)


def test_diamond_and_lattice() -> None:
    world = World(_steps(("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])))
    assert world.drive() == "Succeeded"
    _check_order(world)
    lattice = World(
        _steps(
            ("a1", []),
            ("a2", []),
            ("b1", ["a1", "a2"]),
            ("b2", ["a1", "a2"]),
            ("c1", ["b1", "b2"]),
            ("c2", ["b1"]),
        )
    )
    assert lattice.drive() == "Succeeded"
    _check_order(lattice)
    assert len(lattice.created) == 6


def test_step_run_spec_and_labels() -> None:
    story = {
        "steps": [
            {
                "name": "a",
                "ref": {"name": "e"},
                "with": {"x": "{{ inputs.v }}", "n": {"k": 1}},
                "execution": {"timeout": "30s", "debug": True},
            }
        ],
        "policy": {"queue": "fast", "priority": 7},
    }
    engrams = {
        "e": {
            "metadata": {"name": "e"},
            "spec": {"templateRef": {"name": "tpl"}, "with": {"n": {"j": 2}, "b": 1}},
        }
    }
    world = World(story, engrams=engrams, inputs={"v": 1})
    p = world.reconcile()
    (sr,) = p.create_step_runs
    assert sr.name == "run1-a"
    assert sr.spec["input"] == {"n": {"j": 2, "k": 1}, "b": 1, "x": "{{ inputs.v }}"}
    assert sr.spec["storyRunRef"] == {"name": "run1"}
    assert sr.spec["engramRef"] == {"name": "e"}
    assert sr.spec["templateGeneration"] == 2
    assert sr.spec["timeout"] == "30s"
    assert sr.spec["executionOverrides"] == {"debug": True}
    assert sr.spec["idempotencyKey"] == "ns/default/storyrun/run1/step/a"
    assert sr.spec["retry"]["maxRetries"] == 3
    assert sr.labels == {
        "bubustack.io/storyrun": "run1",
        "bubustack.io/story-name": "story",
        "bubustack.io/queue": "fast",
        "bubustack.io/queue-priority": "7",
    }
    state = world.state("a")
    assert state["phase"] == "Pending" and state["message"] == "StepRun created" and state["startedAt"]
    assert world.phase == "Running"
    assert world.status["message"] == "Starting StoryRun execution"


def test_idempotency_key_template_and_long_key() -> None:
    story = {
        "steps": [
            {"name": "a", "ref": {"name": "e"}},
            {"name": "b", "ref": {"name": "e"}, "idempotencyKeyTemplate": "k-{{ steps.a.output.id }}"},
            {
                "name": "c",
                "ref": {"name": "e"},
                "needs": ["a"],
                "idempotencyKeyTemplate": "{{ inputs.long }}",
            },
        ]
    }
    world = World(story, inputs={"long": "x" * 300})
    world.reconcile()
    world.succeed("a", {"id": 42})
    p = world.reconcile()
    keys = {s.step_id: s.spec["idempotencyKey"] for s in p.create_step_runs}
    assert keys["b"] == "k-42"
    assert keys["c"].startswith("sha256:") and len(keys["c"]) == 71


def test_with_dependency_is_mined_from_templates() -> None:
    story = {
        "steps": [
            {"name": "a", "ref": {"name": "e"}},
            {"name": "b", "ref": {"name": "e"}, "with": {"v": "{{ steps.a.output.x }}"}},
        ]
    }
    world = World(story)
    world.reconcile()
    assert world.creation_order == ["a"]
    world.succeed("a", {})
    world.reconcile()
    assert world.creation_order == ["a", "b"]


def test_unchanged_states_are_reused() -> None:
    from bobrapet.engine import plan

    world = World(_steps(("a", []), ("b", [])))
    world.reconcile()
    snap = world.snapshot()
    first = plan(snap)
    old_states = snap.run["status"]["stepStates"]
    assert first.status["stepStates"] is old_states
    assert first.status["conditions"] is snap.run["status"]["conditions"]
    assert first.status == snap.run["status"]
    assert first.create_step_runs == [] and first.requeue_after is None
