"""The clean-up's decisions (pure): what may go once its owner is gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bobrapet.controllers.sweep import (
    Live,
    Suspects,
    cache_record,
    log_owner_alive,
    removable_blob,
    run_may_own,
    trigger_removable,
    trigger_view,
)
from bobrapet.engine import compose_dns1123
from bobrapet.storage.backend import BlobInfo
from bobrapet.storage.layout import owner_of

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def obj(kind: str, name: str, *, uid: str = "", ns: str = "default", **status: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": ns, "uid": uid or name}, "status": status}


LIVE = Live.of(
    [obj("StepRun", "r1-a"), obj("StepRun", "r1-b", ns="other")],
    [obj("StoryRun", "r1"), obj("StoryRun", "old", childrenCleanedAt="2026-05-01T00:00:00Z")],
    ["outputs/default/gone-a/kept.json"],
)


def blob(key: str, modified: float = 100.0) -> tuple[BlobInfo, Any]:
    return BlobInfo(key, 1, modified), owner_of(key, "outputs", "inputs")


def test_live_of_the_caches() -> None:
    assert LIVE.step_runs == {("default", "r1-a"), ("other", "r1-b")}
    assert LIVE.names == {"r1-a", "r1-b", "r1", "old"}
    assert LIVE.open_runs == {"default": ["r1"]}
    assert LIVE.run_uids == {"r1", "old"}


def test_a_blob_goes_when_its_owner_is_gone_and_nothing_references_it() -> None:
    assert removable_blob(*blob("outputs/default/gone-a/big.json"), LIVE, before=200)
    assert not removable_blob(*blob("outputs/default/r1-a/big.json"), LIVE, before=200)  # owner alive
    assert removable_blob(*blob("outputs/other/r1-a/big.json"), LIVE, before=200)  # other namespace
    assert not removable_blob(*blob("outputs/default/gone-a/kept.json"), LIVE, before=200)  # referenced
    assert not removable_blob(*blob("outputs/default/gone-a/big.json", 300), LIVE, before=200)  # newer
    assert not removable_blob(*blob("inputs/r1-b/input.json"), LIVE, before=200)  # a StepRun of any ns
    assert removable_blob(*blob("inputs/gone/input.json"), LIVE, before=200)
    assert removable_blob(*blob("inputs/default/uuid/doc.json"), LIVE, before=200)  # no owner but refs
    assert removable_blob(*blob("cache/default/e/v/k/1-big.json"), LIVE, before=200)
    assert not removable_blob(*blob("cache/default/e/v/k.json"), LIVE, before=200)  # entries expire
    assert not removable_blob(*blob("outputs/by-hand.json"), LIVE, before=200)  # unknown layout


def test_logs_stay_while_a_run_may_still_append_to_them() -> None:
    assert log_owner_alive("default", "r1-a.log", LIVE) is True
    assert log_owner_alive("default", "r1-zz.log", LIVE) is True  # r1 keeps its children (redrive)
    assert log_owner_alive("default", "old-a.log", LIVE) is False  # children cleaned: the log is stale
    assert log_owner_alive("default", "gone-a.log", LIVE) is False
    assert log_owner_alive("default", "r1.inputs.jsonl", LIVE) is True
    assert log_owner_alive("default", "gone.inputs.jsonl", LIVE) is False
    assert log_owner_alive("other", "r1-a.log", LIVE) is False
    assert log_owner_alive("default", "notes.txt", LIVE) is None


def test_a_hashed_step_run_name_is_matched_to_its_long_run_name() -> None:
    run = "a-run-with-a-name-long-enough-that-its-steps-get-hashed-names"
    step_run = compose_dns1123(run, "step")
    assert len(step_run) == 63 and not step_run.startswith(run + "-")
    assert run_may_own(step_run, sorted([run, "zzz"]))
    assert not run_may_own(step_run, ["another-run"])
    short = compose_dns1123("r", "a-step-name-so-long-that-the-step-run-name-must-be-hashed-anyway")
    assert run_may_own(short, ["r"])


def trigger(decision: str, run_uid: str = "", **extra: Any) -> dict[str, Any]:
    status: dict[str, Any] = {
        "decision": decision,
        "completedAt": "2026-05-01T11:00:00Z",
        "observedGeneration": 1,
    }
    if run_uid:
        status["storyRunRef"] = {"name": "r", "namespace": "default", "uid": run_uid}
    return {"metadata": {"name": "t", "generation": 1}, "spec": extra, "status": status}


def test_triggers_go_with_their_run_or_after_the_retention() -> None:
    assert trigger_removable(trigger_view(trigger("Created", "gone")), LIVE, NOW, 86400)
    assert not trigger_removable(trigger_view(trigger("Created", "r1")), LIVE, NOW, None)
    assert not trigger_removable(trigger_view(trigger("Pending")), LIVE, NOW, 0)
    rejected = trigger_view(trigger("Rejected"))
    assert trigger_removable(rejected, LIVE, NOW, 3600)
    assert not trigger_removable(rejected, LIVE, NOW, 7200)
    assert not trigger_removable(rejected, LIVE, NOW, None)  # kept forever (retention 0)
    stale = trigger("Created", "gone")
    stale["metadata"]["generation"] = 2  # decided for an older spec: not decided
    assert not trigger_removable(trigger_view(stale), LIVE, NOW, 1)
    refs = trigger_view(trigger("Rejected", inputs={"doc": {"$bubuStorageRef": "inputs/r/doc.json"}}))
    assert refs["refs"] == ["inputs/r/doc.json"]


def test_cache_records_know_their_expiry_and_references() -> None:
    output = {"big": {"$bubuStorageRef": "cache/ns/e/v/k/1-big.json"}}
    entry = cache_record({"createdAt": "2026-05-01T11:00:00Z", "ttlSeconds": 600, "output": output})
    assert entry is not None and entry.keys == {"cache/ns/e/v/k/1-big.json"}
    assert entry.expires == NOW - timedelta(minutes=50) and not entry.fresh(NOW)
    forever = cache_record({"createdAt": "2026-05-01T11:00:00Z", "ttlSeconds": None, "output": {}})
    assert forever is not None and forever.fresh(NOW + timedelta(days=999))
    assert cache_record({"nonsense": True}) is None
    assert cache_record({"ttlSeconds": 5, "output": {}}) is None  # no createdAt: unusable


def test_suspects_are_confirmed_by_the_next_sweep_only() -> None:
    suspects = Suspects()
    assert suspects.confirm({"a", "b"}) == set()
    assert suspects.confirm({"b", "c"}) == {"b"}
    assert suspects.confirm({"a"}) == set()
    assert len(suspects) == 1
