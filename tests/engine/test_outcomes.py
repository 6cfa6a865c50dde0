"""Failure policies, compensations/finally, the verdict, output, inputs and launch failures."""

from __future__ import annotations

from typing import Any

from tests.engine.harness import World

from bobrapet.engine import EngineConfig


def e(name: str, **kw: Any) -> dict[str, Any]:
    if "with_" in kw:
        kw["with"] = kw.pop("with_")
    return {"name": name, "ref": {"name": "e"}, **kw}


def fail_on(*names: str) -> Any:
    return lambda sid: ("Failed", f"{sid} broke") if sid in names else ("Succeeded", {"id": sid})


def test_fail_fast_skips_not_started_and_lets_running_finish() -> None:
    world = World({"steps": [e("a"), e("b"), e("c", needs=["a"]), e("d", needs=["c"])]})
    world.reconcile()
    world.fail("a")
    world.reconcile()
    assert world.state("c")["message"] == "Skipped due to fail-fast policy"
    assert world.phase == "Running"  # b still running
    world.succeed("b")
    world.reconcile()
    assert world.phase == "Failed"
    status = world.status
    assert status["message"] == "Story completed with failed step: a."
    assert status["error"] == {
        "type": "DependencyFailed",
        "message": "Story completed with failed step: a.",
        "failedSteps": [{"name": "a", "phase": "Failed", "message": "boom"}],
    }
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"
    assert status["stepsFailed"] == 1 and status["stepsSkipped"] == 2 and status["stepsComplete"] == 1


def test_continue_on_step_failure_skips_only_dependents_transitively() -> None:
    story = {
        "steps": [e("a"), e("b"), e("c", needs=["a"]), e("d", needs=["c"]), e("f", needs=["b"])],
        "policy": {"retries": {"continueOnStepFailure": True}},
    }
    world = World(story)
    assert world.drive(fail_on("a")) == "Failed"
    assert world.state("c")["message"] == "Skipped due to failed dependency: a"
    assert world.state("d")["message"] == "Skipped due to failed dependency: c"
    assert world.state("f")["phase"] == "Succeeded"


def test_allow_failure_counts_as_completed() -> None:
    world = World({"steps": [e("a", allowFailure=True), e("b", needs=["a"])]})
    assert world.drive(fail_on("a")) == "Succeeded"
    assert world.status["allowedFailures"] == ["a"]
    assert world.status["message"] == "Completed with allowed failures: a."


def test_compensations_run_on_failure_then_finally() -> None:
    story = {
        "steps": [e("a")],
        "compensations": [e("undo", needs=["a"])],
        "finally": [e("fin", needs=["undo"])],
    }
    world = World(story)
    assert world.drive(fail_on("a")) == "Compensated"
    assert world.creation_order == ["a", "undo", "fin"]
    assert world.status["message"] == "Story failed; compensations completed."
    assert world.status["error"]["type"] == "Compensated"


def test_compensations_skipped_on_success_finally_always_runs() -> None:
    story = {"steps": [e("a")], "compensations": [e("undo")], "finally": [e("fin")]}
    world = World(story)
    assert world.drive() == "Succeeded"
    assert world.state("undo")["message"] == "Skipped because story succeeded"
    assert world.creation_order == ["a", "fin"]


def test_verdict_priorities() -> None:
    story = {"steps": [e("a")], "compensations": [e("undo")], "finally": [e("fin")]}
    world = World(story)
    assert world.drive(fail_on("a", "undo", "fin")) == "Failed"
    assert world.status["error"]["type"] == "CleanupFailed"
    assert world.status["message"] == "Finally step fin failed."
    world = World(story)
    assert world.drive(fail_on("a", "undo")) == "Failed"
    assert world.status["message"] == "Compensation step undo failed."
    assert world.status["error"]["type"] == "CompensationFailed"


def test_output_and_schema() -> None:
    story = {
        "steps": [e("a")],
        "output": {"id": "{{ steps.a.output.step }}", "n": "{{ inputs.n }}"},
        "outputsSchema": {"type": "object", "properties": {"id": {"type": "string"}}},
        "inputsSchema": {"type": "object", "properties": {"n": {"type": "integer", "default": 4}}},
    }
    world = World(story)
    assert world.drive() == "Succeeded"
    assert world.status["output"] == {"id": "a", "n": 4}
    bad = World({**story, "outputsSchema": {"type": "object", "properties": {"id": {"type": "integer"}}}})
    assert bad.drive() == "Failed"
    assert bad.status["error"]["type"] == "OutputSchemaFailed"
    assert bad.status["message"].startswith("Story output failed schema validation: id:")
    broken = World({**story, "output": {"x": "{{ steps.a.output.step + 1 }}"}, "outputsSchema": None})
    assert broken.drive() == "Failed"
    assert broken.status["error"]["type"] == "OutputResolutionFailed"


def test_output_too_large_is_degraded_success() -> None:
    story = {"steps": [e("a")], "output": {"big": "{{ steps.a.output.blob }}"}}
    world = World(story, config=EngineConfig(max_output_size=100))
    assert world.drive(lambda sid: ("Succeeded", {"blob": "x" * 200})) == "Succeeded"
    assert "output" not in world.status
    assert (
        world.status["message"]
        == "All steps completed successfully, but the final output was too large to store."
    )
    degraded = next(c for c in world.status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "OutputResolutionFailed"


def test_inputs_schema_failure_and_too_large() -> None:
    story = {"steps": [e("a")], "inputsSchema": {"type": "object", "required": ["n"]}}
    world = World(story, inputs={})
    world.reconcile()
    assert world.phase == "Failed" and world.status["error"]["type"] == "InputSchemaFailed"
    big = World({"steps": [e("a")]}, inputs={"x": "y" * 100}, config=EngineConfig(max_inline_inputs_size=50))
    big.reconcile()
    assert big.phase == "Failed"
    assert big.status["message"] == "spec.inputs size 108 bytes exceeds maximum of 50"


def test_story_not_found_then_appears() -> None:
    world = World(None)
    p = world.reconcile()
    assert world.phase == "Pending" and p.requeue_after == 5
    ready = next(c for c in world.status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "StoryNotFound"
    from tests.engine.harness import make_story

    world.story = make_story({"steps": [e("a")]})
    world.engrams = {"e": {"spec": {"templateRef": {"name": "tpl"}}}}
    assert world.drive() == "Succeeded"


def test_realtime_and_bad_graph_fail() -> None:
    rt = World({"pattern": "realtime", "steps": [e("a")]})
    rt.reconcile()
    assert rt.phase == "Failed" and rt.status["error"]["type"] == "InvalidConfiguration"
    bad = World({"steps": [e("a", with_={"v": "{{ steps.ghost.output }}"})]})
    bad.reconcile()
    assert bad.phase == "Failed"
    assert bad.status["message"] == "Invalid story dependency graph: unknown step dependencies: a->ghost"
    cyc = World({"steps": [e("a", needs=["b"]), e("b", with_={"v": "{{ steps.a.output }}"})]})
    cyc.reconcile()
    assert cyc.status["message"] == "Invalid story dependency graph: dependency cycle: a -> b -> a"


def test_story_timeout() -> None:
    world = World({"steps": [e("a")], "policy": {"timeouts": {"story": "1m"}}})
    p = world.reconcile()
    assert p.requeue_after == 60
    world.advance(60)
    p = world.reconcile()
    assert world.phase == "Timeout"
    assert world.status["message"] == "StoryRun exceeded timeout of 1m0s."
    assert world.status["error"]["type"] == "TimedOut"
    assert p.annotate_step_runs == {"run1-a": {"bubustack.io/cancel-requested": "true"}}


def test_launch_failures_are_recorded() -> None:
    world = World({"steps": [e("a")]}, engrams={"e": None})
    world.reconcile()
    state = world.state("a")
    assert state["phase"] == "Failed" and state["reason"] == "ReferenceNotFound"
    assert "Engram 'default/e'" in state["message"]
    assert world.phase == "Failed"
    nt = World({"steps": [e("a")]}, templates={})
    nt.reconcile()
    assert nt.state("a")["reason"] == "TemplateNotFound"
    big = World({"steps": [e("a", with_={"v": "x" * 100})]}, config=EngineConfig(max_step_spec_input=50))
    big.reconcile()
    assert big.state("a")["reason"] == "InputTooLarge"
    assert big.state("a")["message"].startswith("step input for a is ")


def test_retry_pending_stays_non_terminal() -> None:
    world = World({"steps": [e("a")]})
    world.reconcile()
    world.set_step("a", "Pending", message="Retry 1/3 scheduled")
    world.reconcile()
    assert world.state("a")["phase"] == "Pending" and world.phase == "Running"
    world.succeed("a")
    world.reconcile()
    assert world.phase == "Succeeded"


def test_terminal_state_is_never_overwritten() -> None:
    world = World({"steps": [e("a"), e("b")]})
    world.reconcile()
    world.succeed("a")
    world.reconcile()
    world.set_step("a", "Running")
    world.reconcile()
    assert world.state("a")["phase"] == "Succeeded"


def test_trigger_tokens_for_impulse_runs() -> None:
    world = World({"steps": [e("a")]})
    world.run["spec"]["impulseRef"] = {"name": "imp"}
    assert world.drive() == "Succeeded"
    assert world.status["triggerTokens"] == ["story", "impulse", "impulse-success"]
