"""StepRun status transitions (§4.4, §8.4-8.5, §9.3): every branch of the pure helpers."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bobrapet.api.conditions import get_condition
from bobrapet.api.types.steprun import StepRunStatus
from bobrapet.api.types.story import PostExecutionCheck, Step, Story
from bobrapet.engine.config import EngineConfig
from bobrapet.engine.steprun import (
    CANCELED_MESSAGE,
    SUCCEEDED_MESSAGE,
    TIMEOUT_MESSAGE,
    WAITING_FOR_CAPACITY,
    InputRejected,
    StepOutcome,
    blocked,
    claimed,
    complete,
    debug_enabled,
    holds_claim,
    is_waiting_for_capacity,
    launch_failed,
    missing_requirement,
    prepare_input,
    retry_wait,
    step_timeout,
    waiting_for_capacity,
)

NOW = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
STARTED = datetime(2026, 1, 1, 0, 0, 7, tzinfo=UTC)
FINISHED = datetime(2026, 1, 1, 0, 0, 9, 500000, tzinfo=UTC)


def _outcome(phase: Any = "Succeeded", **kw: Any) -> StepOutcome:
    base: dict[str, Any] = {
        "phase": phase,
        "output": {"ok": True} if phase == "Succeeded" else None,
        "exit_code": 0 if phase == "Succeeded" else 1,
        "exit_class": None,
        "error": None,
        "message": None,
        "signals": [],
        "started_at": STARTED,
        "finished_at": FINISHED,
    }
    base.update(kw)
    return StepOutcome(**base)


def _step_run(
    status: dict[str, Any] | None = None, retry: dict[str, Any] | None = None, source: str | None = "default"
) -> dict[str, Any]:
    """A StepRun; ``source`` is its retry-policy annotation (``default``: the engine's defaults)."""
    spec: dict[str, Any] = {"storyRunRef": {"name": "run"}, "stepId": "s"}
    if retry is not None:
        spec["retry"] = retry
    annotations = {} if source is None else {"bobrapet.bubustack.io/retry-policy": source}
    return {
        "metadata": {"name": "run-s", "namespace": "ns", "generation": 2, "annotations": annotations},
        "spec": spec,
        "status": status if status is not None else {"phase": "Running", "startedAt": "2026-01-01T00:00:05Z"},
    }


def _template(output_schema: Any = None, input_schema: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"supportedModes": ["job"]}
    if output_schema is not None:
        spec["outputSchema"] = output_schema
    if input_schema is not None:
        spec["inputSchema"] = input_schema
    return {"metadata": {"name": "tpl"}, "spec": spec}


def _cond(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    found = get_condition(status["conditions"], type_)
    assert found is not None
    return found


def _valid(status: dict[str, Any]) -> None:
    """The status is accepted by the StepRun status model (wire shape, limits)."""
    StepRunStatus.model_validate(status)


def _complete(step_run: dict[str, Any], outcome: StepOutcome, **kw: Any) -> dict[str, Any]:
    kw.setdefault("template", None)
    kw.setdefault("post_execution", None)
    kw.setdefault("now", NOW)
    kw.setdefault("jitter_fraction", 0.0)
    before = copy.deepcopy(step_run)
    result = complete(step_run, outcome, **kw)
    assert step_run == before, "complete() must not mutate its input"
    _valid(result)
    return result


# --------------------------------------------------------------------------- step_timeout


def _story(**timeouts: str) -> Story:
    spec: dict[str, Any] = {"steps": [{"name": "s", "ref": {"name": "e"}}]}
    if timeouts:
        spec["policy"] = {"timeouts": timeouts}
    return Story.model_validate({"metadata": {"name": "st"}, "spec": spec})


@pytest.mark.parametrize(
    ("spec_timeout", "story", "expected"),
    [
        ("30s", _story(step="5m"), 30.0),
        (None, _story(step="5m"), 300.0),
        (None, _story(), 1800.0),
        (None, None, 1800.0),
        ("0s", _story(step="2m"), 120.0),
        ("bogus", None, 1800.0),
        (None, _story(step="0s"), 1800.0),
        ("1.5s", None, 1.5),
    ],
)
def test_step_timeout(spec_timeout: str | None, story: Story | None, expected: float) -> None:
    step_run: dict[str, Any] = {"spec": {} if spec_timeout is None else {"timeout": spec_timeout}}
    assert step_timeout(step_run, story, EngineConfig()) == expected


def test_step_timeout_config_default() -> None:
    assert step_timeout({"spec": {}}, None, EngineConfig(default_step_timeout=42.0)) == 42.0


# --------------------------------------------------------------------------- debug_enabled


def _dbg_step(debug: bool | None) -> Step:
    data: dict[str, Any] = {"name": "s", "ref": {"name": "e"}}
    if debug is not None:
        data["execution"] = {"debug": debug}
    return Step.model_validate(data)


@pytest.mark.parametrize(
    ("engram", "step", "run", "expected"),
    [
        (None, None, None, False),
        (True, None, None, True),
        (True, False, None, False),
        (None, True, None, True),
        (True, True, False, False),
        (False, None, True, True),
        (None, None, False, False),
    ],
)
def test_debug_enabled(engram: bool | None, step: bool | None, run: bool | None, expected: bool) -> None:
    engram_obj = None if engram is None else {"spec": {"overrides": {"debug": engram}}}
    step_obj = None if step is None else _dbg_step(step)
    run_obj: dict[str, Any] = {"spec": {} if run is None else {"executionOverrides": {"debug": run}}}
    assert debug_enabled(engram_obj, step_obj, run_obj) is expected


def test_debug_enabled_step_without_execution() -> None:
    assert debug_enabled({"spec": {}}, _dbg_step(None), {"spec": {}}) is False


# --------------------------------------------------------------------------- missing_requirement

VARS = {
    "inputs": {"x": 1},
    "steps": {
        "fetch": {"output": {"items": [{"id": 7}, None], "empty": None, "zero": 0, "no": False}},
        "skipped": {"output": None},
    },
}


@pytest.mark.parametrize(
    ("requires", "expected"),
    [
        (None, None),
        ([], None),
        (["steps.fetch.output"], None),
        (["steps.fetch.output.items.0.id"], None),
        (["steps.fetch.output.zero", "steps.fetch.output.no"], None),
        (["steps.fetch.output.empty"], "steps.fetch.output.empty"),
        (["steps.skipped.output.x"], "steps.skipped.output.x"),
        (["steps.nope.output"], "steps.nope.output"),
        (["steps.fetch.output.items.1"], "steps.fetch.output.items.1"),
        (["steps.fetch.output.items.5"], "steps.fetch.output.items.5"),
        (["steps.fetch.output.items.x"], "steps.fetch.output.items.x"),
        (["steps.fetch.output.zero.deeper"], "steps.fetch.output.zero.deeper"),
        (["steps.fetch.output", "steps.a.b", "steps.c.d"], "steps.a.b"),
    ],
)
def test_missing_requirement(requires: list[str] | None, expected: str | None) -> None:
    assert missing_requirement(requires, VARS) == expected


# --------------------------------------------------------------------------- prepare_input

SCHEMA = {
    "type": "object",
    "properties": {
        "url": {"type": "string"},
        "retries": {"type": "integer", "default": 3},
        "opts": {
            "type": "object",
            "properties": {"verbose": {"type": "boolean", "default": False}},
            "default": {},
        },
    },
    "required": ["url"],
}


def test_prepare_input_no_template_or_schema_returns_input() -> None:
    data = {"a": 1}
    assert prepare_input(data, None) is data
    assert prepare_input(data, _template()) is data
    assert prepare_input(data, _template(input_schema={})) is data


def test_prepare_input_applies_defaults_without_mutating() -> None:
    data = {"url": "http://x"}
    out = prepare_input(data, _template(input_schema=SCHEMA))
    assert out == {"url": "http://x", "retries": 3, "opts": {"verbose": False}}
    assert data == {"url": "http://x"}


def test_prepare_input_accepts_storage_refs_and_templates() -> None:
    data = {"url": {"$bubuStorageRef": "inputs/x"}, "retries": "{{ inputs.n }}"}
    assert prepare_input(data, _template(input_schema=SCHEMA))["url"] == {"$bubuStorageRef": "inputs/x"}


def test_prepare_input_rejects_naming_fields() -> None:
    with pytest.raises(InputRejected) as info:
        prepare_input({"retries": "x", "opts": {"verbose": 3}}, _template(input_schema=SCHEMA))
    message = info.value.message
    assert "EngramTemplate 'tpl'" in message
    assert "input: 'url' is a required property" in message
    assert "input.retries:" in message
    assert "input.opts.verbose:" in message
    assert str(info.value) == message
    assert ("retries", "'x' is not of type 'integer'") in info.value.problems


def test_prepare_input_lists_at_most_five_problems() -> None:
    schema = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(8)}}
    with pytest.raises(InputRejected) as info:
        prepare_input({f"p{i}": "x" for i in range(8)}, _template(input_schema=schema))
    assert info.value.message.endswith("; and 3 more")
    assert len(info.value.problems) == 8


def test_prepare_input_array_root_path() -> None:
    schema = {"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "integer"}}}}
    with pytest.raises(InputRejected, match=r"input\.xs\[1\]: 'b' is not of type 'integer'"):
        prepare_input({"xs": [1, "b"]}, _template(input_schema=schema))


# ----------------------------------------------------------- claimed / blocked / launch_failed


def test_claimed_fresh_status() -> None:
    out = claimed(None, holder="worker-1", now=NOW)
    _valid(out)
    assert out["phase"] == "Running"
    assert out["podName"] == "worker-1"
    assert out["startedAt"] == "2026-01-01T00:00:10Z"
    ready = _cond(out, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "Scheduled",
        "Running on worker-1",
    )
    assert _cond(out, "Progressing")["status"] == "True"
    assert _cond(out, "Degraded")["status"] == "False"
    assert "observedGeneration" not in out


def test_waiting_for_capacity_is_a_pending_claim_that_has_not_started() -> None:
    status = {"phase": "Pending", "retries": 1, "nextRetryAt": "2026-01-01T00:00:09Z", "conditions": []}
    out = waiting_for_capacity(
        status, holder="engine-1", message="Waiting for a free execution slot", now=NOW
    )
    _valid(out)
    assert (out["phase"], out["podName"], out["retries"]) == ("Pending", "engine-1", 1)
    assert "startedAt" not in out and "nextRetryAt" not in out  # it has not started
    ready = _cond(out, "Ready")
    assert (ready["reason"], ready["message"]) == (WAITING_FOR_CAPACITY, "Waiting for a free execution slot")
    assert _cond(out, "Progressing")["status"] == "True"
    assert is_waiting_for_capacity(out) and holds_claim(out, "engine-1") and not holds_claim(out, "other")
    running = claimed(out, holder="engine-1", now=NOW)
    assert running["phase"] == "Running" and running["startedAt"] == "2026-01-01T00:00:10Z"
    assert not is_waiting_for_capacity(running) and holds_claim(running, "engine-1")
    assert not is_waiting_for_capacity(status) and not holds_claim(status, "engine-1")


def test_claimed_keeps_started_at_and_clears_retry_bookkeeping() -> None:
    status = {
        "phase": "Pending",
        "startedAt": "2026-01-01T00:00:00Z",
        "retries": 1,
        "nextRetryAt": "2026-01-01T00:00:09Z",
        "finishedAt": "2026-01-01T00:00:08Z",
        "duration": "1s",
        "error": {"version": "v1", "type": "execution_error", "message": "boom"},
        "conditions": [],
    }
    before = copy.deepcopy(status)
    out = claimed(status, holder="w", now=NOW, attempt_note="attempt 2/4", generation=3)
    assert status == before
    assert out["startedAt"] == "2026-01-01T00:00:00Z"
    assert out["retries"] == 1
    assert out["error"]["message"] == "boom"
    assert not {"nextRetryAt", "finishedAt", "duration"} & out.keys()
    assert _cond(out, "Ready")["message"] == "Running on w (attempt 2/4)"
    assert out["observedGeneration"] == 3
    assert _cond(out, "Ready")["observedGeneration"] == 3


@pytest.mark.parametrize("error_type", ["validation_error", "execution_error", "nonsense"])
def test_launch_failed(error_type: str) -> None:
    status = {"phase": "Pending", "startedAt": "2026-01-01T00:00:04Z", "nextRetryAt": "2026-01-01T00:00:20Z"}
    out = launch_failed(
        status,
        reason="DependencyFailed",
        message="required context 'x' is nil",
        now=NOW,
        error_type=error_type,
    )
    _valid(out)
    assert out["phase"] == "Failed"
    assert out["finishedAt"] == "2026-01-01T00:00:10Z"
    assert out["duration"] == "6s"
    assert out["lastFailureMsg"] == "required context 'x' is nil"
    assert "nextRetryAt" not in out
    assert out["error"] == {
        "version": "v1",
        "type": error_type if error_type != "nonsense" else "unknown",
        "message": "required context 'x' is nil",
        "retryable": False,
        "exitClass": "terminal",
        "code": "DependencyFailed",
    }
    ready = _cond(out, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "DependencyFailed")
    assert _cond(out, "Progressing")["status"] == "False"
    assert _cond(out, "Degraded")["status"] == "True"


def test_launch_failed_without_started_at_or_message() -> None:
    out = launch_failed(None, reason="TemplateNotFound", message="", now=NOW)
    _valid(out)
    assert out["startedAt"] == out["finishedAt"] == "2026-01-01T00:00:10Z"
    assert out["duration"] == "0s"
    assert out["error"]["message"] == "TemplateNotFound"


def test_blocked() -> None:
    out = blocked({"phase": "Pending"}, reason="ReferenceNotFound", message="Engram 'e' not found", now=NOW)
    _valid(out)
    assert out["phase"] == "Blocked"
    assert out["startedAt"] == "2026-01-01T00:00:10Z"
    ready = _cond(out, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "ReferenceNotFound",
        "Engram 'e' not found",
    )
    assert _cond(out, "Progressing")["status"] == "True"
    assert _cond(out, "Degraded")["status"] == "False"


def test_condition_transition_time_kept_when_status_unchanged() -> None:
    first = blocked(None, reason="ReferenceNotFound", message="a", now=NOW)
    later = blocked(first, reason="TemplateNotFound", message="b", now=NOW + timedelta(minutes=1))
    assert _cond(later, "Ready")["lastTransitionTime"] == "2026-01-01T00:00:10Z"
    assert _cond(later, "Ready")["reason"] == "TemplateNotFound"


# --------------------------------------------------------------------------- retry_wait


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, None),
        ({}, None),
        ({"nextRetryAt": ""}, None),
        ({"nextRetryAt": "garbage"}, None),
        ({"nextRetryAt": "2026-01-01T00:00:10Z"}, None),
        ({"nextRetryAt": "2026-01-01T00:00:05Z"}, None),
        ({"nextRetryAt": "2026-01-01T00:00:12Z"}, 2.0),
        ({"nextRetryAt": "2026-01-01T00:00:10.250Z"}, 0.25),
        ({"nextRetryAt": "2026-01-01T01:00:10+01:00"}, None),
    ],
)
def test_retry_wait(status: dict[str, Any] | None, expected: float | None) -> None:
    assert retry_wait(status, NOW) == (pytest.approx(expected) if expected is not None else None)


def test_retry_wait_naive_now_is_utc() -> None:
    assert retry_wait({"nextRetryAt": "2026-01-01T00:00:11Z"}, NOW.replace(tzinfo=None)) == pytest.approx(1.0)


# --------------------------------------------------------------------------- complete: success


def test_complete_succeeded() -> None:
    out = _complete(_step_run(), _outcome())
    assert out["phase"] == "Succeeded"
    assert out["output"] == {"ok": True}
    assert out["exitCode"] == 0
    assert out["exitClass"] == "success"
    assert out["lastOutputAt"] == "2026-01-01T00:00:10Z"
    assert out["finishedAt"] == "2026-01-01T00:00:09.5Z"
    assert out["duration"] == "2.5s"
    assert out["startedAt"] == "2026-01-01T00:00:05Z"
    assert out["observedGeneration"] == 2
    ready = _cond(out, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == ("True", "Completed", SUCCEEDED_MESSAGE)
    assert ready["observedGeneration"] == 2
    assert _cond(out, "Progressing")["status"] == "False"
    assert _cond(out, "Degraded")["status"] == "False"


def test_complete_succeeded_clears_retry_error_and_uses_engram_message() -> None:
    status = {
        "phase": "Running",
        "retries": 2,
        "nextRetryAt": "2026-01-01T00:00:01Z",
        "error": {"version": "v1", "type": "execution_error", "message": "old"},
        "lastFailureMsg": "old",
    }
    out = _complete(_step_run(status), _outcome(message="done, 3 rows"))
    assert "error" not in out
    assert "nextRetryAt" not in out
    assert out["retries"] == 2
    assert out["lastFailureMsg"] == "old"
    assert _cond(out, "Ready")["message"] == "done, 3 rows"


def test_complete_succeeded_null_output_recorded_as_empty_object() -> None:
    out = _complete(_step_run(), _outcome(output=None))
    assert out["output"] == {}


def test_complete_succeeded_sets_started_at_when_missing() -> None:
    step_run = _step_run({})
    out = _complete(step_run, _outcome())
    assert out["startedAt"] == "2026-01-01T00:00:07Z"


def test_complete_output_schema_ok() -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    out = _complete(_step_run(), _outcome(), template=_template(output_schema=schema))
    assert out["phase"] == "Succeeded"


def test_complete_output_schema_accepts_storage_ref() -> None:
    schema = {"type": "object", "properties": {"blob": {"type": "string"}}}
    out = _complete(
        _step_run(),
        _outcome(output={"blob": {"$bubuStorageRef": "outputs/x"}}),
        template=_template(output_schema=schema),
    )
    assert out["phase"] == "Succeeded"


def test_complete_output_schema_failed() -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "string"}}, "required": ["ok", "n"]}
    out = _complete(_step_run(retry={"maxRetries": 3}), _outcome(), template=_template(output_schema=schema))
    assert out["phase"] == "Failed"
    assert out["exitClass"] == "terminal"
    assert out["exitCode"] == 0
    assert out["output"] == {"ok": True}
    ready = _cond(out, "Ready")
    assert ready["reason"] == "OutputSchemaFailed"
    assert "EngramTemplate 'tpl'" in ready["message"]
    assert "output: 'n' is a required property" in ready["message"]
    assert "output.ok: True is not of type 'string'" in ready["message"]
    assert out["error"]["type"] == "validation_error"
    assert out["error"]["code"] == "OutputSchemaFailed"
    assert out["error"]["retryable"] is False
    assert out["lastFailureMsg"] == ready["message"]
    assert out["retries"] == 0 if "retries" in out else True
    assert "nextRetryAt" not in out


def test_complete_output_schema_failed_list_path() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    out = _complete(_step_run(), _outcome(output=[1, "x"]), template=_template(output_schema=schema))
    assert "output[1]: 'x' is not of type 'integer'" in _cond(out, "Ready")["message"]


def test_complete_post_execution_true() -> None:
    check = PostExecutionCheck(condition="steps.self.output.ok")
    out = _complete(_step_run(), _outcome(), post_execution=check)
    assert out["phase"] == "Succeeded"


def test_complete_post_execution_braced_and_now_available() -> None:
    check = PostExecutionCheck(condition="{{ steps.self.output.ok and now() is not none }}")
    assert _complete(_step_run(), _outcome(), post_execution=check)["phase"] == "Succeeded"


def test_complete_post_execution_deterministic_forbids_now() -> None:
    check = PostExecutionCheck(condition="now() is not none")
    out = _complete(_step_run(), _outcome(), post_execution=check, deterministic_templates=True)
    assert out["phase"] == "Failed"
    assert "now" in _cond(out, "Ready")["message"]


MISSING_KEY = "steps.self.output.missing.x"
EVAL_ERROR = (
    "post-execution condition could not be evaluated: steps.self.output.missing is undefined: "
    "key 'missing' not found (available: ok) (in 'steps.self.output.missing.x')"
)


@pytest.mark.parametrize(
    ("condition", "failure_message", "expected"),
    [
        ("steps.self.output.ok == false", None, "post-execution condition evaluated to false"),
        ("steps.self.output.ok == false", "rows must be > 0", "rows must be > 0"),
        (MISSING_KEY, None, EVAL_ERROR),
        (MISSING_KEY, "rows must be > 0", f"rows must be > 0 ({EVAL_ERROR})"),
    ],
)
def test_complete_post_execution_failed(condition: str, failure_message: str | None, expected: str) -> None:
    check = PostExecutionCheck(condition=condition, failure_message=failure_message)
    out = _complete(_step_run(retry={"maxRetries": 3}), _outcome(), post_execution=check)
    message = f"Post-execution verification failed: {expected}"
    assert out["phase"] == "Failed"
    assert out["exitClass"] == "terminal"
    assert out["exitCode"] == 0
    ready = _cond(out, "Ready")
    assert (ready["reason"], ready["message"]) == ("ExpressionFailed", message)
    assert out["error"] == {
        "version": "v1",
        "type": "validation_error",
        "message": message,
        "retryable": False,
        "exitCode": 0,
        "exitClass": "terminal",
        "code": "ExpressionFailed",
    }
    assert "nextRetryAt" not in out


def test_complete_schema_checked_before_post_execution() -> None:
    schema = {"type": "object", "required": ["missing"]}
    out = _complete(
        _step_run(),
        _outcome(),
        template=_template(output_schema=schema),
        post_execution=PostExecutionCheck(condition=MISSING_KEY),
    )
    assert _cond(out, "Ready")["reason"] == "OutputSchemaFailed"


# --------------------------------------------------------------------------- complete: failures and retries

RETRY = {"maxRetries": 3, "delay": "1s", "backoff": "exponential"}


def test_complete_failed_schedules_retry() -> None:
    out = _complete(_step_run(retry=RETRY), _outcome("Failed", exit_code=137, message="OOM killed"))
    assert out["phase"] == "Pending"
    assert out["retries"] == 1
    assert out["nextRetryAt"] == "2026-01-01T00:00:11Z"
    assert out["lastFailureMsg"] == "OOM killed"
    assert out["exitCode"] == 137
    assert out["exitClass"] == "retry"
    assert "finishedAt" not in out and "duration" not in out
    assert out["error"] == {
        "version": "v1",
        "type": "execution_error",
        "message": "OOM killed",
        "retryable": True,
        "exitCode": 137,
        "exitClass": "retry",
    }
    ready = _cond(out, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "RetryScheduled",
        "Retrying in 1s (attempt 1/3)",
    )
    assert _cond(out, "Progressing")["status"] == "True"
    assert _cond(out, "Degraded")["status"] == "False"
    assert retry_wait(out, NOW) == pytest.approx(1.0)


def test_complete_retry_backoff_and_jitter() -> None:
    status = {"phase": "Running", "retries": 2, "finishedAt": "2026-01-01T00:00:01Z"}
    policy = {"maxRetries": 5, "delay": "1s", "backoff": "exponential", "jitter": 10}
    out = _complete(_step_run(status, retry=policy), _outcome("Failed", exit_code=-1), jitter_fraction=0.5)
    assert out["retries"] == 3
    assert out["exitClass"] == "unknown"
    assert "exitCode" not in out["error"]
    # 1s * 2^2 = 4s, +10% * 0.5 = 4.2s
    assert _cond(out, "Ready")["message"] == "Retrying in 4.2s (attempt 3/5)"
    assert out["nextRetryAt"] == "2026-01-01T00:00:14.200Z"
    assert "finishedAt" not in out


def test_complete_retry_next_retry_rounded_up_to_millisecond() -> None:
    now = NOW + timedelta(microseconds=1)
    out = _complete(
        _step_run(retry={"maxRetries": 1, "delay": "10ms"}), _outcome("Failed", exit_code=143), now=now
    )
    assert out["nextRetryAt"] == "2026-01-01T00:00:10.011Z"
    assert retry_wait(out, now) == pytest.approx(0.010999)


def test_complete_budget_exhausted_is_terminal() -> None:
    status = {"phase": "Running", "retries": 3, "startedAt": "2026-01-01T00:00:00Z"}
    out = _complete(_step_run(status, retry=RETRY), _outcome("Failed", exit_code=137))
    assert out["phase"] == "Failed"
    assert out["retries"] == 3
    assert out["finishedAt"] == "2026-01-01T00:00:09.5Z"
    assert out["duration"] == "2.5s"
    ready = _cond(out, "Ready")
    assert ready["reason"] == "ExecutionFailed"
    assert ready["message"] == "Step execution failed with exit code 137. Check the step logs for details."
    assert out["lastFailureMsg"] == ready["message"]
    assert _cond(out, "Degraded")["status"] == "True"
    assert _cond(out, "Progressing")["status"] == "False"


@pytest.mark.parametrize("max_retries", [0, -1])
def test_complete_no_retry_budget(max_retries: int) -> None:
    out = _complete(_step_run(retry={"maxRetries": max_retries}), _outcome("Failed", exit_code=137))
    assert out["phase"] == "Failed"


def test_complete_missing_retry_policy_uses_default_budget() -> None:
    out = _complete(_step_run(), _outcome("Failed", exit_code=137))
    assert out["phase"] == "Pending"
    assert _cond(out, "Ready")["message"] == "Retrying in 1s (attempt 1/3)"


def test_complete_non_int_max_retries_uses_default() -> None:
    out = _complete(_step_run(retry={"maxRetries": "x"}), _outcome("Failed", exit_code=137))
    assert _cond(out, "Ready")["message"] == "Retrying in 1s (attempt 1/3)"


def test_complete_terminal_exit_code_not_retried() -> None:
    out = _complete(_step_run(retry=RETRY), _outcome("Failed", exit_code=2, message="bad input"))
    assert out["phase"] == "Failed"
    assert out["exitClass"] == "terminal"
    assert out["exitCode"] == 2
    assert out["error"]["retryable"] is False
    assert _cond(out, "Ready")["message"] == "bad input"


def test_complete_failed_exit_zero_becomes_one() -> None:
    out = _complete(_step_run(retry=RETRY), _outcome("Failed", exit_code=0))
    assert out["exitCode"] == 1
    assert out["exitClass"] == "terminal"
    assert out["phase"] == "Failed"


@pytest.mark.parametrize(
    ("exit_class", "error_class", "expected_phase", "expected_class"),
    [
        ("retry", None, "Pending", "retry"),
        ("rateLimited", None, "Pending", "rateLimited"),
        ("terminal", None, "Failed", "terminal"),
        (None, "rateLimited", "Pending", "rateLimited"),
        ("success", None, "Failed", "terminal"),  # nonsense for a failure: classified instead
        ("bogus", "terminal", "Failed", "terminal"),
    ],
)
def test_complete_exit_class_override(
    exit_class: str | None, error_class: str | None, expected_phase: str, expected_class: str
) -> None:
    error = (
        None
        if error_class is None
        else {"version": "v1", "type": "execution_error", "message": "m", "exitClass": error_class}
    )
    out = _complete(
        _step_run(retry=RETRY), _outcome("Failed", exit_code=1, exit_class=exit_class, error=error)
    )
    assert out["phase"] == expected_phase
    assert out["exitClass"] == expected_class


def test_complete_engram_structured_error_kept_and_sanitized() -> None:
    error = {
        "version": "v0",
        "type": "storage_error",
        "message": "bucket gone",
        "retryable": "yes",
        "exitCode": -5,
        "code": "S3_404",
        "details": {"bucket": "b"},
        "extra": "dropped",
    }
    out = _complete(_step_run(retry={"maxRetries": 0}), _outcome("Failed", exit_code=3, error=error))
    assert out["error"] == {
        "version": "v1",
        "type": "storage_error",
        "message": "bucket gone",
        "retryable": False,
        "exitCode": 3,
        "exitClass": "terminal",
        "code": "S3_404",
        "details": {"bucket": "b"},
    }
    # the engram's error message stands in for a missing outcome message
    assert _cond(out, "Ready")["message"] == "bucket gone"


def test_complete_engram_error_with_bad_type_and_empty_message() -> None:
    error = {"type": "weird", "message": "", "retryable": True, "exitCode": 9, "exitClass": "retry"}
    out = _complete(_step_run(retry={"maxRetries": 0}), _outcome("Failed", exit_code=9, message="it broke"))
    assert out["error"]["type"] == "execution_error"
    out = _complete(_step_run(retry={"maxRetries": 0}), _outcome("Failed", exit_code=9, error=error))
    assert out["error"]["type"] == "execution_error"
    assert out["error"]["retryable"] is True
    assert out["error"]["exitCode"] == 9
    assert out["error"]["message"].startswith("Step execution failed with exit code 9")


@pytest.mark.parametrize("exit_code", [0, -1, 124])
def test_complete_timeout_is_retried_as_124(exit_code: int) -> None:
    out = _complete(_step_run(retry=RETRY), _outcome("Timeout", exit_code=exit_code))
    assert out["phase"] == "Pending"
    assert out["exitCode"] == 124
    assert out["exitClass"] == "retry"
    assert out["error"]["type"] == "timeout"
    assert out["lastFailureMsg"] == TIMEOUT_MESSAGE


def test_complete_timeout_terminal() -> None:
    out = _complete(_step_run(retry={"maxRetries": 0}), _outcome("Timeout", exit_code=124))
    assert out["phase"] == "Timeout"
    ready = _cond(out, "Ready")
    assert (ready["reason"], ready["message"]) == ("TimedOut", TIMEOUT_MESSAGE)
    assert _cond(out, "Degraded")["status"] == "True"
    assert out["error"] == {
        "version": "v1",
        "type": "timeout",
        "message": TIMEOUT_MESSAGE,
        "retryable": True,
        "exitCode": 124,
        "exitClass": "retry",
    }


def test_complete_last_failure_message_truncated_to_8192_bytes() -> None:
    message = "é" * 5000  # 10000 bytes
    out = _complete(_step_run(retry={"maxRetries": 0}), _outcome("Failed", exit_code=1, message=message))
    assert len(out["lastFailureMsg"].encode()) <= 8192
    assert out["lastFailureMsg"] == "é" * 4096
    assert len(_cond(out, "Ready")["message"]) == 2048


# ----------------------------------------------------- complete: cancel, terminal guard, signals


def test_complete_canceled() -> None:
    out = _complete(_step_run(retry=RETRY), _outcome("Canceled", exit_code=143))
    assert out["phase"] == "Canceled"
    assert out["finishedAt"] == "2026-01-01T00:00:09.5Z"
    assert out["duration"] == "2.5s"
    assert "retries" not in out
    ready = _cond(out, "Ready")
    assert (ready["reason"], ready["message"]) == ("Canceled", CANCELED_MESSAGE)
    assert _cond(out, "Degraded")["status"] == "False"
    assert _cond(out, "Progressing")["status"] == "False"


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Canceled", "Timeout", "Skipped"])
def test_complete_terminal_status_unchanged(phase: str) -> None:
    status = {"phase": phase, "output": {"a": 1}}
    for outcome in (_outcome(), _outcome("Failed", exit_code=137), _outcome("Canceled")):
        out = _complete(_step_run(dict(status), retry=RETRY), replace(outcome, signals=[{"key": "k"}]))
        assert out == status


def test_complete_records_signals() -> None:
    status = {
        "phase": "Running",
        "signals": {"progress": 10, "old": "x"},
        "signalEvents": [{"seq": 4, "key": "progress", "payload": 10}],
    }
    signals = [
        {"key": "progress", "payload": 50, "emittedAt": datetime(2026, 1, 1, 0, 0, 8, tzinfo=UTC)},
        {"key": "progress", "payload": 90, "emittedAt": "2026-01-01T00:00:09Z"},
        {"key": "done", "payload": None},
        {"key": "", "payload": 1},
        {"payload": 2},
    ]
    out = _complete(_step_run(status), _outcome(signals=signals))
    assert out["signals"] == {"progress": 90, "old": "x", "done": None}
    assert out["signalEvents"] == [
        {"seq": 4, "key": "progress", "payload": 10},
        {"seq": 5, "key": "progress", "emittedAt": "2026-01-01T00:00:08Z", "payload": 50},
        {"seq": 6, "key": "progress", "emittedAt": "2026-01-01T00:00:09Z", "payload": 90},
        {"seq": 7, "key": "done", "emittedAt": "2026-01-01T00:00:10Z"},
    ]
    assert status["signals"] == {"progress": 10, "old": "x"}


def test_complete_signal_events_capped_keep_last() -> None:
    signals = [{"key": f"k{i}", "payload": i} for i in range(300)]
    out = _complete(_step_run(), _outcome("Failed", exit_code=2, signals=signals))
    events = out["signalEvents"]
    assert len(events) == 256
    assert events[0]["seq"] == 45 and events[-1]["seq"] == 300
    assert out["signals"]["k0"] == 0


def test_complete_signals_first_seq_is_one() -> None:
    out = _complete(_step_run(), _outcome(signals=[{"key": "a", "payload": 1}]))
    assert out["signalEvents"][0]["seq"] == 1


def test_complete_step_run_without_generation_or_status() -> None:
    step_run = {"metadata": {"name": "x"}, "spec": {"retry": RETRY}}
    out = _complete(step_run, _outcome())
    assert out["phase"] == "Succeeded"
    assert "observedGeneration" not in out
