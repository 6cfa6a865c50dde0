"""The retry contract (DESIGN: a retry policy the user wrote is honoured) and the precedence
chains of the retry policy and the step timeout (issue 7 items 1 and 5)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tests.engine.harness import World, make_story

from bobrapet.api.types.story import Step, Story
from bobrapet.engine.config import EngineConfig
from bobrapet.engine.retry import may_retry, policy_is_explicit, resolve_retry
from bobrapet.engine.steprun import StepOutcome, complete, step_timeout

CONFIG = EngineConfig()
NOW = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
ANNOTATION = "bobrapet.bubustack.io/retry-policy"
RETRY = {"maxRetries": 3, "delay": "1s", "backoff": "exponential"}


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("declared", "exit_code", "retryable", "explicit", "expected"),
    [
        # explicit policy: any failure but a declared-terminal one
        pytest.param(None, 1, None, True, True, id="explicit-plain-exception"),
        pytest.param(None, 2, None, True, True, id="explicit-command-exit-2"),
        pytest.param(None, 126, None, True, True, id="explicit-exit-126"),
        pytest.param(None, 139, None, True, True, id="explicit-crash"),
        pytest.param(None, 124, None, True, True, id="explicit-timeout"),
        pytest.param(None, -1, None, True, True, id="explicit-unknown"),
        pytest.param("retry", 1, None, True, True, id="explicit-declared-retry"),
        pytest.param("terminal", 1, None, True, False, id="explicit-structured-terminal"),
        pytest.param(None, 1, False, True, False, id="explicit-not-retryable"),
        pytest.param("retry", 1, False, True, False, id="explicit-retry-but-not-retryable"),
        # no explicit policy: the exit classes of reference §4.4
        pytest.param(None, 1, None, False, False, id="default-plain-exception"),
        pytest.param(None, 2, None, False, False, id="default-exit-2"),
        pytest.param(None, 137, None, False, True, id="default-killed"),
        pytest.param(None, 124, None, False, True, id="default-timeout"),
        pytest.param(None, 429, None, False, True, id="default-rate-limited"),
        pytest.param(None, -1, None, False, True, id="default-unknown"),
        pytest.param("retry", 1, None, False, True, id="default-declared-retry"),
        pytest.param("terminal", 137, None, False, False, id="default-declared-terminal"),
        pytest.param(None, 137, False, False, False, id="default-not-retryable"),
    ],
)
def test_may_retry(
    declared: str | None, exit_code: int, retryable: bool | None, explicit: bool, expected: bool
) -> None:
    assert (
        may_retry(declared_class=declared, exit_code=exit_code, retryable=retryable, explicit=explicit)
        is expected
    )


@pytest.mark.parametrize(
    ("annotations", "retry", "expected"),
    [
        ({ANNOTATION: "step"}, RETRY, True),
        ({ANNOTATION: "engram"}, RETRY, True),
        ({ANNOTATION: "story"}, RETRY, True),
        ({ANNOTATION: "default"}, RETRY, False),
        ({}, RETRY, True),  # written by hand on the StepRun
        ({}, None, False),
        (None, None, False),
    ],
)
def test_policy_is_explicit(annotations: dict[str, str] | None, retry: Any, expected: bool) -> None:
    spec: dict[str, Any] = {"stepId": "s"}
    if retry is not None:
        spec["retry"] = retry
    assert (
        policy_is_explicit({"metadata": {"name": "x", "annotations": annotations}, "spec": spec}) is expected
    )


# --------------------------------------------------------------------------- complete()


def _step_run(source: str, retries: int = 0, retry: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Running", "startedAt": "2026-01-01T00:00:05Z"}
    if retries:
        status["retries"] = retries
    return {
        "metadata": {
            "name": "run-s",
            "namespace": "ns",
            "generation": 1,
            "annotations": {ANNOTATION: source},
        },
        "spec": {"storyRunRef": {"name": "run"}, "stepId": "s", "retry": retry or RETRY},
        "status": status,
    }


def _failure(
    message: str = "RuntimeError: flaky",
    *,
    phase: Any = "Failed",
    exit_code: int = 1,
    exit_class: str | None = None,
    error: dict[str, Any] | None = None,
) -> StepOutcome:
    wire = {"version": "v1", "type": "execution_error", "message": message, "exitCode": exit_code}
    return StepOutcome(
        phase=phase, output=None, exit_code=exit_code, exit_class=exit_class, error=error or wire,
        message=message, signals=[], started_at=NOW, finished_at=NOW,
    )  # fmt: skip


def _complete(step_run: dict[str, Any], outcome: StepOutcome) -> dict[str, Any]:
    return complete(step_run, outcome, template=None, post_execution=None, now=NOW, jitter_fraction=0.0)


def test_explicit_policy_retries_a_plain_exception_and_keeps_its_message() -> None:
    out = _complete(_step_run("step"), _failure())
    assert out["phase"] == "Pending"
    assert out["retries"] == 1
    assert out["lastFailureMsg"] == "RuntimeError: flaky"
    assert out["error"]["retryable"] is True
    assert out["conditions"][0]["reason"] == "RetryScheduled"


def test_default_policy_keeps_a_plain_exception_terminal() -> None:
    out = _complete(_step_run("default"), _failure())
    assert out["phase"] == "Failed"
    assert out["error"]["retryable"] is False


@pytest.mark.parametrize("source", ["step", "story", "engram"])
def test_explicit_policy_retries_a_command_exit_and_a_timeout(source: str) -> None:
    assert (
        _complete(_step_run(source), _failure("command exited with code 3", exit_code=3))["phase"]
        == "Pending"
    )
    timed_out = _complete(_step_run(source), _failure("timed out", phase="Timeout", exit_code=124))
    assert timed_out["phase"] == "Pending"


def test_explicit_policy_never_retries_a_structured_terminal_error() -> None:
    error = {"version": "v1", "type": "execution_error", "message": "bad", "exitClass": "terminal"}
    out = _complete(_step_run("step"), _failure("bad", exit_class="terminal", error=error))
    assert out["phase"] == "Failed"
    assert out["exitClass"] == "terminal"
    assert out["lastFailureMsg"] == "bad"


def test_explicit_policy_never_retries_a_canceled_attempt() -> None:
    error = {
        "version": "v1",
        "type": "execution_error",
        "message": "canceled",
        "code": "Canceled",
        "retryable": False,
    }
    out = _complete(_step_run("step"), _failure("canceled", exit_code=-1, error=error))
    assert out["phase"] == "Failed"


def test_explicit_policy_budget_is_still_a_limit() -> None:
    out = _complete(_step_run("step", retries=3), _failure("third time"))
    assert out["phase"] == "Failed"
    assert out["retries"] == 3
    assert out["lastFailureMsg"] == "third time"
    zero = _complete(_step_run("step", retry={"maxRetries": 0}), _failure())
    assert zero["phase"] == "Failed"


# --------------------------------------------------------------------------- retry precedence


def _step(retry: dict[str, Any] | None = None, **extra: Any) -> Step:
    data: dict[str, Any] = {"name": "s", "ref": {"name": "e"}, **extra}
    if retry is not None:
        data["execution"] = {"retry": retry}
    return Step.model_validate(data)


def _story(execution: dict[str, Any] | None = None, retries: dict[str, Any] | None = None) -> Story:
    policy: dict[str, Any] = {}
    if execution is not None:
        policy["execution"] = {"retry": execution}
    if retries is not None:
        policy["retries"] = {"stepRetryPolicy": retries}
    return make_story({"steps": [{"name": "s", "ref": {"name": "e"}}], "policy": policy})


def _engram(retry: dict[str, Any] | None = None, timeout: str | None = None) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if retry is not None:
        overrides["retry"] = retry
    if timeout is not None:
        overrides["timeout"] = timeout
    return {"metadata": {"name": "e"}, "spec": {"templateRef": {"name": "t"}, "overrides": overrides}}


def _template(retry: dict[str, Any] | None = None, timeout: str | None = None) -> dict[str, Any]:
    execution: dict[str, Any] = {}
    if retry is not None:
        execution["retry"] = retry
    if timeout is not None:
        execution["timeout"] = timeout
    return {"metadata": {"name": "t"}, "spec": {"supportedModes": ["job"], "execution": execution}}


ALL_RETRY: dict[str, Any] = {
    "step": _step({"maxRetries": 1}),
    "engram": _engram({"maxRetries": 2}),
    "template": _template({"recommendedMaxRetries": 4}),
    "execution": {"maxRetries": 5},
    "retries": {"maxRetries": 6},
}


@pytest.mark.parametrize(
    ("drop", "max_retries", "source"),
    [
        pytest.param((), 1, "step", id="step-wins"),
        pytest.param(("step",), 2, "engram", id="engram-overrides-next"),
        pytest.param(("step", "engram"), 4, "story", id="template-over-story-wide"),
        pytest.param(("step", "engram", "template"), 5, "story", id="story-policy-execution"),
        pytest.param(("step", "engram", "template", "execution"), 6, "story", id="story-stepRetryPolicy"),
        pytest.param(("step", "engram", "execution", "retries"), 4, "default", id="template-only"),
        pytest.param(("step", "engram", "template", "execution", "retries"), 3, "default", id="config"),
    ],
)
def test_retry_precedence_per_level(drop: tuple[str, ...], max_retries: int, source: str) -> None:
    levels = {k: v for k, v in ALL_RETRY.items() if k not in drop}
    story = _story(levels.get("execution"), levels.get("retries"))
    resolved = resolve_retry(
        levels.get("step", _step()), story, levels.get("template"), CONFIG, levels.get("engram")
    )
    assert resolved.policy["maxRetries"] == max_retries
    assert resolved.source == source
    assert resolved.explicit is (source != "default")


def test_engram_retry_is_taken_whole_and_template_fills_its_delay() -> None:
    resolved = resolve_retry(
        _step(),
        _story(retries={"maxRetries": 9, "delay": "9s", "backoff": "constant"}),
        _template({"recommendedBaseDelay": "3s", "recommendedMaxRetries": 7}),
        CONFIG,
        _engram({"maxRetries": 2}),
    )
    assert resolved.policy == {"maxRetries": 2, "delay": "3s", "backoff": "exponential"}
    assert resolved.source == "engram"


def test_side_effects_without_a_written_policy_is_not_retried() -> None:
    resolved = resolve_retry(
        _step(sideEffects=True), None, _template({"recommendedMaxRetries": 5}), CONFIG, _engram()
    )
    assert resolved.policy["maxRetries"] == 0
    assert not resolved.explicit
    written = resolve_retry(_step(sideEffects=True), None, None, CONFIG, _engram({"maxRetries": 2}))
    assert written.policy["maxRetries"] == 2 and written.explicit


# --------------------------------------------------------------------------- timeout precedence


def _timeout_story(execution: str | None, step_default: str | None) -> Story:
    policy: dict[str, Any] = {}
    if execution is not None:
        policy["execution"] = {"timeout": execution}
    if step_default is not None:
        policy["timeouts"] = {"step": step_default}
    return make_story({"steps": [{"name": "s", "ref": {"name": "e"}}], "policy": policy})


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        pytest.param(("steprun", "step", "engram", "template", "execution", "story"), 1.0, id="steprun"),
        pytest.param(("step", "engram", "template", "execution", "story"), 2.0, id="step-execution"),
        pytest.param(("engram", "template", "execution", "story"), 3.0, id="engram-overrides"),
        pytest.param(("template", "execution", "story"), 4.0, id="template"),
        pytest.param(("execution", "story"), 5.0, id="story-policy-execution"),
        pytest.param(("story",), 6.0, id="story-timeouts-step"),
        pytest.param((), 1800.0, id="config-default"),
    ],
)
def test_step_timeout_precedence_per_level(levels: tuple[str, ...], expected: float) -> None:
    step_run: dict[str, Any] = {"spec": {"timeout": "1s"} if "steprun" in levels else {}}
    step = Step.model_validate(
        {"name": "s", "ref": {"name": "e"}, **({"execution": {"timeout": "2s"}} if "step" in levels else {})}
    )
    story = _timeout_story("5s" if "execution" in levels else None, "6s" if "story" in levels else None)
    got = step_timeout(
        step_run,
        story,
        CONFIG,
        step=step,
        engram=_engram(timeout="3s" if "engram" in levels else None),
        template=_template(timeout="4s" if "template" in levels else None),
    )
    assert got == expected


def test_step_timeout_skips_zero_and_malformed_levels() -> None:
    got = step_timeout(
        {"spec": {"timeout": "0s"}},
        None,
        CONFIG,
        engram=_engram(timeout="bogus"),
        template=_template(timeout="7s"),
    )
    assert got == 7.0


# --------------------------------------------------------------------------- StepRun creation


def test_step_run_records_where_its_retry_policy_came_from() -> None:
    world = World(
        {
            "steps": [
                {"name": "plain", "ref": {"name": "e"}},
                {"name": "written", "ref": {"name": "e"}, "execution": {"retry": {"maxRetries": 3}}},
            ]
        }
    )
    world.reconcile()
    sources = {new.step_id: new.annotations.get(ANNOTATION) for new in world.created}
    assert sources == {"plain": "default", "written": "step"}


def _versioned_world(pin: str | None, version: str | None) -> World:
    ref: dict[str, Any] = {"name": "e"}
    if pin is not None:
        ref["version"] = pin
    spec: dict[str, Any] = {"templateRef": {"name": "tpl"}}
    if version is not None:
        spec["version"] = version
    return World(
        {"steps": [{"name": "s", "ref": ref}]},
        engrams={"e": {"metadata": {"name": "e"}, "spec": spec}},
    )


@pytest.mark.parametrize(("pin", "version"), [("1.0.0", "1.0.0"), (None, "2.0.0"), (None, None)])
def test_ref_version_matching_or_absent_launches(pin: str | None, version: str | None) -> None:
    world = _versioned_world(pin, version)
    world.reconcile()
    (created,) = world.created
    assert created.spec["engramRef"] == {"name": "e", **({"version": pin} if pin else {})}


@pytest.mark.parametrize(
    ("version", "found"), [("2.0.0", "has version '2.0.0'"), (None, "sets no spec.version")]
)
def test_ref_version_mismatch_fails_the_step(version: str | None, found: str) -> None:
    world = _versioned_world("1.0.0", version)
    world.reconcile()
    assert world.created == []
    state = world.state("s")
    assert state["phase"] == "Failed"
    assert state["reason"] == "EngramReferenceInvalid"
    assert "pins Engram 'default/e' to version '1.0.0' (ref.version)" in state["message"]
    assert found in state["message"]
    assert world.phase == "Failed"
