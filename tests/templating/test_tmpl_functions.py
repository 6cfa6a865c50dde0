"""Functions and filters of reference §3.3 that the environment provides; now()/random gating."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from bobrapet.templating import TemplateError, build_variables, evaluate, render, step_entry

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def clock() -> datetime:
    return NOW


@pytest.fixture
def variables() -> dict[str, Any]:
    return build_variables(
        inputs={
            "name": "bob",
            "items": [1, 2, 3],
            "obj": {"b": 2, "a": 1},
            "raw": '{"k": [1]}',
            "none": None,
        },
        steps={"a": step_entry({"list": ["x"]})},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ inputs.obj | toJson }}", '{"b":2,"a":1}'),
        ("{{ toJson(inputs.items) }}", "[1,2,3]"),
        ("{{ inputs.raw | fromJson }}", {"k": [1]}),
        ("{{ fromJson(inputs.raw).k[0] }}", 1),
        ("{{ inputs.name | sha256sum }}", hashlib.sha256(b"bob").hexdigest()),
        ("{{ sha256sum(inputs.name) }}", hashlib.sha256(b"bob").hexdigest()),
        ("{{ inputs.name | b64enc }}", base64.b64encode(b"bob").decode()),
        ("{{ inputs.name | b64enc | b64dec }}", "bob"),
        ("{{ hash_of(inputs.name) }}", hashlib.sha256(b"bob").hexdigest()),
        ("{{ type_of(inputs.name) }}", "string"),
        ("{{ type_of(inputs.items) }}", "array"),
        ("{{ type_of(inputs.obj) }}", "object"),
        ("{{ type_of(inputs.none) }}", "null"),
        ("{{ type_of(1.5) }}", "number"),
        ("{{ type_of(true) }}", "bool"),
        ("{{ exists(inputs.name) }}", True),
        ("{{ exists(inputs.none) }}", False),
        ("{{ inputs.none | default('d') }}", None),
        ("{{ inputs.nope | default('d') }}", "d"),
        ("{{ len(inputs.items) }}", 3),
        ("{{ len(inputs.none) }}", 0),
        ("{{ inputs.items | len }}", 3),
        ("{{ inputs.items | length }}", 3),
        ("{{ steps.a.output.list | first }}", "x"),
        ("{{ inputs.name | upper }}-{{ inputs.name | trim }}", "BOB-bob"),
        ("{{ coalesce(inputs.none, '', inputs.name) }}", "bob"),
        ("{{ ternary(true, 1, 2) }}", 1),
        ("{{ keys(inputs.obj) }}", ["b", "a"]),
        ("{{ inputs.obj | dictsort | first }}", ["a", 1]),
    ],
)
def test_functions(variables: dict[str, Any], text: str, expected: Any) -> None:
    assert evaluate(text, variables) == expected


def test_hash_of_rejects_non_strings(variables: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="hash_of expects a string, got null"):
        evaluate("{{ hash_of(inputs.none) }}", variables)


@pytest.mark.parametrize("text", ["{{ env('HOME') }}", "{{ expandenv('$HOME') }}"])
def test_denied_functions_do_not_exist(variables: dict[str, Any], text: str) -> None:
    with pytest.raises(TemplateError, match="is undefined"):
        evaluate(text, variables, now=clock)


def test_now_with_a_clock(variables: dict[str, Any]) -> None:
    assert evaluate("{{ now() }}", variables, now=clock) == NOW.isoformat()
    assert evaluate("{{ now().year }}", variables, now=clock) == 2024
    assert evaluate("at {{ now().isoformat() }}", variables, now=clock) == f"at {NOW.isoformat()}"
    assert render({"t": "{{ now() }}"}, variables, now=clock) == {"t": "2024-05-06T07:08:09+00:00"}


@pytest.mark.parametrize("deterministic", [True, False])
def test_now_is_denied_without_clock_or_when_deterministic(
    variables: dict[str, Any], deterministic: bool
) -> None:
    now = clock if deterministic else None
    with pytest.raises(TemplateError) as err:
        evaluate("{{ now() }}", variables, now=now, deterministic=deterministic)
    assert "function 'now' is not available" in str(err.value)


def test_random_helpers_follow_now(variables: dict[str, Any]) -> None:
    value = evaluate("{{ randInt(1, 5) }}", variables, now=clock)
    assert 1 <= value < 5
    assert len(evaluate("{{ uuidv4() }}", variables, now=clock)) == 36
    assert evaluate("{{ inputs.items | random }}", variables, now=clock) in (1, 2, 3)
    with pytest.raises(TemplateError, match="function 'randInt' is not available"):
        evaluate("{{ randInt(1, 5) }}", variables, now=clock, deterministic=True)
    with pytest.raises(TemplateError, match="function 'random' is not available"):
        evaluate("{{ inputs.items | random }}", variables)
    with pytest.raises(TemplateError, match="function 'uuidv4' is not available"):
        evaluate("x-{{ uuidv4() }}", variables)


def test_same_text_in_both_environments(variables: dict[str, Any]) -> None:
    """The compiled cache is per environment: a text works with a clock after failing without."""
    with pytest.raises(TemplateError):
        evaluate("{{ now().day }}", variables)
    assert evaluate("{{ now().day }}", variables, now=clock) == 6
    with pytest.raises(TemplateError):
        evaluate("{{ now().day }}", variables, now=clock, deterministic=True)
