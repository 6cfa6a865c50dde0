"""The launch path's shortcuts give exactly what the plain computations give."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bobrapet.api.expressions import iter_templates
from bobrapet.api.jsonschema_util import apply_defaults
from bobrapet.api.types.story import Story
from bobrapet.controllers import steplog
from bobrapet.controllers.execution import ExecutionEnv
from bobrapet.engine import attempt
from bobrapet.engine.naming import compose_dns1123
from bobrapet.engine.variables import run_inputs
from bobrapet.execution.request import rfc3339_nano
from bobrapet.executors.logpath import inputs_log_path, step_log_path


@pytest.mark.parametrize(
    ("value", "requires"),
    [
        ({"n": "{{ steps.a.output.n }}"}, None),
        ({"n": 1, "m": ["x", {"k": "{{ steps.b.output }} and {{ steps.c.phase }}"}]}, ["steps.d.output"]),
        ("{{ steps.a.output }}", None),
        ("plain", None),
        ("{{ steps[inputs.x].output }}", None),
        (
            {
                "a": {
                    "$bubuTemplate": "{{ steps.a.output }}",
                    "$bubuTemplateVars": {"v": "{{ steps.e.output }}"},
                }
            },
            None,
        ),
        ({"a": {"$bubuTemplate": "no template"}}, None),
        ({"a": [{"b": "{{ steps }}"}]}, None),
        ({"a": "{{ inputs.x }}"}, ["inputs.x"]),
        ({"a": "{{ broken"}, None),
        (None, None),
        ([1, 2, "{{ steps.z.output }}"], None),
    ],
)
def test_the_walk_without_paths_finds_the_same_templates(value: Any, requires: list[str] | None) -> None:
    with_paths = list(iter_templates(value))
    without = list(iter_templates(value, paths=False))
    assert [a for _, a in without] == [a for _, a in with_paths]
    assert all(path == "" for path, _ in without)
    names = attempt._referenced_steps(value, requires)
    if names is not None:
        assert {n for _, a in with_paths for n in a.step_names} <= names


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 5, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=-5))),
        datetime(999, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
    ],
)
def test_timestamps_match_strftime(moment: datetime) -> None:
    utc = moment.astimezone(UTC)
    assert steplog.attempt_header(2, moment) == (
        f"=== attempt 2 ({utc.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z) ===\n"
    )
    assert rfc3339_nano(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert rfc3339_nano(moment.replace(tzinfo=None)) == moment.replace(tzinfo=UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )


def test_inputs_record_and_secret_keys_follow_the_template_object() -> None:
    at = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    template = {"spec": {"secretSchema": {"api": {"expectedKeys": ["token"]}}}}
    record = steplog.inputs_record(
        step_run="s", attempt=1, at=at, inputs={"token": "t", "x": "é"}, template=template
    )
    assert record == json.dumps(
        {
            "stepRun": "s",
            "attempt": 1,
            "at": "2026-05-01T12:00:00.123Z",
            "inputs": {"token": "<redacted>", "x": "é"},
        },
        ensure_ascii=False,
    )
    assert steplog.secret_keys(template) == frozenset({"api", "token"})
    other = {"spec": {"secretSchema": {"db": {}}}}
    assert steplog.secret_keys(other) == frozenset({"db"})
    assert steplog.secret_keys(None) == frozenset()


def test_execution_env_paths_match_logpath(tmp_path: Path) -> None:
    env = ExecutionEnv(executor=None, lease=None, home=tmp_path, workdir=tmp_path)  # type: ignore[arg-type]
    for namespace in ("", "default", "team-a"):
        for name in ("run-a", "run-b"):
            assert env.log_path(namespace, name) == step_log_path(tmp_path, namespace, name)
            assert env.inputs_log_path(namespace, name) == inputs_log_path(tmp_path, namespace, name)


def test_compose_dns1123_memo_is_transparent() -> None:
    assert compose_dns1123("Run", "Step_1") == "run-step-1"
    assert compose_dns1123("Run", "Step_1") == "run-step-1"
    assert compose_dns1123("a" * 70) == compose_dns1123("a" * 70)


def _story(schema: dict[str, Any]) -> Story:
    return Story.model_validate(
        {
            "apiVersion": "bubustack.io/v1alpha1",
            "kind": "Story",
            "metadata": {"name": "s", "namespace": "default"},
            "spec": {"inputsSchema": schema, "steps": [{"name": "a", "ref": {"name": "e"}}]},
        }
    )


def test_run_inputs_memo_follows_the_run_and_its_inputs() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "default": 7}}}
    story = _story(schema)
    run = {"metadata": {"name": "r", "uid": "u1"}, "spec": {"inputs": {"m": 1}}}
    first = run_inputs(run, story)
    assert first == apply_defaults({"m": 1}, story.spec.inputs_schema) == {"m": 1, "n": 7}
    copy = {"metadata": {"name": "r", "uid": "u1"}, "spec": {"inputs": {"m": 1}}}
    assert run_inputs(copy, story) is first  # an equal copy of the same run
    other = {"metadata": {"name": "r", "uid": "u2"}, "spec": {"inputs": {"m": 2}}}
    assert run_inputs(other, story) == {"m": 2, "n": 7}
    changed = {"metadata": {"name": "r", "uid": "u1"}, "spec": {"inputs": {"m": 3}}}
    assert run_inputs(changed, story) == {"m": 3, "n": 7}
    no_uid = {"metadata": {"name": "r"}, "spec": {"inputs": {"n": 1}}}
    assert run_inputs(no_uid, story) == {"n": 1}
    assert run_inputs({"spec": {}}, story) == {"n": 7}
