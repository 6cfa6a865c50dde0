"""Events: one object per distinct event (repeats bump count), owned by the object, pruned by age."""

from __future__ import annotations

import asyncio

from bobrapet.api.kinds import CONFIG_MAP, EVENT
from bobrapet.controllers import events
from bobrapet.controllers.events import EventRecorder, event_name
from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.manager import Manager
from bobrapet.store.sqlite import SqliteClient


async def _config_map(client: SqliteClient, name: str = "cm") -> dict:
    return await client.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}
    )


async def test_repeated_event_bumps_count_and_distinct_events_are_separate(
    client: SqliteClient, clock: FakeClock
) -> None:
    obj = await _config_map(client)
    recorder = EventRecorder(client, clock)
    await recorder.record(obj, "Warning", "Thing", "it happened")
    clock.advance(5)
    await recorder.record(obj, "Warning", "Thing", "it happened")
    await recorder.record(obj, "Normal", "Other", "something else")
    items = await client.list(EVENT, "default")
    assert len(items) == 2
    thing = next(e for e in items if e["reason"] == "Thing")
    assert thing["count"] == 2
    assert thing["type"] == "Warning"
    assert thing["involvedObject"]["uid"] == obj["metadata"]["uid"]
    assert thing["involvedObject"]["kind"] == "ConfigMap"
    assert thing["lastTimestamp"] > thing["firstTimestamp"]
    assert thing["metadata"]["name"] == event_name(obj, "Warning", "Thing", "it happened")


async def test_events_are_deleted_with_their_object(client: SqliteClient, clock: FakeClock) -> None:
    obj = await _config_map(client)
    other = await _config_map(client, "other")
    recorder = EventRecorder(client, clock)
    await recorder.record(obj, "Normal", "A", "a")
    await recorder.record(other, "Normal", "B", "b")
    await client.delete(CONFIG_MAP, "cm", "default")
    assert [e["reason"] for e in await client.list(EVENT, "default")] == ["B"]


async def test_recording_never_raises(client: SqliteClient, clock: FakeClock) -> None:
    recorder = EventRecorder(client, clock)
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "UPPER", "uid": "u"}}
    await recorder.record(bad, "Warning", "X", "y")  # invalid name: logged and dropped


async def test_old_events_are_pruned_while_the_engine_runs(client: SqliteClient, clock: FakeClock) -> None:
    obj = await _config_map(client)
    recorder = EventRecorder(client, clock)
    await recorder.record(obj, "Normal", "Old", "old")
    manager = Manager(client, clock=clock, settle=0.05)
    events.setup(manager, ttl=60)
    async with manager:
        assert await manager.wait_idle(timeout=10)
        clock.advance(30)
        await recorder.record(obj, "Normal", "Young", "young")
        assert await manager.wait_idle(timeout=10)
        assert len(await client.list(EVENT, "default")) == 2
        clock.advance(31)  # "Old" is 61 s old, "Young" 31 s
        for _ in range(100):
            if len(await client.list(EVENT, "default")) == 1:
                break
            await asyncio.sleep(0.02)
        assert [e["reason"] for e in await client.list(EVENT, "default")] == ["Young"]
        clock.advance(30)
        for _ in range(100):
            if not await client.list(EVENT, "default"):
                break
            await asyncio.sleep(0.02)
        assert await client.list(EVENT, "default") == []


def test_event_names_are_valid_and_bounded() -> None:
    long = {"metadata": {"name": "a" * 250 + "-x", "uid": "u"}}
    name = event_name(long, "Normal", "R", "m")
    assert len(name) <= 253
    assert ".." not in name and "-." not in name
    assert event_name(long, "Normal", "R", "m") == name
    assert event_name(long, "Normal", "R", "n") != name
