"""Missing data: Blocked (wait) versus hard errors, and default/exists/defined/in."""

from __future__ import annotations

from typing import Any

import pytest

from bobrapet.templating import (
    Blocked,
    Offloaded,
    TemplateError,
    build_variables,
    evaluate,
    render,
    step_entry,
)


@pytest.fixture
def variables() -> dict[str, Any]:
    return build_variables(
        inputs={"x": 1, "nested": {"a": None}},
        steps={
            "a": step_entry({"x": 1, "list": [1, 2]}, phase="Succeeded"),
            "pending": step_entry(None, phase="Running"),
            "prim": {},
            "fetch-data": step_entry({"ok": True}),
        },
    )


@pytest.mark.parametrize(
    ("text", "step"),
    [
        ("{{ steps.missing.output }}", "missing"),
        ("{{ steps.missing }}", "missing"),
        ("{{ steps['other-step'].output.x }}", "other-step"),
        ("{{ steps.pending.output }}", "pending"),
        ("{{ steps.pending.outputs.x }}", "pending"),
        ("{{ steps.prim.output }}", "prim"),
        # a step that is not there yet blocks even under default/defined
        ("{{ steps.missing.output.x | default(3) }}", "missing"),
        ("{{ steps.pending.output.x | default(3) }}", "pending"),
        ("{{ steps.missing.output is defined }}", "missing"),
        ("{{ steps.a.output.x + steps.missing.output.y }}", "missing"),
        ("x={{ steps.missing.output }}", "missing"),
        ("{{ steps['missing'] | toJson }}", "missing"),
    ],
)
def test_blocked(variables: dict[str, Any], text: str, step: str) -> None:
    with pytest.raises(Blocked) as err:
        evaluate(text, variables)
    assert err.value.step == step
    assert step in str(err.value)


def test_blocked_is_a_template_error_with_path(variables: dict[str, Any]) -> None:
    with pytest.raises(TemplateError) as err:
        render({"with": {"v": "{{ steps.later.output }}"}}, variables)
    assert isinstance(err.value, Blocked)
    assert err.value.path == "with.v"


def test_phase_is_readable_while_output_is_pending(variables: dict[str, Any]) -> None:
    assert evaluate("{{ steps.pending.phase }}", variables) == "Running"
    assert evaluate("{{ steps.pending.phase == 'Running' }}", variables) is True


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "{{ inputs.missing }}",
            "inputs.missing is undefined: key 'missing' not found (available: x, nested)",
        ),
        ("{{ steps.a.output.nope }}", "steps.a.output.nope is undefined"),
        ("{{ steps.a.output.list[5] }}", "index 5 is out of range (length 2)"),
        ("{{ steps['fetch-data'].output.nope }}", "steps['fetch-data'].output.nope is undefined"),
        ("{{ steps.a.output.nope + 1 }}", "key 'nope' not found"),
        ("{{ steps.a.output.nope.deeper | upper }}", "key 'nope' not found"),
        ("x {{ inputs.missing }}", "key 'missing' not found"),
        ("{{ packet.x }}", "'packet' is undefined"),
        ("{{ steps.a.output.list[7] + 1 }}", "index 7 is out of range (length 2)"),
    ],
)
def test_missing_keys_are_hard_errors(variables: dict[str, Any], text: str, needle: str) -> None:
    with pytest.raises(TemplateError) as err:
        evaluate(text, variables)
    assert not isinstance(err.value, Blocked)
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ steps.a.output.x | default(3) }}", 1),
        ("{{ steps.a.output.nope | default(3) }}", 3),
        ("{{ steps.a.output.nope.deeper | default(3) }}", 3),
        ("{{ steps.a.output.nope['k'][0] | default('d') }}", "d"),
        ("{{ inputs.missing | default('fallback') }}", "fallback"),
        ("{{ inputs.nested.a | default('x', true) }}", "x"),
        ("{{ inputs.nested.a | default('x') }}", None),
        ("{{ steps.a.output.nope is defined }}", False),
        ("{{ steps.a.output.x is defined }}", True),
        ("{{ inputs.missing is undefined }}", True),
        ("{{ exists(steps.a.output.nope) }}", False),
        ("{{ exists(inputs.nested.a) }}", False),
        ("{{ exists(steps.a.output.x) }}", True),
        ("{{ steps.a.output.nope | exists }}", False),
        ("{{ 'nope' in steps.a.output }}", False),
        ("{{ 'x' in steps.a.output }}", True),
        ("{{ 'missing' in steps }}", False),
        ("{{ 'a' in steps }}", True),
        ("{{ steps.get('missing') }}", None),
        ("{{ steps.a.output.nope if steps.a.output.nope is defined else 'no' }}", "no"),
        ("{{ steps.a.output.list[9] | default(0) }}", 0),
    ],
)
def test_missing_keys_under_tests_and_defaults(variables: dict[str, Any], text: str, expected: Any) -> None:
    assert evaluate(text, variables) == expected


def test_steps_mapping_is_not_copied() -> None:
    class CountingSteps(dict[str, Any]):
        copies = 0

        def copy(self) -> CountingSteps:  # pragma: no cover - would count a copy
            CountingSteps.copies += 1
            return CountingSteps(self)

        def __iter__(self) -> Any:
            CountingSteps.copies += 1
            return super().__iter__()

    steps = CountingSteps({f"s{i}": step_entry({"n": i}) for i in range(200)})
    variables = build_variables(inputs={}, steps=steps)
    assert render({"n": "{{ steps.s1.output.n }}"}, variables) == {"n": 1}
    assert render({"n": "{{ steps.s7.output.n + 1 }}"}, variables) == {"n": 8}
    assert render({"n": "x{{ steps.s9.output.n }}"}, variables) == {"n": "x9"}
    assert CountingSteps.copies == 0


def test_paths_through_offloaded_data_become_lazy_selectors() -> None:
    ref = {"$bubuStorageRef": "outputs/ns/run-a/output.json", "$bubuStorageContentType": "application/json"}
    nested = {"$bubuStorageRef": "outputs/ns/run-a/body.json", "$bubuStoragePath": "items"}
    variables = build_variables(inputs={}, steps={"a": step_entry(ref), "b": step_entry({"body": nested})})
    assert evaluate("{{ steps.a.output }}", variables) == ref
    assert evaluate("{{ steps.a.output.items[0].id }}", variables) == {
        **ref,
        "$bubuStoragePath": "items[0].id",
    }
    assert evaluate("{{ steps.b.output.body[2].x }}", variables) == {
        **nested,
        "$bubuStoragePath": "items[2].x",
    }


def test_computing_over_offloaded_data_raises_offloaded() -> None:
    ref = {"$bubuStorageRef": "outputs/ns/run-a/output.json"}
    variables = build_variables(inputs={}, steps={"a": step_entry(ref)})
    with pytest.raises(Offloaded) as err:
        evaluate("{{ steps.a.output.items | length }}", variables)
    assert err.value.ref == "outputs/ns/run-a/output.json"
    with pytest.raises(TemplateError, match="offloaded"):
        evaluate("{{ len(steps.a.output) }}", variables)
