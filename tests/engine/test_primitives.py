"""Primitive steps: condition, parallel, sleep, stop, executeStory, wait, gate."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from tests.engine.harness import World, make_story

from bobrapet.engine import EngineConfig, plan


def e(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "ref": {"name": "e"}, **kw}


# ----------------------------------------------------------------------------- condition / if


def test_condition_true_runs_dependents() -> None:
    world = World(
        {"steps": [{"name": "c", "type": "condition", "if": "inputs.go"}, e("a", needs=["c"])]},
        inputs={"go": True},
    )
    world.reconcile()
    assert world.state("c")["phase"] == "Succeeded"
    assert world.state("c")["message"] == "Primitive evaluated and outputs are available."
    assert world.creation_order == ["a"]
    assert world.drive() == "Succeeded"


def test_condition_false_cascades_skip_transitively() -> None:
    story = {
        "steps": [
            {"name": "c", "type": "condition", "if": "{{ inputs.go }}"},
            e("a", needs=["c"]),
            e("b", needs=["a"]),
            e("other"),
        ]
    }
    world = World(story, inputs={"go": False})
    assert world.drive() == "Succeeded"
    assert world.state("c")["phase"] == "Skipped"
    assert world.state("a")["message"] == "Skipped because condition 'c' was false"
    assert world.state("b")["message"] == "Skipped because condition 'c' was false"
    assert world.creation_order == ["other"]
    assert world.status["stepsSkipped"] == 3


def test_if_false_skips_only_the_step() -> None:
    world = World({"steps": [e("a", **{"if": "inputs.go"}), e("b", needs=["a"])]}, inputs={"go": False})
    assert world.drive() == "Succeeded"
    assert world.state("a")["message"] == "Skipped due to 'if' condition"
    assert world.creation_order == ["b"]


def test_if_sees_upstream_output_and_empty_output_is_valid() -> None:
    story = {
        "steps": [e("a"), e("b", **{"if": "steps.a.output == {}"}), e("c", **{"if": "'x' in steps.a.output"})]
    }
    world = World(story)
    world.reconcile()
    world.succeed("a", {})
    world.reconcile()
    assert world.creation_order == ["a", "b"]
    assert world.state("c")["phase"] == "Skipped"


def test_if_error_with_terminal_deps_fails_step() -> None:
    world = World({"steps": [e("a"), e("b", needs=["a"], **{"if": "{{ steps.a.output.x + 'y' }}"})]})
    world.reconcile()
    world.succeed("a", {"x": 1})
    world.reconcile()
    state = world.state("b")
    assert state["phase"] == "Failed" and state["reason"] == "ExpressionFailed"
    assert world.phase == "Failed"


# ----------------------------------------------------------------------------- parallel


def _parallel(allow: bool) -> dict[str, Any]:
    return {
        "steps": [
            e("a"),
            {
                "name": "p",
                "type": "parallel",
                "needs": ["a"],
                "with": {
                    "steps": [
                        {"name": "x", "ref": {"name": "e"}, "with": {"v": "{{ steps.a.output.v }}"}},
                        {"name": "y", "ref": {"name": "e"}, "allowFailure": allow},
                    ]
                },
            },
            e("after", with_={"got": "{{ steps.x.output }}"}, needs=["p"]),
        ]
    }


def _fix(story: dict[str, Any]) -> dict[str, Any]:
    for step in story["steps"]:
        if "with_" in step:
            step["with"] = step.pop("with_")
    return story


def test_parallel_expands_branches_and_allows_failure() -> None:
    world = World(_fix(_parallel(True)))
    world.reconcile()
    world.succeed("a", {"v": 5})
    p = world.reconcile()
    branches = {s.step_id: s for s in p.create_step_runs}
    assert set(branches) == {"x", "y"}
    assert branches["x"].name == "run1-p-x"
    assert branches["x"].labels["bubustack.io/parent-step"] == "p"
    assert branches["x"].spec["input"] == {"v": 5}
    assert world.status["primitiveChildren"] == {"p": ["run1-p-x", "run1-p-y"]}
    assert world.state("p") == {**world.state("p"), "phase": "Running", "message": "Parallel block expanded"}
    world.succeed("x", {"r": 1})
    world.fail("y")
    world.reconcile()
    assert world.state("p")["message"] == "Parallel branches completed with allowed failures."
    assert world.created[-1].step_id == "after"
    world.succeed("after")
    world.reconcile()
    assert world.phase == "Succeeded"
    assert world.status["allowedFailures"] == ["y"]


def test_parallel_branch_failure_fails_parent() -> None:
    world = World(_fix(_parallel(False)))
    result = world.drive(lambda sid: ("Failed", "bad") if sid == "y" else ("Succeeded", {"v": 1}))
    assert result == "Failed"
    assert world.state("p")["message"] == "Parallel branches failed: y"
    assert world.state("after")["message"] == "Skipped due to fail-fast policy"


# ----------------------------------------------------------------------------- sleep


def test_sleep_is_durable_across_restart() -> None:
    world = World(
        {"steps": [{"name": "s", "type": "sleep", "with": {"duration": "10s"}}, e("a", needs=["s"])]}
    )
    p = world.reconcile()
    assert world.state("s")["phase"] == "Paused"
    assert world.state("s")["message"] == "Sleeping for 10s."
    assert p.requeue_after == 10
    world.advance(4)
    # "restart": a brand-new plan from the persisted status only
    p = plan(world.snapshot())
    assert p.requeue_after == 6
    world.apply(p)
    world.advance(6)
    world.reconcile()
    assert world.state("s")["message"] == "Sleep completed."
    assert world.creation_order == ["a"]


def test_zero_sleep_chains_in_one_plan_and_bad_duration_fails() -> None:
    story = {
        "steps": [
            {"name": f"s{i}", "type": "sleep", **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(5)
        ]
    }
    world = World(story)
    world.reconcile()
    assert world.phase == "Succeeded"
    bad = World({"steps": [{"name": "s", "type": "sleep", "with": {"duration": "soon"}}]})
    bad.reconcile()
    assert bad.state("s")["phase"] == "Failed"
    assert "invalid duration" in bad.state("s")["message"]


# ----------------------------------------------------------------------------- stop


def test_stop_succeeded_ends_run_and_finally_runs() -> None:
    story = {
        "steps": [
            e("slow"),
            {"name": "halt", "type": "stop", "with": {"message": "enough"}},
            e("later", needs=["halt"]),
        ],
        "finally": [e("cleanup")],
    }
    world = World(story)
    p = world.reconcile()
    assert world.state("halt")["phase"] == "Succeeded"
    assert world.state("later")["phase"] == "Skipped"
    assert world.state("slow")["phase"] == "Canceled"
    assert p.create_step_runs[0].step_id == "cleanup"  # "slow" was withdrawn before creation
    assert world.creation_order == ["cleanup"]
    assert "cleanup" in world.creation_order
    world.succeed("cleanup")
    world.reconcile()
    assert world.phase == "Succeeded"
    assert world.status["message"] == "enough"


def test_stop_cancels_running_step_runs() -> None:
    story = {"steps": [e("slow"), e("a"), {"name": "halt", "type": "stop", "needs": ["a"]}]}
    world = World(story)
    world.reconcile()
    world.succeed("a")
    p = world.reconcile()
    assert p.annotate_step_runs == {"run1-slow": {"bubustack.io/cancel-requested": "true"}}
    assert world.state("slow")["phase"] == "Canceled"
    assert world.phase == "Succeeded"


def test_stop_failed_ends_run_failed() -> None:
    story = {
        "steps": [{"name": "halt", "type": "stop", "with": {"phase": "Failed"}}, e("x", needs=["halt"])],
        "compensations": [e("undo")],
    }
    world = World(story)
    world.reconcile()
    assert world.phase == "Failed"
    assert world.status["message"] == "Story execution stopped by step 'halt' with phase 'Failed'"
    assert world.state("undo")["phase"] == "Skipped"
    assert world.status["error"]["failedSteps"][0]["name"] == "halt"


# ----------------------------------------------------------------------------- executeStory


def _exec(wait: bool = True) -> dict[str, Any]:
    return {
        "steps": [
            {
                "name": "sub",
                "type": "executeStory",
                "with": {
                    "storyRef": {"name": "child"},
                    "waitForCompletion": wait,
                    "with": {"a": "{{ inputs.a }}"},
                },
            },
            e("next", needs=["sub"], **{"with": {"got": "{{ steps.sub.output }}"}}),
        ]
    }


def _child_story() -> Any:
    return make_story({"steps": [e("c")], "policy": {"with": {"base": 1, "a": 0}}}, name="child")


def test_execute_story_waits_and_exposes_output() -> None:
    world = World(_exec(), inputs={"a": 9}, sub_stories={"sub": _child_story()})
    p = world.reconcile()
    (child,) = p.create_child_runs
    assert child.name == "run1-sub"
    assert child.spec == {"storyRef": {"name": "child"}, "inputs": {"base": 1, "a": 9}}
    assert child.labels == {"bubustack.io/parent-storyrun": "run1", "bubustack.io/parent-step": "sub"}
    assert child.annotations == {
        "bobrapet.bubustack.io/depth": "1",
        "bobrapet.bubustack.io/story-chain": "default/story",
    }
    assert world.state("sub")["phase"] == "Running"
    assert world.state("sub")["subStoryRunName"] == "run1-sub"
    world.set_child("sub", "Succeeded", output={"r": 1})
    world.reconcile()
    assert world.state("sub")["message"] == "Sub-story run 'run1-sub' completed with phase Succeeded"
    assert world.creation_order == ["next"]
    from bobrapet.engine import run_variables

    assert run_variables(world.snapshot())["steps"]["sub"]["output"] == {"r": 1}


def test_execute_story_no_wait_and_child_failure() -> None:
    world = World(_exec(wait=False), inputs={"a": 1}, sub_stories={"sub": _child_story()})
    world.reconcile()
    assert world.state("sub")["message"] == "Launched sub-story run 'run1-sub'"
    failing = World(_exec(), inputs={"a": 1}, sub_stories={"sub": _child_story()})
    failing.reconcile()
    failing.set_child("sub", "Failed", message="child broke")
    failing.reconcile()
    assert failing.state("sub")["phase"] == "Failed" and failing.state("sub")["message"] == "child broke"
    assert failing.phase == "Failed"


def _exec_limited(limit: int) -> dict[str, Any]:
    return {**_exec(), "policy": {"execution": {"maxRecursionDepth": limit}}}


@pytest.mark.parametrize(
    ("spec", "depth", "launched"),
    [
        pytest.param(_exec_limited(2), 1, True, id="story-limit-not-reached"),
        pytest.param(_exec_limited(2), 2, False, id="story-limit-below-engine-default"),
        pytest.param(_exec_limited(20), 15, True, id="story-limit-above-engine-default"),
        pytest.param(_exec_limited(20), 20, False, id="story-limit-reached"),
        pytest.param(_exec(), 15, False, id="engine-default-without-story-limit"),
    ],
)
def test_execute_story_max_recursion_depth_of_the_story_wins(
    spec: dict[str, Any], depth: int, launched: bool
) -> None:
    world = World(spec, inputs={"a": 1}, sub_stories={"sub": _child_story()}, depth=depth)
    plan = world.reconcile()
    assert bool(plan.create_child_runs) is launched
    if not launched:
        state = world.state("sub")
        assert state["phase"] == "Failed" and state["reason"] == "InvalidConfiguration"
        if "policy" in spec:
            limit = spec["policy"]["execution"]["maxRecursionDepth"]
            assert (
                f"exceeds the limit of {limit} (policy.execution.maxRecursionDepth of Story"
                in state["message"]
            )


def test_execute_story_depth_cycle_missing_spoofed() -> None:
    deep = World(_exec(), inputs={"a": 1}, sub_stories={"sub": _child_story()}, depth=10)
    deep.reconcile()
    assert deep.state("sub")["message"].startswith("sub-story nesting depth 11 exceeds the limit of 10 (")
    assert "policy.execution.maxRecursionDepth" in deep.state("sub")["message"]
    assert deep.state("sub")["reason"] == "InvalidConfiguration"
    cyc = World(
        _exec(),
        inputs={"a": 1},
        sub_stories={"sub": _child_story()},
        annotations={"bobrapet.bubustack.io/story-chain": "default/child"},
    )
    cyc.reconcile()
    assert cyc.state("sub")["message"] == "sub-story cycle: default/child -> default/story -> default/child"
    missing = World(_exec(), inputs={"a": 1}, sub_stories={"sub": None})
    missing.reconcile()
    assert missing.state("sub")["reason"] == "ReferenceNotFound"
    spoof = World(_exec(), inputs={"a": 1}, sub_stories={"sub": _child_story()})
    spoof.reconcile()
    spoof.child_runs["sub"] = replace(spoof.child_runs["sub"], owned=False)
    p = spoof.reconcile()
    assert spoof.state("sub")["reason"] == "SubStoryRunSpoofed"
    assert p.events[0].reason == "SubStoryRunSpoofed"


# ----------------------------------------------------------------------------- wait


def _wait(**w: Any) -> dict[str, Any]:
    return {"steps": [e("a"), {"name": "w", "type": "wait", "with": w}, e("b", needs=["w"])]}


def test_wait_until_bare_condition_and_poll() -> None:
    world = World(_wait(until="steps.a.output.ready == true", pollInterval="3s"))
    p = world.reconcile()
    assert world.state("w")["message"] == "Waiting for condition."
    assert p.requeue_after == 3
    world.succeed("a", {"ready": True})
    world.reconcile()
    assert world.state("w")["message"] == "Wait condition satisfied."
    assert "b" in world.creation_order


def test_wait_timeout_fail_and_skip() -> None:
    world = World(_wait(until="false", timeout="5s", pollInterval="10s"))
    p = world.reconcile()
    assert p.requeue_after == 5
    world.advance(5)
    world.reconcile()
    assert world.state("w")["phase"] == "Timeout" and world.state("w")["message"] == "wait step timed out."
    skip = World(_wait(until="{{ false }}", timeout="5s", onTimeout="skip"))
    skip.reconcile()
    skip.advance(6)
    skip.reconcile()
    assert skip.state("w")["message"] == "wait step timed out and was skipped."
    assert "b" in skip.creation_order
    bad = World(_wait())
    bad.reconcile()
    assert bad.state("w")["message"] == "step 'w' of type 'wait' requires 'with.until' to be set"


# ----------------------------------------------------------------------------- gate


def _gate(**w: Any) -> dict[str, Any]:
    return {"steps": [{"name": "g", "type": "gate", **({"with": w} if w else {})}, e("b", needs=["g"])]}


def test_gate_approve_and_reject() -> None:
    world = World(_gate(timeout="1h"))
    p = world.reconcile()
    assert world.state("g")["message"] == "Waiting for gate decision."
    assert p.requeue_after == 3600
    world.approve("g", message="ship it")
    p = world.reconcile()
    assert world.state("g")["message"] == "ship it" and world.state("g")["phase"] == "Succeeded"
    assert p.status["gates"]["g"]["state"] == "Approved"
    assert world.creation_order == ["b"]
    rej = World(_gate())
    rej.reconcile()
    rej.approve("g", "Rejected")
    rej.reconcile()
    assert rej.state("g")["message"] == "Gate rejected."
    assert rej.phase == "Failed"


def test_gate_timeouts() -> None:
    world = World(_gate(), config=EngineConfig(approval_default_timeout=60))
    p = world.reconcile()
    assert p.requeue_after == 60
    world.advance(60)
    world.reconcile()
    assert world.state("g")["phase"] == "Timeout" and world.state("g")["message"] == "gate step timed out."
    skip = World(_gate(timeout="10s", onTimeout="skip"))
    skip.reconcile()
    skip.advance(11)
    skip.reconcile()
    assert skip.state("g")["message"] == "gate step timed out and was skipped."
    forever = World(_gate(), config=EngineConfig(approval_default_timeout=None))
    assert forever.reconcile().requeue_after is None


def test_random_templates_of_branches_are_seeded_by_run_and_branch() -> None:
    """Planning again (another reconcile, another engine) renders the same branch inputs."""
    story = {
        "steps": [
            {
                "name": "p",
                "type": "parallel",
                "with": {
                    "steps": [
                        {"name": "x", "ref": {"name": "e"}, "with": {"id": "{{ uuidv4() }}"}},
                        {"name": "y", "ref": {"name": "e"}, "with": {"id": "{{ uuidv4() }}"}},
                    ]
                },
            }
        ]
    }

    def inputs() -> dict[str, Any]:
        world = World(story)
        return {s.step_id: s.spec["input"]["id"] for s in world.reconcile().create_step_runs}

    first = inputs()
    assert first == inputs()
    assert first["x"] != first["y"]
