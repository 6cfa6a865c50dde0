"""The pure launch decision (engine/attempt.py): gathered data in, attempt/failure/wait out.

No store, no executor, no clock: a fixed ``now`` (the fake clock reading) is the only time.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.engine.harness import T0, make_story

from bobrapet.api.conditions import Reason
from bobrapet.engine import (
    BLOCKED_RETRY,
    MISSING_REFERENCE_RETRY,
    WAITING_FOR_CAPACITY,
    EngineConfig,
    LaunchAttempt,
    LaunchBlocked,
    LaunchFailed,
    LaunchInput,
    Snapshot,
    StepRunView,
    decide_launch,
    find_step,
    launch_secret_names,
)
from bobrapet.engine.config import EMBEDDED_STORAGE
from bobrapet.storage.settings import StorageSettings

STORY = make_story(
    {
        "steps": [
            {"name": "a", "ref": {"name": "e"}},
            {
                "name": "b",
                "ref": {"name": "e"},
                "needs": ["a"],
                "with": {"x": "{{ steps.a.output.v }}"},
            },
        ]
    },
    name="s",
)


def engram(**spec: Any) -> dict[str, Any]:
    spec = {"templateRef": {"name": "tpl"}, **spec}
    return {"metadata": {"name": "e", "namespace": "default"}, "spec": spec}


def template(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "tpl", "generation": 1}, "spec": {"entrypoint": "m:f", **spec}}


def step_run(
    step: str = "a", *, input: Any = None, status: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"r-{step}", "namespace": "default"},
        "spec": {
            "storyRunRef": {"name": "r"},
            "stepId": step,
            "engramRef": {"name": "e"},
            "input": input if input is not None else {"n": 1},
            **spec,
        },
        "status": status or {},
    }


def run(states: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "r", "namespace": "default", "uid": "u-1"},
        "spec": {"storyRef": {"name": "s"}},
        "status": {"stepStates": {k: {"phase": v} for k, v in (states or {}).items()}},
    }


def gathered(
    sr: dict[str, Any] | None = None,
    *,
    eng: dict[str, Any] | None = None,
    tpl: dict[str, Any] | None = None,
    missing_engram: bool = False,
    missing_template: bool = False,
    states: dict[str, str] | None = None,
    outputs: dict[str, Any] | None = None,
    config: EngineConfig | None = None,
    secrets: dict[str, Any] | None = None,
) -> LaunchInput:
    views = {
        name: StepRunView(name=f"r-{name}", step_id=name, phase="Succeeded", output=out)
        for name, out in (outputs or {}).items()
    }
    snap = Snapshot(
        run=run(states),
        story=STORY,
        engrams={},
        templates={},
        step_runs=views,
        child_runs={},
        now=T0,
        config=config or EngineConfig(),
    )
    return LaunchInput(
        step_run=sr or step_run(),
        snapshot=snap,
        story_name="s",
        engram=None if missing_engram else (eng or engram()),
        template=None if missing_template else (tpl or template()),
        secrets=secrets or {},
        holder="engine-1",
        log_path=Path("/logs/r-a.log"),
        workdir=Path("/work"),
    )


def test_attempt_carries_the_request_and_claims_running_when_a_slot_is_free() -> None:
    decision = decide_launch(gathered())
    assert isinstance(decision, LaunchAttempt)
    request = decision.request
    assert request.key == "default/r-a#0"
    assert request.entrypoint == "m:f" and request.command is None
    assert request.inputs == {"n": 1}
    assert request.env["BUBU_STEPRUN_NAME"] == "r-a"
    assert request.env["BUBU_STORY_NAME"] == "s"
    assert request.log_path == Path("/logs/r-a.log") and request.workdir == Path("/work")
    assert decision.attempt == 1 and decision.step is not None and decision.step.name == "a"
    assert decision.events == ()
    claim = decision.claim(ready=True, capacity=(1, 4))
    assert claim["phase"] == "Running" and claim["podName"] == "engine-1"
    waiting = decision.claim(ready=False, capacity=(4, 4))
    assert waiting["phase"] == "Pending" and waiting["podName"] == "engine-1"
    [ready] = [c for c in waiting["conditions"] if c["type"] == "Ready"]
    assert ready["reason"] == WAITING_FOR_CAPACITY
    assert "(4/4 steps running)" in ready["message"]
    assert "startedAt" not in waiting


def test_retry_is_the_next_attempt() -> None:
    decision = decide_launch(gathered(step_run(status={"retries": 2, "phase": "Pending"})))
    assert isinstance(decision, LaunchAttempt)
    assert decision.request.key == "default/r-a#2" and decision.attempt == 3


def test_missing_engram_and_template_block_with_a_reason() -> None:
    decision = decide_launch(gathered(missing_engram=True))
    assert isinstance(decision, LaunchBlocked)
    assert decision.reason == Reason.REFERENCE_NOT_FOUND
    assert decision.requeue_after == MISSING_REFERENCE_RETRY
    assert decision.status is not None and decision.status["phase"] == "Blocked"
    decision = decide_launch(gathered(missing_template=True))
    assert isinstance(decision, LaunchBlocked) and decision.reason == Reason.TEMPLATE_NOT_FOUND


def failure(launch: LaunchInput) -> LaunchFailed:
    decision = decide_launch(launch)
    assert isinstance(decision, LaunchFailed), decision
    assert decision.status["phase"] == "Failed"
    assert decision.status["error"]["code"] == decision.reason
    return decision


def test_engram_version_pin_mismatch_fails() -> None:
    sr = step_run(engramRef={"name": "e", "version": "2"})
    assert failure(gathered(sr, eng=engram(version="1"))).reason == Reason.ENGRAM_REFERENCE_INVALID


def test_upstream_output_not_there_yet_waits_without_a_write() -> None:
    sr = step_run("b", input={"x": "{{ steps.a.output.v }}"})
    decision = decide_launch(gathered(sr, states={"a": "Running"}))
    assert isinstance(decision, LaunchBlocked)
    assert decision.status is None and decision.requeue_after == BLOCKED_RETRY


def test_upstream_output_is_rendered_into_the_input() -> None:
    sr = step_run("b", input={"x": "{{ steps.a.output.v }}"})
    decision = decide_launch(gathered(sr, states={"a": "Succeeded"}, outputs={"a": {"v": 7}}))
    assert isinstance(decision, LaunchAttempt)
    assert decision.request.inputs == {"x": 7}


def test_finished_upstream_without_the_data_fails_the_expression() -> None:
    sr = step_run("b", input={"x": "{{ steps.zzz.output.v }}"})
    assert failure(gathered(sr)).reason == "ExpressionFailed"


def test_requires_names_the_missing_path() -> None:
    story = make_story(
        {
            "steps": [
                {"name": "a", "ref": {"name": "e"}},
                {"name": "b", "ref": {"name": "e"}, "needs": ["a"], "requires": ["steps.a.output.v"]},
            ]
        },
        name="s",
    )
    launch = gathered(step_run("b"), states={"a": "Succeeded"}, outputs={"a": {}})
    launch = replace(launch, snapshot=replace(launch.snapshot, story=story))
    decision = failure(launch)
    assert decision.reason == "DependencyFailed" and "steps.a.output.v" in decision.message


def test_input_schema_size_and_entrypoint_checks() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "string"}}}
    assert failure(gathered(tpl=template(inputSchema=schema))).reason == "InputSchemaFailed"
    small = EngineConfig(max_inline_step_input=5, storage=StorageSettings())  # storage disabled
    assert failure(gathered(config=small)).reason == "InputTooLarge"
    offloaded = decide_launch(gathered(config=replace(small, storage=EMBEDDED_STORAGE)))
    assert isinstance(offloaded, LaunchAttempt) and offloaded.offload_inputs  # the controller offloads
    no_code = {"metadata": {"name": "tpl"}, "spec": {}}
    assert failure(gathered(tpl=no_code)).reason == "InvalidConfiguration"


def test_input_near_the_limit_adds_a_warning_event() -> None:
    config = EngineConfig(max_inline_step_input=8)  # {"n":1} is 7 bytes: 87 %
    decision = decide_launch(gathered(config=config))
    assert isinstance(decision, LaunchAttempt)
    [event] = decision.events
    assert event.type == "Warning"
    # ... kept when a later check fails, so the warning is recorded with the failure
    no_code = {"metadata": {"name": "tpl"}, "spec": {}}
    assert failure(gathered(config=config, tpl=no_code)).events == (event,)


def test_secrets_come_from_the_gathered_objects() -> None:
    eng = engram(secrets={"api": "creds"})
    tpl = template(secretSchema={"api": {"required": True, "expectedKeys": ["token"]}})
    sr = step_run()
    assert launch_secret_names(sr, STORY, eng) == ["creds"]
    missing = failure(gathered(sr, eng=eng, tpl=tpl, secrets={"creds": None}))
    assert missing.reason == Reason.REFERENCE_NOT_FOUND
    secret = {
        "metadata": {"name": "creds", "namespace": "default"},
        "data": {"token": base64.b64encode(b"s3cret-value").decode()},
    }
    decision = decide_launch(gathered(sr, eng=eng, tpl=tpl, secrets={"creds": secret}))
    assert isinstance(decision, LaunchAttempt)
    assert decision.request.secrets.values == {"api": {"token": "s3cret-value"}}


def test_the_decision_is_a_function_of_what_was_gathered() -> None:
    """Same input, same decision: seeded template randomness, the clock reading as ``now()``."""
    sr = step_run(input={"id": "{{ uuidv4() }}", "at": "{{ now() }}"})
    first = decide_launch(gathered(sr))
    second = decide_launch(gathered(sr))
    assert isinstance(first, LaunchAttempt) and isinstance(second, LaunchAttempt)
    assert first.request.inputs == second.request.inputs
    retry = decide_launch(gathered(step_run(input=sr["spec"]["input"], status={"retries": 1})))
    assert isinstance(retry, LaunchAttempt)
    assert retry.request.inputs["id"] != first.request.inputs["id"]
    assert first.request.env["BUBU_STARTED_AT"].startswith("2026-01-01T12:00:00")
    later = replace(gathered(sr), snapshot=replace(gathered(sr).snapshot, now=T0 + timedelta(seconds=5)))
    moved = decide_launch(later)
    assert isinstance(moved, LaunchAttempt)
    assert moved.request.env["BUBU_STARTED_AT"].startswith("2026-01-01T12:00:05")


def test_find_step_sees_parallel_branches() -> None:
    story = make_story(
        {
            "steps": [
                {
                    "name": "p",
                    "type": "parallel",
                    "with": {"steps": [{"name": "x", "ref": {"name": "e"}}]},
                }
            ]
        }
    )
    step = find_step(story, "x")
    assert step is not None and step.name == "x"
    assert find_step(story, "nope") is None and find_step(None, "x") is None
