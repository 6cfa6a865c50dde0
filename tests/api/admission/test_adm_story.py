"""Story admission: one test per bad input of reference §1.15 (plus the deliberate differences)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.api.admission.adm_helpers import Causes, messages, story_doc

from bobrapet.api import structural
from bobrapet.api.admission import AdmissionConfig, Admitted
from bobrapet.api.errors import Invalid
from bobrapet.api.kinds import STORY

CausesOf = Callable[..., Awaitable[Causes]]
RunAdmit = Callable[..., Awaitable[Admitted]]


def ref(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "ref": {"name": "worker"}, **kw}


def prim(name: str, type_: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **kw}


async def test_valid_story_is_admitted_without_invented_retry_policies(run_admit: RunAdmit) -> None:
    # Deliberate difference: a written retry policy retries any failure, so the defaulter
    # never creates one (the Go defaulter adds stepRetryPolicy, sideEffects/execution retries).
    doc = story_doc(
        steps=[
            ref("fetch", with_={}),
            ref("use", needs=["fetch"], sideEffects=True),
            ref("slow", execution={"timeout": "5s"}),
        ],
        policy={"timeouts": {"story": "1h"}},
    )
    doc["spec"]["steps"][0].pop("with_")
    result = await run_admit(doc)
    spec = result.object["spec"]
    assert "retries" not in spec["policy"]
    assert "execution" not in spec["steps"][0]
    assert "execution" not in spec["steps"][1]
    assert spec["steps"][2]["execution"] == {"timeout": "5s"}


async def test_written_retry_policies_get_their_missing_fields(run_admit: RunAdmit) -> None:
    doc = story_doc(
        steps=[ref("a", execution={"retry": {"maxRetries": 1}})],
        policy={"retries": {"stepRetryPolicy": {"delay": "2s"}}},
    )
    spec = (await run_admit(doc)).object["spec"]
    assert spec["policy"]["retries"] == {
        "stepRetryPolicy": {"maxRetries": 3, "delay": "2s", "backoff": "exponential"},
        "continueOnStepFailure": False,
    }
    assert spec["steps"][0]["execution"]["retry"] == {
        "maxRetries": 1,
        "delay": "1s",
        "backoff": "exponential",
    }


async def test_admission_does_not_mutate_input(run_admit: RunAdmit) -> None:
    doc = story_doc(steps=[ref("a", sideEffects=True)], policy={})
    before = repr(doc)
    await run_admit(doc)
    assert repr(doc) == before


async def test_step_with_both_ref_and_type(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[{"name": "a", "ref": {"name": "worker"}, "type": "sleep"}]))
    assert ("spec.steps[0]", causes[0][1]) in causes
    assert "step 'a' must not set both ref and type" in messages(causes)


async def test_step_with_neither_ref_nor_type(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[{"name": "a"}]))
    assert "step 'a' must set either ref" in messages(causes)


async def test_duplicate_name_in_finally(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a")], compensations=[ref("b")])
    doc["spec"]["finally"] = [ref("a")]
    causes = await causes_of(doc)
    assert any(f == "spec.finally[0].name" and "duplicate step name 'a'" in m for f, m in causes), causes


async def test_self_dependency(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[ref("a", needs=["a"])]))
    assert ("spec.steps[0].needs[0]", "step 'a' cannot depend on itself in needs") in causes


async def test_unknown_need(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[ref("a"), ref("b", needs=["fetchh"])]))
    assert any(
        f == "spec.steps[1].needs[0]" and "step 'b' lists unknown dependency 'fetchh' in needs" in m
        for f, m in causes
    )


async def test_main_step_cannot_need_finally_step(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a", needs=["cleanup"])])
    doc["spec"]["finally"] = [ref("cleanup")]
    causes = await causes_of(doc)
    assert "may only depend on steps in steps" in messages(causes)


async def test_compensation_and_finally_may_need_earlier_blocks(run_admit: RunAdmit) -> None:
    doc = story_doc(steps=[ref("a")], compensations=[ref("undo", needs=["a"])])
    doc["spec"]["finally"] = [ref("notify", needs=["a", "undo"])]
    await run_admit(doc)


async def test_cycle_lists_members_in_order(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a", needs=["c"]), ref("b", needs=["a"]), ref("c", needs=["b"]), ref("d")])
    causes = await causes_of(doc)
    assert any("steps contains a dependency cycle: a -> c -> b -> a" in m for _, m in causes), causes


async def test_cycle_through_template_reference(causes_of: CausesOf) -> None:
    doc = story_doc(
        steps=[ref("a", with_={}), ref("b", needs=["a"])],
    )
    doc["spec"]["steps"][0] = ref("a", **{"with": {"x": "{{ steps.b.output.x }}"}})
    causes = await causes_of(doc)
    assert "steps contains a dependency cycle: a -> b -> a" in messages(causes)


async def test_gate_in_realtime_story(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(pattern="realtime", steps=[prim("approve", "gate")]))
    assert ("spec.steps[0].type", causes[0][1]) in causes
    assert "step 'approve' of type 'gate' is only supported for batch stories" in messages(causes)


async def test_wait_in_realtime_story(causes_of: CausesOf) -> None:
    causes = await causes_of(
        story_doc(pattern="realtime", steps=[prim("w", "wait", **{"with": {"until": "inputs.ok"}})])
    )
    assert "step 'w' of type 'wait' is only supported for batch stories" in messages(causes)


async def test_wait_without_until(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[prim("w", "wait", **{"with": {"timeout": "1m"}})]))
    assert ("spec.steps[0].with.until", "step 'w' of type 'wait' requires 'with.until' to be set") in causes


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("timeout", "soon", "invalid duration 'soon'"),
        ("timeout", "-5s", "must be a positive duration"),
        ("pollInterval", "1ms", "must be at least 10ms"),
        ("pollInterval", "0s", "must be a positive duration"),
    ],
)
async def test_wait_bad_durations(causes_of: CausesOf, field: str, value: str, expected: str) -> None:
    doc = story_doc(steps=[prim("w", "wait", **{"with": {"until": "inputs.ok", field: value}})])
    causes = await causes_of(doc)
    assert any(f == f"spec.steps[0].with.{field}" and expected in m for f, m in causes), causes


async def test_wait_bad_on_timeout(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[prim("w", "wait", **{"with": {"until": "inputs.ok", "onTimeout": "retry"}})])
    causes = await causes_of(doc)
    assert ("spec.steps[0].with.onTimeout", "onTimeout must be 'fail' or 'skip', got 'retry'") in causes


async def test_on_timeout_is_case_insensitive(run_admit: RunAdmit) -> None:
    await run_admit(story_doc(steps=[prim("g", "gate", **{"with": {"onTimeout": "Skip", "timeout": "1h"}})]))


async def test_gate_bad_timeout(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[prim("g", "gate", **{"with": {"timeout": "1x"}})]))
    assert any(f == "spec.steps[0].with.timeout" and "unknown unit 'x'" in m for f, m in causes)


async def test_sleep_invalid_duration(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[prim("s", "sleep", **{"with": {"duration": "forever"}})]))
    assert any(f == "spec.steps[0].with.duration" for f, _ in causes)


async def test_stop_invalid_phase(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[prim("s", "stop", **{"with": {"phase": "Done"}})]))
    assert any(f == "spec.steps[0].with.phase" and "Succeeded, Failed, Canceled" in m for f, m in causes)


async def test_execute_story_requires_story_ref(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[prim("sub", "executeStory", **{"with": {"with": {}}})]))
    assert any(f == "spec.steps[0].with.storyRef.name" for f, _ in causes)


async def test_execute_story_cannot_reference_itself(causes_of: CausesOf) -> None:
    doc = story_doc("demo", steps=[prim("sub", "executeStory", **{"with": {"storyRef": {"name": "demo"}}})])
    causes = await causes_of(doc)
    assert ("spec.steps[0].with.storyRef", "step 'sub' cannot reference the same story") in causes


async def test_execute_story_missing_target_is_warning(run_admit: RunAdmit) -> None:
    doc = story_doc(steps=[prim("sub", "executeStory", **{"with": {"storyRef": {"name": "nope"}}})])
    result = await run_admit(doc)
    assert any(
        w.startswith("spec.steps[0].with.storyRef: Story 'default/nope' not found") for w in result.warnings
    )


async def test_parallel_requires_engram_branches(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[prim("p", "parallel", **{"with": {"steps": [{"name": "x", "type": "sleep"}]}})])
    causes = await causes_of(doc)
    assert any(f == "spec.steps[0].with.steps[0]" and "must be engram steps" in m for f, m in causes)


async def test_parallel_branch_needs_and_if_are_rejected_not_ignored(causes_of: CausesOf) -> None:
    branch = {"name": "x", "ref": {"name": "e"}, "needs": ["a"], "if": "inputs.go"}
    doc = story_doc(steps=[ref("a"), prim("p", "parallel", **{"with": {"steps": [branch]}})])
    causes = dict(await causes_of(doc))
    assert "not supported in a parallel branch" in causes["spec.steps[1].with.steps[0].needs"]
    assert "put 'if' on 'p'" in causes["spec.steps[1].with.steps[0].if"]


async def test_parallel_without_steps(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[prim("p", "parallel", **{"with": {}})]))
    assert any(f == "spec.steps[0].with.steps" for f, _ in causes)


async def test_requires_must_start_with_steps(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[ref("a"), ref("b", needs=["a"], requires=["inputs.x"])]))
    assert ("spec.steps[1].requires[0]", "requires path must start with 'steps.', got 'inputs.x'") in causes


async def test_requires_needs_three_segments(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[ref("a"), ref("b", needs=["a"], requires=["steps.a"])]))
    assert any("at least 3 segments" in m for _, m in causes)


async def test_requires_unknown_step(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[ref("a"), ref("b", requires=["steps.zzz.output"])]))
    assert any("references unknown step 'zzz'" in m for _, m in causes)


async def test_requires_not_upstream(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[ref("a"), ref("b", requires=["steps.a.output.x"])]))
    assert (
        "spec.steps[1].requires[0]",
        "requires path 'steps.a.output.x' references step 'a' which is not upstream of 'b' "
        "(add it to needs or needs chain)",
    ) in causes


async def test_requires_transitive_upstream_ok(run_admit: RunAdmit) -> None:
    await run_admit(
        story_doc(
            steps=[ref("a"), ref("b", needs=["a"]), ref("c", needs=["b"], requires=["steps.a.output.x"])]
        )
    )


async def test_template_reference_makes_step_upstream(run_admit: RunAdmit) -> None:
    doc = story_doc(
        steps=[
            ref("a"),
            ref("b", requires=["steps.a.output.x"], **{"with": {"url": "{{ steps.a.output.url }}"}}),
        ]
    )
    await run_admit(doc)


async def test_unknown_step_reference_in_template_is_error(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a"), ref("b", **{"with": {"url": "{{ steps.fetch.output.url }}"}})])
    causes = await causes_of(doc)
    assert any(f == "spec.steps[1].with.url" and "references unknown step 'fetch'" in m for f, m in causes), (
        causes
    )


async def test_hyphenated_step_alias_gets_specific_hint(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("fetch-data"), ref("b", **{"if": "steps.fetch_data.output.ok"})])
    causes = await causes_of(doc)
    assert "must be written steps['fetch-data']" in messages(causes)


async def test_main_step_referencing_finally_step_is_error(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a", **{"with": {"x": "{{ steps.notify.output }}"}})])
    doc["spec"]["finally"] = [ref("notify")]
    causes = await causes_of(doc)
    assert "step 'a' lists step 'notify' of finally in with" in messages(causes)


async def test_step_referencing_its_own_output(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[ref("a", **{"if": "steps.a.output.ok"})]))
    assert "references its own output" in messages(causes)


async def test_malformed_expression_reports_position(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a", **{"with": {"x": "id: {{ inputs.a + }}"}})])
    causes = await causes_of(doc)
    (_field, message) = next(c for c in causes if c[0] == "spec.steps[0].with.x")
    assert "invalid expression" in message
    assert "line 1, column 19" in message  # the "}}" that ends the expression too early


async def test_denied_function_in_template(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a", **{"with": {"home": "{{ env('HOME') }}", "p": "{{ x | expandenv }}"}})])
    causes = await causes_of(doc)
    assert (
        "spec.steps[0].with.home",
        "function 'env' is not allowed in templates (line 1, column 4)",
    ) in causes
    assert any(f == "spec.steps[0].with.p" and "'expandenv' is not allowed" in m for f, m in causes)


async def test_go_template_syntax_in_if(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[ref("a", **{"if": '{{ eq .inputs.mode "fast" }}'})]))
    assert (
        "spec.steps[0].if",
        'Go-template syntax is not supported: "{{ eq .inputs.mode "fast" }}" — write Jinja instead, '
        "e.g. \"{{ inputs.mode == 'fast' }}\"",
    ) in causes


async def test_context_not_allowed_in_realtime_with(causes_of: CausesOf) -> None:
    doc = story_doc(
        pattern="realtime",
        steps=[{"name": "a", "ref": {"name": "streamer"}, "with": {"x": "{{ packet.x }}"}}],
    )
    causes = await causes_of(doc)
    assert ("spec.steps[0].with.x", "context 'packet' is not allowed for realtime-static templates") in causes


async def test_now_not_allowed_in_realtime_with(causes_of: CausesOf) -> None:
    doc = story_doc(
        pattern="realtime", steps=[{"name": "a", "ref": {"name": "streamer"}, "with": {"t": "{{ now() }}"}}]
    )
    causes = await causes_of(doc)
    assert ("spec.steps[0].with.t", "function 'now' is not allowed for realtime-static templates") in causes


async def test_unknown_context_in_output(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[ref("a")], output={"r": "{{ result.x }}"}))
    assert any(
        f == "spec.output.r" and m.startswith("unknown context 'result' is not allowed for story-output")
        for f, m in causes
    )


async def test_post_execution_only_self(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a"), ref("b", needs=["a"], postExecution={"condition": "steps.a.output.ok"})])
    causes = await causes_of(doc)
    assert "can only reference this step's output as steps.self.output" in messages(causes)


async def test_post_execution_self_ok(run_admit: RunAdmit) -> None:
    await run_admit(story_doc(steps=[ref("a", postExecution={"condition": "steps.self.output.ok == true"})]))


async def test_oversized_with_block(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a", **{"with": {"blob": "x" * 2000}})])
    causes = await causes_of(doc, config=AdmissionConfig(max_with_block_size=1024))
    assert (
        "spec.steps[0].with",
        "with block size of 2011 bytes exceeds maximum allowed size of 1024 bytes; pass large data "
        "through storage references or ConfigMaps instead of inlining it",
    ) in causes


async def test_oversized_output_block(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a")], output={"blob": "y" * 70000})
    causes = await causes_of(doc)
    assert any(
        f == "spec.output"
        and m.startswith("output block size of 70011 bytes exceeds maximum allowed size of 65536")
        for f, m in causes
    )


async def test_oversized_policy_with_block(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a")], policy={"with": {"blob": "z" * 70000}})
    causes = await causes_of(doc)
    assert any(f == "spec.policy.with" and m.startswith("policy.with block size") for f, m in causes)


async def test_oversized_story(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a", **{"with": {"blob": "x" * 3000}})])
    causes = await causes_of(doc, config=AdmissionConfig(max_story_size=2048))
    assert len(causes) == 1 and "story size of" in causes[0][1] and "2048 bytes" in causes[0][1]


async def test_inputs_schema_must_compile(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a")], inputsSchema={"type": "objekt"})
    causes = await causes_of(doc)
    assert any(f == "spec.inputsSchema" and "invalid JSON Schema" in m for f, m in causes)


async def test_policy_timeouts_positive(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a")], policy={"timeouts": {"story": "0s", "step": "abc"}})
    causes = await causes_of(doc)
    fields = {f for f, _ in causes}
    assert {"spec.policy.timeouts.story", "spec.policy.timeouts.step"} <= fields


async def test_transport_rules(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("a", transport="audio")])
    causes = await causes_of(doc)
    assert "does not declare any transports" in messages(causes)
    doc = story_doc(
        steps=[ref("a", transport="video")],
        transports=[{"name": "audio", "transportRef": "livekit"}, {"name": "audio", "transportRef": "x"}],
    )
    causes = await causes_of(doc)
    text = messages(causes)
    assert "references unknown transport 'video' (declared: audio)" in text
    assert "duplicate transport name 'audio'" in text


async def test_missing_engram_is_warning(run_admit: RunAdmit) -> None:
    doc = story_doc(steps=[{"name": "a", "ref": {"name": "ghost"}}])
    result = await run_admit(doc)
    assert result.warnings == [
        "spec.steps[0].ref: Engram 'default/ghost' not found; steps using it will fail until it is created"
    ]


async def test_missing_engram_template_is_error(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[{"name": "a", "ref": {"name": "orphan"}}]))
    assert any(f == "spec.steps[0].ref" and "EngramTemplate 'missing-template'" in m for f, m in causes)


def typed(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "ref": {"name": "typed"}, **kw}


async def test_engram_inputs_validated_against_template_schema(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[typed("a", **{"with": {"retries": "many"}})])
    causes = await causes_of(doc)
    text = messages(causes)
    assert "'url' is a required property" in text  # inline `required: true` was lifted
    assert "spec.steps[0].with.retries" in text


async def test_engram_inputs_accept_templates_and_refs(run_admit: RunAdmit) -> None:
    doc = story_doc(
        steps=[
            typed("a", **{"with": {"url": {"$bubuSecretRef": "creds:url"}}}),
            typed(
                "b", needs=["a"], **{"with": {"url": "{{ steps.a.output.url }}", "retries": "{{ inputs.n }}"}}
            ),
        ]
    )
    await run_admit(doc)


async def test_runtime_in_batch_needs_transport_or_streaming_engram(
    causes_of: CausesOf, run_admit: RunAdmit
) -> None:
    causes = await causes_of(story_doc(steps=[ref("a", runtime={"x": 1})]))
    assert any(f == "spec.steps[0].runtime" for f, _ in causes)
    await run_admit(
        story_doc(steps=[{"name": "a", "ref": {"name": "streamer"}, "runtime": {"url": "{{ packet.url }}"}}])
    )


async def test_cross_namespace_engram_denied(causes_of: CausesOf) -> None:
    causes = await causes_of(
        story_doc(steps=[{"name": "a", "ref": {"name": "remote", "namespace": "other"}}])
    )
    assert any(
        f == "spec.steps[0].ref" and m.startswith("cross-namespace Engram references are not allowed")
        for f, m in causes
    )


async def test_all_problems_reported_together(causes_of: CausesOf) -> None:
    doc = story_doc(
        steps=[ref("a", needs=["a"]), {"name": "b"}, prim("w", "wait", **{"with": {}})],
        policy={"timeouts": {"story": "nope"}},
    )
    causes = await causes_of(doc)
    assert len(causes) >= 4


async def test_unchanged_spec_update_skips_validation(run_admit: RunAdmit) -> None:
    doc = story_doc(steps=[{"name": "a", "ref": {"name": "orphan"}}])
    with pytest.raises(Invalid):
        await run_admit(doc)
    stored, _ = structural.check(STORY, doc)  # what the store would hold (admitted earlier)
    await run_admit(stored, old=stored)


def _big_story(n: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [ref("s0", **{"with": {"url": "http://x"}})]
    for i in range(1, n):
        steps.append(
            ref(
                f"s{i}",
                needs=[f"s{i - 1}"],
                requires=[f"steps.s{max(0, i - 5)}.output.url"] if i >= 5 else [],
                **{"with": {"url": f"{{{{ steps.s{i - 1}.output.url }}}}"}},
            )
        )
    return story_doc(steps=steps)


@pytest.mark.slow
async def test_thousand_step_story_is_fast(run_admit: RunAdmit) -> None:
    doc = _big_story(1000)
    start = time.process_time()  # CPU time: immune to a loaded machine
    result = await run_admit(doc)
    elapsed = time.process_time() - start
    assert len(result.object["spec"]["steps"]) == 1000
    assert elapsed < 10.0  # ~25x the typical 0.4 s CPU: catches a quadratic blow-up only


def _fan_in_story(n: int) -> dict[str, Any]:
    sources = [ref(f"s{i}") for i in range(n - 1)]
    join = ref(
        "join",
        needs=[f"s{i}" for i in range(0, n - 1, 2)],
        **{"with": {f"k{i}": f"{{{{ steps.s{i}.output }}}}" for i in range(1, n - 1, 2)}},
    )
    return story_doc(steps=[*sources, join])


@pytest.mark.slow
async def test_thousand_step_fan_in_is_fast(run_admit: RunAdmit) -> None:
    doc = _fan_in_story(1000)
    start = time.process_time()  # CPU time: immune to a loaded machine
    result = await run_admit(doc)
    elapsed = time.process_time() - start
    assert len(result.object["spec"]["steps"]) == 1000
    assert elapsed < 10.0  # ~25x the typical 0.4 s CPU: catches a quadratic blow-up only


async def test_thousand_step_cycle_message_stays_readable(causes_of: CausesOf) -> None:
    steps = [ref("s0", needs=["s999"])] + [ref(f"s{i}", needs=[f"s{i - 1}"]) for i in range(1, 1000)]
    causes = await causes_of(story_doc(steps=steps))
    (field, message) = causes[0]
    assert field == "spec.steps[0].needs[0]"
    assert "s0 -> s999 -> s998" in message and "1000 steps" in message
    assert len(message) < 1000
    assert "remove one of these dependencies" in message


def _parallel(name: str, *branches: str) -> dict[str, Any]:
    return prim(name, "parallel", **{"with": {"steps": [ref(b) for b in branches]}})


async def test_parallel_branch_output_is_addressable(run_admit: RunAdmit) -> None:
    # reference §2.6: branch outputs are exposed as steps.<branch name>
    doc = story_doc(
        steps=[
            _parallel("fan", "left", "right"),
            ref(
                "after",
                **{"with": {"x": "{{ steps.left.output.v }}"}},
                requires=["steps.right.output.v"],
                needs=["fan"],
            ),
        ],
        output={"l": "{{ steps['left'].output }}"},
    )
    await run_admit(doc)


async def test_parallel_branch_reference_implies_dependency_on_parent(causes_of: CausesOf) -> None:
    doc = story_doc(
        steps=[
            _parallel("fan", "left"),
            ref("after", **{"with": {"x": "{{ steps.left.output.v }}"}}),
            ref("loop", needs=["after"]),
        ]
    )
    doc["spec"]["steps"][0]["needs"] = ["loop"]
    causes = await causes_of(doc)
    assert any("dependency cycle" in m and "fan" in m for _, m in causes)


async def test_parallel_branch_name_must_not_clash_with_step(causes_of: CausesOf) -> None:
    doc = story_doc(
        steps=[
            _parallel("fan", "left"),
            ref("left"),
            _parallel("fan2", "right", "x"),
            _parallel("fan3", "right"),
        ]
    )
    causes = await causes_of(doc)
    text = messages(causes)
    assert "spec.steps[0].with.steps[0].name: parallel branch name 'left' is already used by" in text
    assert "spec.steps[3].with.steps[0].name: parallel branch name 'right' is already used by" in text


async def test_parallel_branches_cannot_use_each_other(causes_of: CausesOf) -> None:
    doc = story_doc(
        steps=[
            prim(
                "fan",
                "parallel",
                **{
                    "with": {
                        "steps": [ref("left"), ref("right", **{"with": {"x": "{{ steps.left.output }}"}})]
                    }
                },
            )
        ]
    )
    causes = await causes_of(doc)
    assert causes[0][0] == "spec.steps[0].with.steps[1].with.x"
    assert "run concurrently" in causes[0][1]


async def test_hyphenated_name_with_dot_syntax_gets_subscript_hint(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[ref("fetch-data"), ref("use", **{"with": {"x": "{{ steps.fetch-data.output }}"}})])
    causes = await causes_of(doc)
    text = messages(causes)
    assert "steps['fetch-data']" in text
    assert "unknown context 'data'" not in text


@pytest.mark.slow
async def test_thousand_unknown_references_are_rejected_fast(causes_of: CausesOf) -> None:
    # one typo repeated through a generated story: every step names an unknown dependency
    steps = [ref("step-number-0")]
    for i in range(1, 1000):
        typo = f"step-numbr-{i - 1}"
        if i % 2:
            steps.append(ref(f"step-number-{i}", needs=[typo]))
        else:
            steps.append(ref(f"step-number-{i}", **{"with": {"x": f"{{{{ steps['{typo}'].output }}}}"}}))
    start = time.process_time()  # CPU time: immune to a loaded machine
    causes = await causes_of(story_doc(steps=steps))
    elapsed = time.process_time() - start
    assert len(causes) == 999
    assert "did you mean 'step-number-0'?" in causes[0][1]
    assert elapsed < 10.0  # ~20x the typical 0.5 s CPU; fuzzy hints for every cause took ~20 s


async def test_needs_naming_a_parallel_branch_points_to_its_step(causes_of: CausesOf) -> None:
    doc = story_doc(steps=[_parallel("fan", "left"), ref("after", needs=["left"])])
    causes = await causes_of(doc)
    assert causes == [
        (
            "spec.steps[1].needs[0]",
            "step 'after' lists 'left' in needs, but 'left' is a parallel branch of step 'fan'; "
            "list 'fan' in needs instead",
        )
    ]


async def test_wait_until_of_wrong_type_says_so(causes_of: CausesOf) -> None:
    causes = await causes_of(story_doc(steps=[prim("w", "wait", **{"with": {"until": True}})]))
    assert causes == [
        (
            "spec.steps[0].with.until",
            "step 'w' with.until must be a condition expression string such as "
            '"inputs.ready == true", got true',
        )
    ]


async def test_step_secrets_must_be_declared_by_the_template(causes_of: CausesOf) -> None:
    step = {"name": "a", "ref": {"name": "typed"}, "with": {"url": "u"}, "secrets": {"nope": "creds"}}
    branch = {"name": "b", "ref": {"name": "typed"}, "with": {"url": "u"}, "secrets": {"other": "creds"}}
    causes = await causes_of(story_doc(steps=[step]))
    assert causes == [
        (
            "spec.steps[0].secrets.nope",
            "secret 'nope' is not declared by EngramTemplate 'http' (declared: token)",
        )
    ]
    doc = story_doc(steps=[{"name": "p", "type": "parallel", "with": {"steps": [branch]}}])
    text = messages(await causes_of(doc))
    assert "spec.steps[0].with.steps[0].secrets.other: secret 'other' is not declared" in text


async def test_step_secrets_to_a_missing_secret_only_warn(run_admit: RunAdmit) -> None:
    step = {"name": "a", "ref": {"name": "typed"}, "with": {"url": "u"}, "secrets": {"token": "creds"}}
    result = await run_admit(story_doc(steps=[step]))
    assert any("Secret 'default/creds' does not exist yet" in str(w) for w in result.warnings)
