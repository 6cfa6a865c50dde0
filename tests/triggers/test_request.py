"""Building a trigger: delivery identity, key templates, names and hashes (pure parts)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from bobrapet.api.admission.identity import canonical_input_hash, story_trigger_name
from bobrapet.api.admission.storytrigger import identity_causes
from bobrapet.triggers import (
    DeliveryError,
    ImpulseRef,
    TriggerRequest,
    delivery_key,
    key_variables,
    render_key,
    request_differences,
    trigger_object,
)
from bobrapet.triggers.request import json_inputs


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def variables(**inputs: Any) -> dict[str, Any]:
    return key_variables(inputs, "orders", "shop", "hook", "ingest")


def test_key_is_the_sha256_of_the_trimmed_rendering() -> None:
    assert render_key("{{ inputs.id }}", variables(id="A-1")) == sha("A-1")
    assert render_key("  {{ inputs.id }}\n", variables(id="A-1")) == sha("A-1")
    assert render_key("order-{{ inputs.id }}", variables(id=7)) == sha("order-7")
    assert render_key("plain text", variables()) == sha("plain text")
    # the story and impulse the key is for are variables too
    text = "{{ story.namespace }}/{{ story.name }}/{{ impulse.namespace }}/{{ impulse.name }}"
    assert render_key(text, variables()) == sha("shop/orders/ingest/hook")


def test_non_string_results_are_json_encoded_like_go() -> None:
    assert render_key("{{ inputs.n }}", variables(n=42)) == sha("42")
    assert render_key("{{ inputs.flag }}", variables(flag=True)) == sha("true")
    assert render_key("{{ inputs.obj }}", variables(obj={"b": 1, "a": "<x>"})) == sha(
        '{"a":"\\u003cx\\u003e","b":1}'
    )
    assert render_key("{{ inputs.items }}", variables(items=[1, 2.5])) == sha("[1,2.5]")
    assert render_key("{{ inputs.none }}", variables(none=None)) == sha("null")


def test_bad_key_templates_are_delivery_errors() -> None:
    with pytest.raises(DeliveryError, match="rendered an empty key"):
        render_key("{{ inputs.blank }}", variables(blank="   "))
    with pytest.raises(DeliveryError, match="key template"):
        render_key("{{ inputs.missing }}", variables())
    with pytest.raises(DeliveryError, match="key template"):
        render_key("{{ now() }}", variables())  # deterministic: no clock


def request(**fields: Any) -> TriggerRequest:
    return TriggerRequest(**{"story": "orders", "namespace": "shop", **fields})


def test_delivery_modes() -> None:
    assert delivery_key(request(), {}) == ("none", None)
    assert delivery_key(request(token="t-1"), {}) == ("token", "t-1")  # none + token = token
    assert delivery_key(request(mode="token", token="t-1"), {}) == ("token", "t-1")
    assert delivery_key(request(mode="key", key_template="{{ inputs.id }}"), {"id": 5}) == ("key", sha("5"))
    # a token given with mode key must be the key the template renders
    ok = request(mode="key", key_template="{{ inputs.id }}", token=sha("5"))
    assert delivery_key(ok, {"id": 5}) == ("key", sha("5"))
    problems = [
        (request(mode="token"), "needs a token"),
        (request(mode="key"), "needs a key template"),
        (request(mode="key", key_template="{{ inputs.id }}", token="other"), "does not match"),
        (request(mode="sometimes"), "must be one of none, token, key"),  # type: ignore[arg-type]
        (request(token="x" * 300), "at most 256"),
    ]
    for bad, message in problems:
        with pytest.raises(DeliveryError, match=message):
            delivery_key(bad, {"id": 5})


def test_trigger_object_is_valid_and_deterministic() -> None:
    inputs = {"id": 5, "note": "<hi>"}
    req = request(story_namespace="catalog", impulse=ImpulseRef("hook", uid="u-1"), mode="key")
    key = sha("5")
    trigger = trigger_object(req, mode="key", key=key, submission_id="ignored", inputs=inputs, version="2")
    assert trigger["metadata"] == {"name": story_trigger_name("catalog", "orders", key), "namespace": "shop"}
    assert trigger["spec"] == {
        "storyRef": {"name": "orders", "namespace": "catalog", "version": "2"},
        "impulseRef": {"name": "hook", "uid": "u-1"},
        "inputs": inputs,
        "deliveryIdentity": {
            "mode": "key",
            "key": sha("5"),
            "inputHash": canonical_input_hash(inputs),
            "submissionId": sha("5"),  # the key, so a retry of the same event is the same trigger
        },
    }
    assert identity_causes(trigger["spec"], trigger["metadata"]["name"], "shop") == []


def test_unkeyed_triggers_use_the_submission_id() -> None:
    trigger = trigger_object(request(), mode="none", key=None, submission_id="sub-1", inputs={})
    assert trigger["metadata"]["name"] == story_trigger_name("shop", "orders", "sub-1")
    assert "inputs" not in trigger["spec"] and "namespace" not in trigger["spec"]["storyRef"]
    assert trigger["spec"]["deliveryIdentity"] == {
        "mode": "none",
        "inputHash": canonical_input_hash({}),
        "submissionId": "sub-1",
    }
    assert identity_causes(trigger["spec"], trigger["metadata"]["name"], "shop") == []


def test_inputs_must_be_json_objects() -> None:
    assert json_inputs(None) == {}
    copied = json_inputs({"a": [1, {"b": 2}]})
    assert copied == {"a": [1, {"b": 2}]}
    for bad, message in (
        ([1, 2], "must be a JSON object"),
        ({"when": object()}, "must be JSON data"),
        ({"x": float("nan")}, "must be JSON data"),
    ):
        with pytest.raises(DeliveryError, match=message):
            json_inputs(bad)  # type: ignore[arg-type]


def stored(**spec: Any) -> dict[str, Any]:
    base = {
        "storyRef": {"name": "orders"},
        "inputs": {"a": 1, "b": 2},
        "deliveryIdentity": {"mode": "key", "key": "k", "inputHash": "h", "submissionId": "k"},
    }
    return {"metadata": {"name": "t", "namespace": "shop"}, "spec": {**base, **spec}}


def test_request_differences() -> None:
    same = stored(inputs={"b": 2, "a": 1}, storyRef={"name": "orders", "namespace": "shop"})
    assert request_differences(stored(), same) == []
    assert request_differences(stored(inputs=None), stored(inputs={})) == []
    other = stored(
        inputs={"a": 1, "b": 3},
        storyRef={"name": "orders", "version": "2"},
        impulseRef={"name": "hook"},
        deliveryIdentity={"mode": "key", "key": "k", "inputHash": "h2", "submissionId": "k"},
    )
    assert request_differences(stored(), other) == [
        "spec.storyRef",
        "spec.impulseRef",
        "spec.deliveryIdentity.inputHash",
        "spec.inputs",
    ]
    # an absent mode is "none"
    unset = stored(deliveryIdentity={"submissionId": "s"})
    assert request_differences(unset, stored(deliveryIdentity={"mode": "none", "submissionId": "s"})) == []
