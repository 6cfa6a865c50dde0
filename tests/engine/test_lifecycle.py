"""Scheduling, cancel, redrive, TTL/retention and the variables helpers."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from tests.engine.harness import T0, World, make_story

from bobrapet.engine import Capacity, EngineConfig, QueueConfig, effective_priority, run_inputs, run_variables


def e(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "ref": {"name": "e"}, **kw}


# ----------------------------------------------------------------------------- scheduling


def test_story_concurrency_queues_ready_steps() -> None:
    world = World(
        {"steps": [e("a"), e("b"), e("c")], "policy": {"concurrency": 2}}, capacity=Capacity(story_running=1)
    )
    p = world.reconcile()
    assert [s.step_id for s in p.create_step_runs] == ["a"]
    assert world.state("b")["message"] == "Queued due to story concurrency limit (2 running, limit 2)"
    assert "startedAt" not in world.state("b")
    assert p.requeue_after == 5
    world.capacity = Capacity(story_running=1)  # "a" is the one Running StepRun now
    world.set_step("a", "Running")
    p = world.reconcile()
    assert [s.step_id for s in p.create_step_runs] == ["b"]
    assert world.state("b")["message"] == "StepRun created"
    assert world.state("c")["message"] == "Queued due to story concurrency limit (2 running, limit 2)"
    world.capacity = Capacity()
    assert world.drive() == "Succeeded"


def test_a_step_run_waiting_for_an_execution_slot_counts_against_the_story_limit() -> None:
    """Counted once: by the controller's capacity index (as if Running), not again as launched."""
    world = World({"steps": [e("a"), e("b"), e("c")], "policy": {"concurrency": 2}})
    world.reconcile()
    world.reconcile()
    assert sorted(world.step_runs) == ["a", "b"]
    world.step_runs["a"] = replace(world.step_runs["a"], phase="Pending", reason="WaitingForCapacity")
    world.step_runs["b"] = replace(world.step_runs["b"], phase="Running")
    world.capacity = Capacity(story_running=2)
    p = world.reconcile()
    assert p.create_step_runs == []
    assert world.state("c")["message"] == "Queued due to story concurrency limit (2 running, limit 2)"
    world.capacity = Capacity(story_running=1)  # "b" finished; "a" still waits for a slot
    world.succeed("b")
    p = world.reconcile()
    assert [s.step_id for s in p.create_step_runs] == ["c"]


def test_queue_global_limits_and_priority() -> None:
    config = EngineConfig(queues={"default": QueueConfig(concurrency=1)}, global_concurrency=5)
    world = World({"steps": [e("a"), e("b")]}, config=config)
    world.reconcile()
    assert world.state("b")["message"] == "Queued due to queue concurrency limit (1 running, limit 1)"
    glob = World(
        {"steps": [e("a")]}, config=EngineConfig(global_concurrency=5), capacity=Capacity(global_running=5)
    )
    glob.reconcile()
    assert glob.state("a")["message"] == "Queued due to global concurrency limit (5 running, limit 5)"
    held = World({"steps": [e("a")]}, capacity=Capacity(outranked=True))
    held.reconcile()
    assert held.state("a")["message"] == "Queued due to higher-priority work in queue 'default'"
    assert effective_priority(3, T0, T0 + timedelta(seconds=125), 60) == 5
    assert effective_priority(3, None, T0, 60) == 3


# ----------------------------------------------------------------------------- cancel


def test_graceful_cancel_waits_then_finishes() -> None:
    story = {"steps": [e("a"), e("b", needs=["a"])], "finally": [e("fin")]}
    world = World(story)
    world.reconcile()
    world.run["spec"]["cancelRequested"] = True
    p = world.reconcile()
    assert p.annotations == {"storyrun.bubustack.io/graceful-cancel-observed-at": "2026-01-01T12:00:00Z"}
    assert p.annotate_step_runs == {"run1-a": {"bubustack.io/cancel-requested": "true"}}
    assert world.state("b")["phase"] == "Skipped" and world.state("fin")["phase"] == "Skipped"
    assert world.phase == "Running" and p.requeue_after == 30
    world.set_step("a", "Canceled")
    world.reconcile()
    assert world.phase == "Finished"
    assert world.status["message"] == "StoryRun gracefully canceled"
    assert world.status["conditions"][0]["reason"] == "Canceled"
    assert world.creation_order == ["a"]


def test_cancel_deletes_after_grace_and_cancels_children() -> None:
    story = {
        "steps": [e("a"), {"name": "sub", "type": "executeStory", "with": {"storyRef": {"name": "child"}}}],
        "policy": {"timeouts": {"gracefulShutdownTimeout": "10s"}},
    }
    world = World(story, sub_stories={"sub": make_story({"steps": [e("c")]}, name="child")})
    world.reconcile()
    world.run["spec"]["cancelRequested"] = True
    p = world.reconcile()
    assert p.cancel_child_runs == ["run1-sub"] and p.requeue_after == 10
    world.advance(10)
    p = world.reconcile()
    assert p.delete_step_runs == ["run1-a"] and p.delete_child_runs == ["run1-sub"]
    assert world.phase == "Finished"
    assert world.state("a")["phase"] == "Canceled"


def test_cancel_before_start_finishes_at_once() -> None:
    world = World({"steps": [e("a")]})
    world.run["spec"]["cancelRequested"] = True
    world.reconcile()
    assert world.phase == "Finished" and world.created == []


# ----------------------------------------------------------------------------- redrive


def test_full_redrive_restarts_run() -> None:
    world = World({"steps": [e("a"), e("b", needs=["a"])]})
    assert world.drive(lambda sid: ("Failed", "x") if sid == "b" else ("Succeeded", {})) == "Failed"
    world.status["gates"] = {"g": {"state": "Approved"}}
    world.run["metadata"]["annotations"]["storyrun.bubustack.io/redrive-token"] = "t1"
    p = world.reconcile()
    assert sorted(p.delete_step_runs) == ["run1-a", "run1-b"]
    assert world.status == {"attempts": 1, "triggerTokens": ["story"]}  # a redriven gate asks again
    assert world.run["metadata"]["annotations"]["storyrun.bubustack.io/redrive-observed"] == "t1"
    assert world.drive() == "Succeeded"
    assert world.status["attempts"] == 2
    assert world.creation_order == ["a", "b", "a", "b"]


def test_redrive_from_step_resets_downstream_and_waits_for_deletions() -> None:
    story = {"steps": [e("a"), e("b", needs=["a"]), e("c", needs=["b"]), e("x")], "finally": [e("fin")]}
    world = World(story)
    assert world.drive(lambda sid: ("Failed", "x") if sid == "b" else ("Succeeded", {})) == "Failed"
    world.run["metadata"]["annotations"]["storyrun.bubustack.io/redrive-from-step"] = "b:1"
    snap_runs = dict(world.step_runs)
    from bobrapet.engine import plan

    p = plan(world.snapshot())
    assert sorted(p.delete_step_runs) == ["run1-b", "run1-fin"]
    assert p.annotations["storyrun.bubustack.io/redrive-from-step-observed"] == "b:1"
    assert p.status["phase"] == "Running" and "finishedAt" not in p.status and "error" not in p.status
    assert set(p.status["stepStates"]) == {"a", "x"}
    assert p.create_step_runs == [] and p.requeue_after == 0.1
    # apply, but the deletions are still in progress (views marked deleting)
    world.apply(p)
    world.step_runs = {
        k: (replace(v, deleting=True) if k in ("b", "fin") else v) for k, v in snap_runs.items()
    }
    p = world.reconcile()
    assert p.create_step_runs == [] and p.requeue_after == 0.1
    world.step_runs = {k: v for k, v in world.step_runs.items() if k not in ("b", "fin")}
    assert world.drive() == "Succeeded"
    assert world.creation_order.count("a") == 1 and world.creation_order.count("b") == 2
    assert world.status["attempts"] == 2


# ----------------------------------------------------------------------------- TTL / retention


def test_child_ttl_and_retention() -> None:
    world = World({"steps": [e("a")]}, config=EngineConfig(child_ttl_seconds=100, retention_seconds=300))
    assert world.drive() == "Succeeded"
    p = world.reconcile()
    assert p.requeue_after == 100 and not p.delete_step_runs
    world.advance(100)
    p = world.reconcile()
    assert p.delete_step_runs == ["run1-a"] and world.status["childrenCleanedAt"] == "2026-01-01T12:01:40Z"
    assert p.requeue_after == 200
    world.advance(200)
    assert world.reconcile().delete_run


def test_retention_policy_overrides() -> None:
    keep = World({"steps": [e("a")]}, config=EngineConfig(retention_seconds=0, child_ttl_seconds=1))
    keep.drive()
    keep.advance(10**6)
    p = keep.reconcile()
    assert not p.delete_run and p.requeue_after is None
    story = {
        "steps": [e("a")],
        "policy": {"execution": {"job": {"storyRunRetentionSeconds": -1, "ttlSecondsAfterFinished": 5}}},
    }
    now = World(story)
    now.drive()
    p = now.reconcile()
    assert p.delete_run and p.requeue_after == 5


# ----------------------------------------------------------------------------- variables


def test_run_variables_and_inputs() -> None:
    story = make_story(
        {
            "steps": [e("a"), e("b")],
            "inputsSchema": {"type": "object", "properties": {"n": {"type": "integer", "default": 1}}},
        }
    )
    world = World(story, inputs={"m": 2})
    world.reconcile()
    world.succeed("a", {"v": 1})
    world.reconcile()
    variables = run_variables(world.snapshot())
    assert variables["inputs"] == {"m": 2, "n": 1}
    assert set(variables["steps"]) == {"a"}
    assert variables["steps"]["a"]["output"] == {"v": 1}
    assert variables["story"] == {"name": "story", "namespace": "default", "version": None}
    assert variables["run"] == {"name": "run1", "namespace": "default", "uid": "uid-1"}
    assert run_inputs(world.run, None) == {"m": 2}


def test_lookup_helpers() -> None:
    from bobrapet.engine import required_engrams, sub_story_refs

    story = make_story(
        {
            "steps": [
                e("a"),
                {"name": "p", "type": "parallel", "with": {"steps": [{"name": "x", "ref": {"name": "o"}}]}},
                {"name": "s", "type": "executeStory", "with": {"storyRef": {"name": "c", "namespace": "n"}}},
            ]
        }
    )
    assert required_engrams(story) == {"e", "o"}
    assert sub_story_refs(story) == {"s": ("c", "n")}
