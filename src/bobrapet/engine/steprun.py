"""StepRun lifecycle decisions (reference §4.4, §8.4-8.5, §9.3): pure status transitions.

Every transition takes the stored status (a wire dict, never mutated) and returns the complete
new status; the StepRun controller writes it. Nothing here reads a clock or draws random
numbers: ``now`` and ``jitter_fraction`` are parameters.

Invariants of the statuses written here:

* each phase write sets the ``Ready``/``Progressing``/``Degraded`` triple (§1.14): Ready is
  True only for Succeeded, Progressing True iff the phase is not terminal, Degraded True iff
  the phase is Failed/Timeout/Aborted; the condition ``reason``/``message`` carry the
  machine code and the human message of the phase (a StepRun status has no top-level
  message);
* a terminal phase is never left: :func:`complete` on a terminal StepRun returns it unchanged;
* a failure the retry contract allows (``engine/retry.py`` :func:`may_retry`: with an explicit
  policy any failure but a declared-terminal one; otherwise the §4.4 exit classes) with
  budget left becomes ``Pending``/``RetryScheduled`` with
  ``retries`` incremented and ``nextRetryAt`` (millisecond precision, rounded up so a retry
  is never early); terminal failures carry a StructuredError v1 and ``lastFailureMsg``
  (at most 8192 UTF-8 bytes);
* ``signalEvents`` keeps the last 256 events with increasing ``seq``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bobrapet.api.conditions import DEGRADED, PROGRESSING, READY, Reason, set_condition
from bobrapet.api.durations import format_rounded
from bobrapet.api.jsonschema_util import apply_defaults, validate_templated
from bobrapet.api.phases import DEGRADED_PHASES, StepReason, is_terminal_phase
from bobrapet.api.timestamps import format_timestamp
from bobrapet.api.types.enums import STRUCTURED_ERROR_TYPES
from bobrapet.api.types.steprun import MAX_SIGNAL_EVENTS
from bobrapet.api.types.story import PostExecutionCheck, Step, Story
from bobrapet.engine.config import EngineConfig
from bobrapet.engine.exit_class import (
    ERROR_EXIT_CODE,
    TIMEOUT_EXIT_CODE,
    UNKNOWN_EXIT_CODE,
    classify_exit,
    is_exit_class,
    is_retryable,
)
from bobrapet.engine.retry import duration_seconds, may_retry, policy_is_explicit, retry_delay
from bobrapet.engine.timefmt import aware, format_time, parse_time
from bobrapet.execution.request import ExecutionResult
from bobrapet.templating import OffloadedData, Unhydrated, evaluate_condition

MAX_FAILURE_MESSAGE_BYTES: Final = 8192
#: maxRetries assumed when a StepRun carries no retry policy (the CRD/resolver default).
DEFAULT_MAX_RETRIES: Final = 3
_ERROR_TYPES: Final = frozenset(STRUCTURED_ERROR_TYPES)
_MAX_LISTED_PROBLEMS: Final = 5

SUCCEEDED_MESSAGE: Final = "Step completed successfully."
CANCELED_MESSAGE: Final = "Step canceled."
TIMEOUT_MESSAGE: Final = "Step execution timed out. Check the step timeout configuration and the step logs."
POST_EXECUTION_FALSE: Final = "post-execution condition evaluated to false"
#: Condition reason of a claimed StepRun waiting for an execution slot (phase ``Pending``).
#: Not in the reference's vocabulary: the Go operator hands every step to a Job at once.
WAITING_FOR_CAPACITY: Final = StepReason.WAITING_FOR_CAPACITY


#: What one execution produced: the executor's result is the engine's input as it is.
StepOutcome = ExecutionResult


class InputRejected(Exception):
    """The resolved step input does not satisfy the EngramTemplate ``inputSchema``."""

    def __init__(self, message: str, problems: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        #: ``(field path, problem)`` pairs; the path is relative to the input object.
        self.problems = list(problems)


# --------------------------------------------------------------------------- small helpers


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _format_precise(moment: datetime) -> str:
    """RFC 3339 UTC, milliseconds rounded up (``...:01.235Z``); whole seconds as ``...:01Z``."""
    moment = aware(moment).astimezone(UTC)
    moment += timedelta(microseconds=(-moment.microsecond) % 1000)
    return format_timestamp(moment, "ms")


def _duration_text(seconds: float) -> str:
    """Duration rounded to milliseconds, in Go's notation (``"1.5s"``, ``"15ms"``, ``"0s"``)."""
    return format_rounded(timedelta(seconds=max(seconds, 0.0)))


def _truncate_bytes(text: str, limit: int = MAX_FAILURE_MESSAGE_BYTES) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[:limit].decode(errors="ignore")


def _copy_status(status: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy safe to modify: top level and the conditions entries are copied."""
    out = dict(status) if isinstance(status, Mapping) else {}
    conditions = out.get("conditions")
    out["conditions"] = [dict(c) for c in conditions] if isinstance(conditions, list) else []
    return out


def _generation(step_run: Mapping[str, Any]) -> int | None:
    meta = step_run.get("metadata")
    value = meta.get("generation") if isinstance(meta, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _get(node: Any, *keys: str) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _set_phase(
    status: dict[str, Any], phase: str, reason: str, message: str, *, now: datetime, generation: int | None
) -> dict[str, Any]:
    status["phase"] = phase
    if generation is not None:
        status["observedGeneration"] = generation
    conditions: list[dict[str, Any]] = status["conditions"]
    for type_, value in (
        (READY, phase == "Succeeded"),
        (PROGRESSING, not is_terminal_phase(phase)),
        (DEGRADED, phase in DEGRADED_PHASES),
    ):
        set_condition(conditions, type_, value, reason, message, observed_generation=generation, now=now)
    return status


def _finish_times(status: dict[str, Any], started: datetime | None, finished: datetime) -> None:
    status["finishedAt"] = format_time(finished)
    begin = started or parse_time(_text(status.get("startedAt"))) or finished
    status["duration"] = _duration_text((aware(finished) - aware(begin)).total_seconds())
    status.setdefault("startedAt", format_time(begin))
    status.pop("nextRetryAt", None)


# --------------------------------------------------------------------------- settings of a StepRun


def _positive_seconds(value: Any) -> float | None:
    seconds = duration_seconds(value)
    return seconds if seconds is not None and seconds > 0 else None


def step_timeout(
    step_run: Mapping[str, Any],
    story: Story | None,
    config: EngineConfig,
    *,
    step: Step | None = None,
    engram: Mapping[str, Any] | None = None,
    template: Mapping[str, Any] | None = None,
) -> float:
    """Seconds a step may run: the first level that sets a positive timeout, highest first.

    StepRun ``spec.timeout`` > step ``execution.timeout`` > Engram ``spec.overrides.timeout``
    > EngramTemplate ``spec.execution.timeout`` > Story ``policy.execution.timeout`` > Story
    ``policy.timeouts.step`` > ``config.default_step_timeout``. (The reference lets only the
    StepRun and ``policy.timeouts.step`` act; the other levels are accepted fields, so they
    act here.) A level with a malformed or zero duration is skipped.
    """
    policy = story.spec.policy if story is not None else None
    levels: tuple[Any, ...] = (
        _get(step_run, "spec", "timeout"),
        step.execution.timeout if step is not None and step.execution is not None else None,
        _get(engram, "spec", "overrides", "timeout"),
        _get(template, "spec", "execution", "timeout"),
        policy.execution.timeout if policy is not None and policy.execution is not None else None,
        policy.timeouts.step if policy is not None and policy.timeouts is not None else None,
    )
    for value in levels:
        seconds = _positive_seconds(value)
        if seconds is not None:
            return seconds
    return config.default_step_timeout


def inline_limit(
    config: EngineConfig, *, step: Step | None = None, engram: Mapping[str, Any] | None = None
) -> int:
    """``BUBU_MAX_INLINE_SIZE`` of a step (output values above it are offloaded): step
    ``execution.maxInlineSize`` > Engram ``spec.overrides.maxInlineSize`` >
    ``engram.default-max-inline-size``."""
    levels: tuple[Any, ...] = (
        step.execution.max_inline_size if step is not None and step.execution is not None else None,
        _get(engram, "spec", "overrides", "maxInlineSize"),
    )
    for value in levels:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return config.max_inline_size


def debug_enabled(engram: Mapping[str, Any] | None, step: Step | None, step_run: Mapping[str, Any]) -> bool:
    """``BUBU_DEBUG``: Engram ``overrides.debug`` < step ``execution.debug`` < StepRun override."""
    layers = (
        _get(engram, "spec", "overrides", "debug"),
        step.execution.debug if step is not None and step.execution is not None else None,
        _get(step_run, "spec", "executionOverrides", "debug"),
    )
    enabled = False
    for value in layers:
        if isinstance(value, bool):
            enabled = value
    return enabled


def _lookup(variables: Mapping[str, Any], path: str) -> Any:
    node: Any = variables
    for segment in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(segment)
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return None
        if node is None:
            return None
    return node


def missing_requirement(requires: Sequence[str] | None, variables: Mapping[str, Any]) -> str | None:
    """The first ``requires`` path (``steps.<name>.<field>...``) that is null or missing."""
    for path in requires or ():
        if _lookup(variables, path) is None:
            return path
    return None


def _input_field(path: str) -> str:
    if not path:
        return "input"
    return f"input{path}" if path.startswith("[") else f"input.{path}"


def prepare_input(resolved: dict[str, Any], template: Mapping[str, Any] | None) -> dict[str, Any]:
    """``resolved`` with the EngramTemplate ``inputSchema`` defaults applied, then validated.

    Values that are still templates or storage/ConfigMap/Secret references are accepted
    wherever the schema expects a value (the normalized schema of §3.6). Raises
    :class:`InputRejected` naming every offending field.
    """
    schema = _get(template, "spec", "inputSchema")
    if not isinstance(schema, dict) or not schema:
        return resolved
    prepared: dict[str, Any] = apply_defaults(resolved, schema)
    problems = validate_templated(prepared, schema)
    if not problems:
        return prepared
    name = _get(template, "metadata", "name") or "?"
    listed = "; ".join(f"{_input_field(path)}: {msg}" for path, msg in problems[:_MAX_LISTED_PROBLEMS])
    more = len(problems) - _MAX_LISTED_PROBLEMS
    if more > 0:
        listed += f"; and {more} more"
    raise InputRejected(
        f"step input does not match the inputSchema of EngramTemplate '{name}': {listed}", problems
    )


# --------------------------------------------------------------------------- launch-time transitions


def claimed(
    status: Mapping[str, Any] | None,
    *,
    holder: str,
    now: datetime,
    attempt_note: str | None = None,
    generation: int | None = None,
) -> dict[str, Any]:
    """The StepRun is now executing on ``holder`` (a worker/pod name): phase Running."""
    out = _copy_status(status)
    out["podName"] = holder
    out.setdefault("startedAt", format_time(now))
    out.pop("nextRetryAt", None)
    out.pop("finishedAt", None)
    out.pop("duration", None)
    message = f"Running on {holder}" + (f" ({attempt_note})" if attempt_note else "")
    return _set_phase(out, "Running", Reason.SCHEDULED, message, now=now, generation=generation)


def waiting_for_capacity(
    status: Mapping[str, Any] | None,
    *,
    holder: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> dict[str, Any]:
    """Claimed by ``holder`` but waiting for a free execution slot: phase ``Pending``,
    reason ``WaitingForCapacity``. ``startedAt`` stays unset: the step has not started;
    :func:`claimed` moves it to ``Running`` when its code starts."""
    out = _copy_status(status)
    out["podName"] = holder
    out.pop("nextRetryAt", None)
    out.pop("finishedAt", None)
    out.pop("duration", None)
    return _set_phase(out, "Pending", WAITING_FOR_CAPACITY, message, now=now, generation=generation)


def is_waiting_for_capacity(status: Mapping[str, Any] | None) -> bool:
    """Whether ``status`` is a claim waiting for an execution slot (see :func:`waiting_for_capacity`)."""
    if not isinstance(status, Mapping) or status.get("phase") != "Pending" or not status.get("podName"):
        return False
    for condition in status.get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == READY:
            return condition.get("reason") == WAITING_FOR_CAPACITY
    return False


def holds_claim(status: Mapping[str, Any] | None, holder: str) -> bool:
    """Whether ``holder`` holds the current attempt: ``Running`` or waiting for capacity there."""
    if not isinstance(status, Mapping) or status.get("podName") != holder:
        return False
    return status.get("phase") == "Running" or is_waiting_for_capacity(status)


def launch_failed(
    status: Mapping[str, Any] | None,
    *,
    reason: str,
    message: str,
    now: datetime,
    error_type: str = "validation_error",
    generation: int | None = None,
) -> dict[str, Any]:
    """The StepRun cannot be launched (bad reference, input, template...): phase Failed."""
    out = _copy_status(status)
    text = message or reason
    out["error"] = {
        "version": "v1",
        "type": error_type if error_type in _ERROR_TYPES else "unknown",
        "message": text,
        "retryable": False,
        "exitClass": "terminal",
        "code": reason[:256],
    }
    out["lastFailureMsg"] = _truncate_bytes(text)
    _finish_times(out, None, now)
    return _set_phase(out, "Failed", reason, text, now=now, generation=generation)


def blocked(
    status: Mapping[str, Any] | None,
    *,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> dict[str, Any]:
    """The StepRun waits for something outside it (e.g. its Engram): phase Blocked."""
    out = _copy_status(status)
    out.setdefault("startedAt", format_time(now))
    return _set_phase(out, "Blocked", reason, message, now=now, generation=generation)


def retry_wait(status: Mapping[str, Any] | None, now: datetime) -> float | None:
    """Seconds until ``status.nextRetryAt`` when it is in the future, else ``None``."""
    due = parse_time(_text(status.get("nextRetryAt"))) if isinstance(status, Mapping) else None
    if due is None:
        return None
    remaining = (due - aware(now)).total_seconds()
    return remaining if remaining > 0 else None


# --------------------------------------------------------------------------- completion


def _record_signals(status: dict[str, Any], signals: Sequence[Mapping[str, Any]], now: datetime) -> None:
    if not signals:
        return
    latest = dict(status.get("signals") or {})
    events = list(status.get("signalEvents") or [])
    seq = max(
        (e["seq"] for e in events if isinstance(e, Mapping) and isinstance(e.get("seq"), int)), default=0
    )
    for signal in signals:
        key = signal.get("key")
        if not isinstance(key, str) or not key:
            continue
        seq += 1
        payload = signal.get("payload")
        latest[key] = payload
        emitted = signal.get("emittedAt")
        if isinstance(emitted, datetime):
            emitted = format_time(emitted)
        elif not isinstance(emitted, str) or not emitted:
            emitted = format_time(now)
        event: dict[str, Any] = {"seq": seq, "key": key, "emittedAt": emitted}
        if payload is not None:
            event["payload"] = payload
        events.append(event)
    status["signals"] = latest
    status["signalEvents"] = events[-MAX_SIGNAL_EVENTS:]


def _structured_error(
    given: Mapping[str, Any] | None,
    *,
    error_type: str,
    message: str,
    exit_code: int,
    exit_class: str,
    retryable: bool | None = None,
) -> dict[str, Any]:
    """A valid StructuredError v1: the engram's fields that are well-formed, the rest filled in."""
    src: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    kind = src.get("type")
    text = src.get("message")
    err: dict[str, Any] = {
        "version": "v1",
        "type": kind if kind in _ERROR_TYPES else error_type,
        "message": text if isinstance(text, str) and text else message,
    }
    given_retryable = src.get("retryable")
    if isinstance(given_retryable, bool):
        err["retryable"] = given_retryable
    else:
        err["retryable"] = retryable if retryable is not None else is_retryable(exit_class)
    code = src.get("exitCode")
    if isinstance(code, int) and not isinstance(code, bool) and code >= 0:
        err["exitCode"] = code
    elif exit_code >= 0:
        err["exitCode"] = exit_code
    err["exitClass"] = src["exitClass"] if is_exit_class(src.get("exitClass")) else exit_class
    if isinstance(src.get("code"), str):
        err["code"] = src["code"][:256]
    if isinstance(src.get("details"), Mapping):
        err["details"] = dict(src["details"])
    return err


def _fail(
    status: dict[str, Any],
    outcome: StepOutcome,
    *,
    phase: str,
    reason: str,
    message: str,
    exit_code: int,
    exit_class: str,
    error: dict[str, Any],
    now: datetime,
    generation: int | None,
) -> dict[str, Any]:
    status["exitCode"] = exit_code
    status["exitClass"] = exit_class
    status["error"] = error
    status["lastFailureMsg"] = _truncate_bytes(message)
    _finish_times(status, outcome.started_at, outcome.finished_at)
    return _set_phase(status, phase, reason, message, now=now, generation=generation)


def _verification_failed(
    status: dict[str, Any],
    outcome: StepOutcome,
    *,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> dict[str, Any]:
    """A successful execution whose result is rejected (schema, post-execution check)."""
    error = {
        "version": "v1",
        "type": "validation_error",
        "message": message,
        "retryable": False,
        "exitCode": max(outcome.exit_code, 0),
        "exitClass": "terminal",
        "code": reason,
    }
    return _fail(
        status,
        outcome,
        phase="Failed",
        reason=reason,
        message=message,
        exit_code=outcome.exit_code,
        exit_class="terminal",
        error=error,
        now=now,
        generation=generation,
    )


def _post_execution_problem(
    check: PostExecutionCheck,
    output: Any,
    *,
    now: datetime,
    deterministic: bool,
    offload: OffloadedData | None = None,
) -> str | None:
    variables = {"steps": {"self": {"output": output}}}
    try:
        ok = evaluate_condition(
            check.condition, variables, now=lambda: now, deterministic=deterministic, offload=offload
        )
    except Unhydrated:
        raise  # the caller loads the offloaded output and completes again
    except Exception as exc:  # any failure of the user's expression fails the step, never the controller
        detail = f"post-execution condition could not be evaluated: {exc}"
        return f"{check.failure_message} ({detail})" if check.failure_message else detail
    if ok:
        return None
    return check.failure_message or POST_EXECUTION_FALSE


def _succeeded(
    status: dict[str, Any],
    outcome: StepOutcome,
    *,
    template: Mapping[str, Any] | None,
    post_execution: PostExecutionCheck | None,
    now: datetime,
    deterministic: bool,
    generation: int | None,
    offload: OffloadedData | None = None,
) -> dict[str, Any]:
    output = {} if outcome.output is None else outcome.output
    status["output"] = output
    status["lastOutputAt"] = format_time(now)
    schema = _get(template, "spec", "outputSchema")
    problems = validate_templated(output, schema) if isinstance(schema, dict) and schema else []
    if problems:
        name = _get(template, "metadata", "name") or "?"
        listed = "; ".join(f"{_output_field(p)}: {m}" for p, m in problems[:_MAX_LISTED_PROBLEMS])
        message = f"step output does not match the outputSchema of EngramTemplate '{name}': {listed}"
        return _verification_failed(
            status,
            outcome,
            reason=Reason.OUTPUT_SCHEMA_FAILED,
            message=message,
            now=now,
            generation=generation,
        )
    if post_execution is not None:
        problem = _post_execution_problem(
            post_execution,
            output,
            now=now,
            deterministic=deterministic,
            offload=offload,
        )
        if problem is not None:
            return _verification_failed(
                status,
                outcome,
                reason=Reason.EXPRESSION_FAILED,
                message=f"Post-execution verification failed: {problem}",
                now=now,
                generation=generation,
            )
    status["exitCode"] = 0
    status["exitClass"] = "success"
    status.pop("error", None)
    _finish_times(status, outcome.started_at, outcome.finished_at)
    message = outcome.message or SUCCEEDED_MESSAGE
    return _set_phase(status, "Succeeded", Reason.COMPLETED, message, now=now, generation=generation)


def _output_field(path: str) -> str:
    if not path:
        return "output"
    return f"output{path}" if path.startswith("[") else f"output.{path}"


def _failure_exit_code(outcome: StepOutcome) -> int:
    if outcome.phase == "Timeout" and outcome.exit_code in (0, UNKNOWN_EXIT_CODE):
        return TIMEOUT_EXIT_CODE
    if outcome.exit_code == 0:
        return ERROR_EXIT_CODE
    return outcome.exit_code


def _declared_exit_class(outcome: StepOutcome) -> str | None:
    """The exit class the engram (or executor) reported for a failure, if any."""
    for candidate in (outcome.exit_class, (outcome.error or {}).get("exitClass")):
        if is_exit_class(candidate) and candidate != "success":
            return str(candidate)
    return None


def _failure_exit_class(outcome: StepOutcome, exit_code: int) -> str:
    return _declared_exit_class(outcome) or classify_exit(exit_code)


def _failed(
    status: dict[str, Any],
    outcome: StepOutcome,
    retry: Mapping[str, Any],
    *,
    explicit: bool,
    now: datetime,
    jitter_fraction: float,
    generation: int | None,
) -> dict[str, Any]:
    timed_out = outcome.phase == "Timeout"
    exit_code = _failure_exit_code(outcome)
    exit_class = _failure_exit_class(outcome, exit_code)
    fallback = (
        TIMEOUT_MESSAGE
        if timed_out
        else f"Step execution failed with exit code {exit_code}. Check the step logs for details."
    )
    retryable = (outcome.error or {}).get("retryable")
    allowed = may_retry(
        declared_class=_declared_exit_class(outcome),
        exit_code=exit_code,
        retryable=retryable if isinstance(retryable, bool) else None,
        explicit=explicit,
    )
    error = _structured_error(
        outcome.error,
        error_type="timeout" if timed_out else "execution_error",
        message=outcome.message or fallback,
        exit_code=exit_code,
        exit_class=exit_class,
        retryable=allowed,
    )
    message = outcome.message or error["message"]
    max_retries = retry.get("maxRetries", DEFAULT_MAX_RETRIES)
    max_retries = max_retries if isinstance(max_retries, int) else DEFAULT_MAX_RETRIES
    stored = status.get("retries")
    retries = stored if isinstance(stored, int) else 0
    if allowed and retries < max_retries:
        attempt = retries + 1
        delay = retry_delay(retry, attempt, jitter_fraction)
        status.update(
            retries=attempt,
            nextRetryAt=_format_precise(aware(now) + timedelta(seconds=delay)),
            lastFailureMsg=_truncate_bytes(message),
            error=error,
            exitCode=exit_code,
            exitClass=exit_class,
        )
        status.pop("finishedAt", None)
        status.pop("duration", None)
        note = f"Retrying in {_duration_text(delay)} (attempt {attempt}/{max_retries})"
        return _set_phase(status, "Pending", Reason.RETRY_SCHEDULED, note, now=now, generation=generation)
    return _fail(
        status,
        outcome,
        phase="Timeout" if timed_out else "Failed",
        reason=Reason.TIMED_OUT if timed_out else Reason.EXECUTION_FAILED,
        message=message,
        exit_code=exit_code,
        exit_class=exit_class,
        error=error,
        now=now,
        generation=generation,
    )


def complete(
    step_run: Mapping[str, Any],
    outcome: StepOutcome,
    *,
    template: Mapping[str, Any] | None,
    post_execution: PostExecutionCheck | None,
    now: datetime,
    jitter_fraction: float,
    deterministic_templates: bool = False,
    offload: OffloadedData | None = None,
) -> dict[str, Any]:
    """The new StepRun status after an execution ended with ``outcome``.

    A failure is retried per the retry contract (:func:`bobrapet.engine.retry.may_retry`):
    the policy is ``spec.retry``, explicit per :func:`bobrapet.engine.retry.policy_is_explicit`
    (the ``bobrapet.bubustack.io/retry-policy`` annotation). Every retry keeps the attempt's
    failure in ``lastFailureMsg`` and ``error``.
    A StepRun already in a terminal phase is returned unchanged. The post-execution condition
    sees ``steps.self.output``; ``now()`` is ``now`` unless ``deterministic_templates``; over
    an offloaded output it follows ``offload`` (raising ``Unhydrated`` for the values to load).
    """
    stored = step_run.get("status")
    if isinstance(stored, Mapping) and is_terminal_phase(stored.get("phase")):
        return dict(stored)
    status = _copy_status(stored)
    generation = _generation(step_run)
    _record_signals(status, outcome.signals, now)
    if outcome.phase == "Succeeded":
        return _succeeded(
            status,
            outcome,
            template=template,
            post_execution=post_execution,
            now=now,
            deterministic=deterministic_templates,
            generation=generation,
            offload=offload,
        )
    if outcome.phase == "Canceled":
        _finish_times(status, outcome.started_at, outcome.finished_at)
        return _set_phase(
            status, "Canceled", Reason.CANCELED, CANCELED_MESSAGE, now=now, generation=generation
        )
    retry = _get(step_run, "spec", "retry")
    return _failed(
        status,
        outcome,
        retry if isinstance(retry, Mapping) else {},
        explicit=policy_is_explicit(step_run),
        now=now,
        jitter_fraction=jitter_fraction,
        generation=generation,
    )
