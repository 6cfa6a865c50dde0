"""bobrapet.api.conditions: pure helpers on condition dicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bobrapet.api import conditions
from bobrapet.api.conditions import Reason

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_set_new_condition() -> None:
    conds: list[dict[str, object]] = []
    assert conditions.set_condition(
        conds, "Ready", True, Reason.VALIDATION_PASSED, "ok", observed_generation=3, now=T0
    )
    assert conds == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "ValidationPassed",
            "message": "ok",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 3,
        }
    ]


def test_same_status_keeps_transition_time_and_reports_changes() -> None:
    conds: list[dict[str, object]] = []
    conditions.set_condition(conds, "Ready", False, "A", "m", observed_generation=1, now=T0)
    assert not conditions.set_condition(conds, "Ready", False, "A", "m", observed_generation=1, now=T1)
    assert conditions.set_condition(conds, "Ready", False, "B", "other", observed_generation=2, now=T1)
    assert conds[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert (conds[0]["reason"], conds[0]["message"], conds[0]["observedGeneration"]) == ("B", "other", 2)
    assert conditions.set_condition(conds, "Ready", "True", "C", "", observed_generation=2, now=T1)
    transitioned: object = conds[0]["lastTransitionTime"]
    assert transitioned == "2026-01-01T00:05:00Z"
    assert len(conds) == 1


def test_get_is_true_remove_and_order() -> None:
    conds: list[dict[str, object]] = []
    conditions.set_condition(conds, "Ready", True, "R", "", observed_generation=None, now=T0)
    conditions.set_condition(conds, "Degraded", False, "D", "", observed_generation=None, now=T0)
    assert [c["type"] for c in conds] == ["Ready", "Degraded"]
    assert "observedGeneration" not in conds[0]
    assert conditions.is_true(conds, "Ready")
    assert not conditions.is_true(conds, "Degraded")
    assert not conditions.is_true(None, "Ready")
    assert conditions.get_condition(conds, "Missing") is None
    assert conditions.remove_condition(conds, "Ready")
    assert not conditions.remove_condition(conds, "Ready")
    assert [c["type"] for c in conds] == ["Degraded"]


def test_limits_and_bad_status() -> None:
    conds: list[dict[str, object]] = []
    conditions.set_condition(conds, "Ready", "Unknown", "x" * 100, "y" * 5000, observed_generation=1, now=T0)
    assert len(str(conds[0]["reason"])) == 64
    assert len(str(conds[0]["message"])) == 2048
    with pytest.raises(ValueError):
        conditions.set_condition(conds, "Ready", "yes", "r", "m", observed_generation=1, now=T0)


def test_time_formatting_normalises_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert (
        conditions.format_time(datetime(2026, 1, 1, 2, 0, 1, 999, tzinfo=plus_two)) == "2026-01-01T00:00:01Z"
    )
    assert conditions.format_time(datetime(2026, 1, 1)) == "2026-01-01T00:00:00Z"


def test_vocabulary() -> None:
    assert len(conditions.CONDITION_TYPES) == 14
    assert {
        "ValidationPassed",
        "EngramReferenceInvalid",
        "MimeTypeInvalid",
        "Reconciling",
    } <= conditions.REASONS
    assert len(conditions.REASONS) == 58
