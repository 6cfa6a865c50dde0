"""Compound templates over offloaded data (reference §3.7): policies controller and error."""

from __future__ import annotations

from typing import Any

import pytest

from bobrapet.templating import (
    LoadFailure,
    Offloaded,
    OffloadedData,
    TemplateError,
    Unhydrated,
    build_variables,
    evaluate_condition,
    render,
    step_entry,
)

REF = {"$bubuStorageRef": "outputs/ns/r-a/output.json", "$bubuStorageContentType": "application/json"}
STORED = {"items": [{"id": 1}, {"id": 2}], "text": "hello"}


def variables(output: Any = None, inputs: Any = None) -> dict[str, Any]:
    steps = {"a": step_entry(REF if output is None else output, phase="Succeeded")}
    return build_variables(inputs=inputs or {}, steps=steps)


def controller(blobs: dict[str, Any] | None = None) -> OffloadedData:
    return OffloadedData("controller", blobs or {})


def test_plain_paths_stay_lazy_selectors_under_every_policy() -> None:
    for offload in (controller(), OffloadedData("error"), None):
        out = render({"x": "{{ steps.a.output.items[1] }}"}, variables(), offload=offload)
        assert out == {"x": {**REF, "$bubuStoragePath": "items[1]"}}


def test_controller_asks_for_the_blobs_then_evaluates_over_them() -> None:
    template = {"n": "{{ steps.a.output.items | length }}", "s": "id={{ steps.a.output.items[0].id }}"}
    with pytest.raises(Unhydrated) as caught:
        render(template, variables(), offload=controller())
    assert caught.value.keys == ("outputs/ns/r-a/output.json",)
    out = render(template, variables(), offload=controller({"outputs/ns/r-a/output.json": STORED}))
    assert out == {"n": 2, "s": "id=1"}
    assert evaluate_condition(
        "steps.a.output.text == 'hello'", variables(), offload=controller({REF["$bubuStorageRef"]: STORED})
    )


def test_selectors_and_partly_offloaded_outputs_and_inputs_are_hydrated() -> None:
    partial = {"small": 1, "big": {**REF, "$bubuStoragePath": "items[*].id"}}
    inputs = {"doc": REF}
    blobs = {REF["$bubuStorageRef"]: STORED}
    out = render(
        "{{ steps.a.output.big | sum }}-{{ inputs.doc.text | upper }}",
        variables(partial, inputs),
        offload=controller(blobs),
    )
    assert out == "3-HELLO"


def test_policy_error_fails_with_the_reason() -> None:
    with pytest.raises(Offloaded) as caught:
        render("{{ steps.a.output.items | length }}", variables(), offload=OffloadedData("error"))
    assert "templating.offloaded-data-policy is error" in str(caught.value)
    assert "output of step 'a'" in str(caught.value)


def test_a_blob_that_could_not_be_loaded_fails_the_template() -> None:
    failure = LoadFailure("blob is 9000000 bytes, more than the limit of 100 bytes")
    with pytest.raises(TemplateError, match="more than the limit of 100 bytes") as caught:
        render(
            "{{ steps.a.output.text }}!", variables(), offload=controller({REF["$bubuStorageRef"]: failure})
        )
    assert not isinstance(caught.value, Unhydrated)


def test_malformed_references_fail_clearly() -> None:
    bad = {"$bubuStorageRef": "../../etc/passwd"}
    with pytest.raises(TemplateError, match="traversal"):
        render("{{ steps.a.output.x | string }}", variables({"x": bad}), offload=controller())


def test_templates_not_reading_offloaded_data_are_untouched() -> None:
    assert render("{{ 1 + 1 }}", variables(), offload=OffloadedData("error")) == 2
    other = build_variables(inputs={}, steps={"a": step_entry(REF), "b": step_entry({"v": 3})})
    assert render("{{ steps.b.output.v * 2 }}", other, offload=OffloadedData("error")) == 6
