"""EffectClaim decisions and writes (pure): given a claim and now → create / skip / take over /
wait / abandoned; the claim and StepRun status each decision writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bobrapet.api.admission.identity import effect_claim_name
from bobrapet.engine import (
    claim_completed,
    claim_released,
    claim_renewed,
    claim_status,
    claim_taken_over,
    decide_claim,
    is_held_by,
    new_claim,
    record_effect,
    recorded_effect,
)
from bobrapet.engine.effects import MAX_EFFECTS, lease_expiry

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
STEP_RUN = {
    "metadata": {"name": "run-pay", "namespace": "shop", "uid": "u-1"},
    "spec": {"idempotencyKey": "ns/shop/storyrun/run/step/pay"},
}


def _at(seconds: float) -> str:
    return (NOW + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def claim(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "c", "namespace": "shop", "creationTimestamp": _at(-1000)},
        "spec": {"stepRunRef": {"name": "run-pay"}, "effectKey": "charge", **spec},
    }


def held(renewed: float, lease: int = 600, **spec: Any) -> dict[str, Any]:
    return claim(holderIdentity="e1/attempt-1/x", acquireTime=_at(-2000), renewTime=_at(renewed),
                 leaseDurationSeconds=lease, **spec)  # fmt: skip


# --------------------------------------------------------------------------- decide_claim


def test_no_claim_is_created() -> None:
    assert decide_claim(None, NOW).action == "create"


def test_completed_claim_is_skipped_with_its_details() -> None:
    decision = decide_claim(
        held(-5, completionStatus="completed", completedAt=_at(-1), details={"id": 7}), NOW
    )
    assert (decision.action, decision.details) == ("skip", {"id": 7})
    assert decide_claim(claim(completionStatus="completed", completedAt=_at(0)), NOW).details == {}


def test_abandoned_claim_is_never_run_again() -> None:
    assert decide_claim(claim(completionStatus="abandoned", completedAt=_at(-1)), NOW).action == "abandoned"


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"completionStatus": "released"}, id="released"),
        pytest.param({"completionStatus": "released", "completedAt": _at(-1)}, id="released-stamped"),
        pytest.param({}, id="no-holder"),
        pytest.param({"holderIdentity": ""}, id="empty-holder"),
    ],
)
def test_released_or_unheld_claim_is_taken_over(spec: dict[str, Any]) -> None:
    assert decide_claim(claim(**spec), NOW).action == "takeover"


def test_live_lease_waits_until_it_expires() -> None:
    decision = decide_claim(held(-100, lease=600), NOW)
    assert decision.action == "wait"
    assert decision.wait_seconds == pytest.approx(500)
    assert decision.holder == "e1/attempt-1/x"


def test_expired_lease_is_taken_over_exactly_at_expiry() -> None:
    assert decide_claim(held(-600, lease=600), NOW).action == "takeover"
    assert decide_claim(held(-599, lease=600), NOW).action == "wait"


def test_lease_counts_from_renew_then_acquire_then_creation() -> None:
    only_acquired = claim(holderIdentity="h", acquireTime=_at(-30), leaseDurationSeconds=60)
    assert lease_expiry(only_acquired) == NOW + timedelta(seconds=30)
    bare = claim(holderIdentity="h", leaseDurationSeconds=60)  # created 1000 s ago
    assert decide_claim(bare, NOW).action == "takeover"
    default_lease = claim(holderIdentity="h", acquireTime=_at(-599))
    assert decide_claim(default_lease, NOW).action == "wait"  # 600 s when unset


def test_naive_now_is_utc() -> None:
    assert decide_claim(held(-100), NOW.replace(tzinfo=None)).action == "wait"


# --------------------------------------------------------------------------- writes


def test_new_claim_is_named_owned_and_leased() -> None:
    body = new_claim(step_run=STEP_RUN, key="charge", holder="e1/attempt-1/x", lease_seconds=30, now=NOW)
    metadata, spec = body["metadata"], body["spec"]
    assert metadata["name"] == effect_claim_name("shop", "run-pay", "charge")
    assert metadata["namespace"] == "shop"
    assert metadata["ownerReferences"] == [
        {"apiVersion": "runs.bubustack.io/v1alpha1", "kind": "StepRun", "name": "run-pay", "uid": "u-1"}
    ]
    assert spec == {
        "stepRunRef": {"name": "run-pay", "uid": "u-1"},
        "effectKey": "charge",
        "idempotencyKey": "ns/shop/storyrun/run/step/pay",
        "holderIdentity": "e1/attempt-1/x",
        "leaseDurationSeconds": 30,
        "acquireTime": "2025-01-01T12:00:00.000000Z",
        "renewTime": "2025-01-01T12:00:00.000000Z",
    }
    assert body["apiVersion"] == "runs.bubustack.io/v1alpha1" and body["kind"] == "EffectClaim"


def test_takeover_clears_completion_and_counts_a_transition() -> None:
    released = claim_released(held(-5, leaseTransitions=2))
    taken = claim_taken_over(released, holder="e2/attempt-2/y", lease_seconds=60, now=NOW)
    spec = taken["spec"]
    assert "completionStatus" not in spec and "completedAt" not in spec
    assert spec["holderIdentity"] == "e2/attempt-2/y"
    assert spec["acquireTime"] == spec["renewTime"] == "2025-01-01T12:00:00.000000Z"
    assert (spec["leaseTransitions"], spec["leaseDurationSeconds"]) == (3, 60)
    assert is_held_by(taken, "e2/attempt-2/y") and not is_held_by(taken, "e1/attempt-1/x")
    assert claim_taken_over(held(-700), holder="z", lease_seconds=1, now=NOW)["spec"]["leaseTransitions"] == 1


def test_release_clears_the_holder_and_sets_released_without_completed_at() -> None:
    spec = claim_released(held(-5, leaseTransitions=1))["spec"]
    assert spec["completionStatus"] == "released"
    for gone in ("holderIdentity", "acquireTime", "renewTime", "completedAt"):
        assert gone not in spec
    assert spec["leaseTransitions"] == 1
    assert not is_held_by(claim_released(held(-5)), "e1/attempt-1/x")


def test_renew_and_complete_never_go_back_in_time() -> None:
    ahead = held(+10)  # the stored renewTime is later than this clock
    assert claim_renewed(ahead, NOW)["spec"]["renewTime"] == _at(10)
    assert claim_renewed(held(-10), NOW)["spec"]["renewTime"] == _at(0)
    done = claim_completed(ahead, {"id": 1}, NOW)["spec"]
    assert (done["completionStatus"], done["completedAt"], done["details"]) == (
        "completed",
        _at(10),
        {"id": 1},
    )
    assert not is_held_by(claim_completed(held(-1), {}, NOW), "e1/attempt-1/x")


def test_writes_do_not_modify_their_input() -> None:
    original = held(-5, details={"a": 1})
    snapshot = repr(original)
    claim_renewed(original, NOW)
    claim_completed(original, {"b": 2}, NOW)
    claim_released(original)
    claim_taken_over(original, holder="x", lease_seconds=1, now=NOW)
    assert repr(original) == snapshot


# --------------------------------------------------------------------------- status.effects


def test_record_effect_once_per_key_in_sequence() -> None:
    status: dict[str, Any] = {"phase": "Running"}
    first = record_effect(status, "charge", {"id": 1}, NOW)
    assert first is not None and status == {"phase": "Running"}
    assert first["effects"] == [
        {"seq": 1, "key": "charge", "status": "succeeded", "emittedAt": _at(0), "details": {"id": 1}}
    ]
    assert record_effect(first, "charge", {"id": 2}, NOW) is None
    second = record_effect(first, "mail", {}, NOW)
    assert second is not None and [e["seq"] for e in second["effects"]] == [1, 2]
    assert recorded_effect(second, "mail") == second["effects"][1]
    assert recorded_effect(None, "mail") is None


def test_record_effect_keeps_the_last_entries() -> None:
    status: dict[str, Any] | None = {}
    for i in range(MAX_EFFECTS + 3):
        status = record_effect(status, f"k{i}", {}, NOW)
        assert status is not None
    assert status is not None and len(status["effects"]) == MAX_EFFECTS
    assert status["effects"][0]["key"] == "k3" and status["effects"][-1]["seq"] == MAX_EFFECTS + 3


# --------------------------------------------------------------------------- claim status


def _conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


@pytest.mark.parametrize(
    ("spec", "phase", "ready", "progressing", "degraded"),
    [
        ({}, "Reserved", "False", "True", "False"),
        ({"completionStatus": "completed", "completedAt": _at(0)}, "Completed", "True", "False", "False"),
        ({"completionStatus": "released"}, "Released", "False", "False", "False"),
        ({"completionStatus": "abandoned", "completedAt": _at(0)}, "Abandoned", "False", "False", "True"),
    ],
)
def test_claim_status_from_completion(
    spec: dict[str, Any], phase: str, ready: str, progressing: str, degraded: str
) -> None:
    obj = held(-1, **spec)
    obj["metadata"]["generation"] = 3
    status = claim_status(obj, NOW)
    assert (status["phase"], status["observedGeneration"]) == (phase, 3)
    conditions = _conditions(status)
    assert conditions["Ready"] == (ready, phase)
    assert conditions["Progressing"] == (progressing, phase)
    assert conditions["Degraded"] == (degraded, phase)


def test_claim_status_is_stable() -> None:
    first = {**held(-1), "status": claim_status(held(-1), NOW)}
    assert claim_status(first, NOW + timedelta(hours=1)) == first["status"]
