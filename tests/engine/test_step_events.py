"""Events for a StepRun's outcome: declaredOutputKeys mismatch (§4.4 item 7), scheduled retries."""

from __future__ import annotations

from typing import Any

from bobrapet.engine.step_events import (
    JOB_RETRY_SCHEDULED,
    OUTPUT_KEY_MISMATCH,
    STEP_INPUT_NEAR_LIMIT,
    input_near_limit,
    outcome_events,
    output_key_mismatch,
)


def _template(keys: list[str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"version": "1"}
    if keys is not None:
        spec["declaredOutputKeys"] = keys
    return {"metadata": {"name": "t"}, "spec": spec}


def test_mismatch_lists_missing_and_extra_keys_sorted() -> None:
    assert output_key_mismatch({"c": 1, "a": 2, "z": 0}, _template(["b", "a", "d"])) == (
        ["b", "d"],
        ["c", "z"],
    )


def test_no_mismatch_when_keys_match_or_nothing_is_declared() -> None:
    assert output_key_mismatch({"a": 1}, _template(["a"])) is None
    assert output_key_mismatch({"a": 1}, _template(None)) is None
    assert output_key_mismatch({"a": 1}, _template([])) is None
    assert output_key_mismatch({"a": 1}, None) is None


def test_non_object_output_misses_every_declared_key() -> None:
    assert output_key_mismatch([1, 2], _template(["a"])) == (["a"], [])


def test_success_with_mismatch_records_one_warning() -> None:
    after = {"phase": "Succeeded", "output": {"a": 1, "c": 2}}
    events = outcome_events({"phase": "Running"}, after, _template(["a", "b"]))
    assert len(events) == 1
    assert events[0].type == "Warning"
    assert events[0].reason == OUTPUT_KEY_MISMATCH
    assert events[0].message == "Output key mismatch: missing=[b] extra=[c]"


def test_normal_success_records_nothing() -> None:
    after = {"phase": "Succeeded", "output": {"a": 1}}
    assert outcome_events({"phase": "Running"}, after, _template(["a"])) == []
    assert outcome_events({"phase": "Running"}, after, _template(None)) == []


def test_failure_records_nothing_and_retry_records_job_retry_scheduled() -> None:
    assert outcome_events({"phase": "Running"}, {"phase": "Failed"}, None) == []
    ready = {
        "type": "Ready",
        "status": "False",
        "reason": "RetryScheduled",
        "message": "Retrying in 1s (attempt 1/3)",
    }
    after = {"phase": "Pending", "retries": 1, "conditions": [ready]}
    events = outcome_events({"phase": "Running", "retries": 0}, after, None)
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Normal", JOB_RETRY_SCHEDULED, "Retrying in 1s (attempt 1/3)")
    ]


def test_input_near_the_inline_limit_is_a_warning() -> None:
    assert input_near_limit("a", 79, 100) is None
    assert input_near_limit("a", 101, 100) is None  # too large: the step fails instead
    assert input_near_limit("a", 90, 0) is None  # no limit
    event = input_near_limit("a", 80, 100)
    assert event is not None and event.type == "Warning" and event.reason == STEP_INPUT_NEAR_LIMIT
    assert event.message == "step input for a is 80 bytes, 80% of the max inline limit of 100 bytes"
