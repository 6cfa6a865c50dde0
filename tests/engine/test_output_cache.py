"""The output cache's policy precedence, key material and freshness (reference §7.6)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from bobrapet.engine.cache import cache_entry, cache_policy, fresh_output

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_key_material_with_and_without_a_key_template() -> None:
    entry = cache_entry(
        {"mode": "read"},
        namespace="ns",
        engram="e",
        version=None,
        step_id="s",
        inputs={"b": 1, "a": 2},
        rendered_key=None,
    )
    material = 'engram:e|version:latest|step:s|input:{"a":2,"b":1}'
    assert entry.key == hashlib.sha256(material.encode()).hexdigest()
    assert entry.blob == f"cache/ns/e/latest/{entry.key}.json"
    assert entry.reads and not entry.writes
    keyed = cache_entry(
        {"salt": "x", "ttlSeconds": 60},
        namespace="ns",
        engram="e",
        version="1.0",
        step_id="s",
        inputs={},
        rendered_key="k",
    )
    assert keyed.key == hashlib.sha256(b"engram:e|version:1.0|key:k|salt:x").hexdigest()
    assert keyed.mode == "readWrite" and keyed.ttl_seconds == 60 and keyed.writes


def test_the_most_specific_policy_wins_and_disabled_turns_it_off() -> None:
    engram = {"spec": {"executionPolicy": {"cache": {"mode": "read"}}}}
    assert cache_policy({}, None, None, engram) == {"mode": "read"}
    step_run = {"spec": {"executionOverrides": {"cache": {"mode": "write"}}}}
    assert cache_policy(step_run, None, None, engram) == {"mode": "write"}
    off = {"spec": {"executionOverrides": {"cache": {"enabled": False}}}}
    assert cache_policy(off, None, None, engram) is None
    assert cache_policy({}, None, None, None) is None


def test_entries_expire_after_their_ttl() -> None:
    entry = cache_entry(
        {"ttlSeconds": 10}, namespace="n", engram="e", version="v", step_id="s", inputs={}, rendered_key=None
    )
    record = entry.record({"x": 1}, NOW)
    assert fresh_output(record, NOW + timedelta(seconds=5)) == (True, {"x": 1})
    assert fresh_output(record, NOW + timedelta(seconds=11)) == (False, None)
    forever = {**record, "ttlSeconds": None}
    assert fresh_output(forever, NOW + timedelta(days=999)) == (True, {"x": 1})
    assert fresh_output({"nope": 1}, NOW) == (False, None)
