"""Manager: initial list, shared watches, mappers, idleness, lost-event recovery, stop."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bobrapet.api.errors import StatusError
from bobrapet.api.kinds import ENGRAM, ENGRAM_TEMPLATE, STORY, Kind
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.informer import newer_version
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.watches import (
    Watch,
    changed,
    enqueue_object,
    event_types,
    generation_changed,
    map_objects,
    names_mapper,
    owner_mapper,
    reverse_mapper,
)
from bobrapet.store.client import Resource, WatchEvent
from bobrapet.store.sqlite import SqliteClient


def story(name: str, ns: str = "default", **extra: Any) -> Resource:
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Story",
        "metadata": {"name": name, "namespace": ns, **extra},
        "spec": {"steps": [{"name": "s", "ref": {"name": "e"}}]},
    }


def engram(name: str, ns: str = "default", template: str = "t", **meta: Any) -> Resource:
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Engram",
        "metadata": {"name": name, "namespace": ns, **meta},
        "spec": {"templateRef": {"name": template}},
    }


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[SqliteClient]:
    store = SqliteClient(tmp_path / "state.db")
    yield store
    store.close()


class Recorder:
    """A reconciler that counts calls per key."""

    def __init__(self) -> None:
        self.calls: Counter[Request] = Counter()

    async def __call__(self, request: Request) -> Result:
        self.calls[request] += 1
        return Result()


async def test_start_lists_existing_objects_and_watches_new_ones(client: SqliteClient) -> None:
    await client.create(story("old"))
    rec = Recorder()
    manager = Manager(client, settle=0.05)
    manager.add(Controller("story", STORY, rec))
    async with manager:
        assert await manager.wait_idle(timeout=10)
        assert rec.calls[Request("default", "old")] == 1
        await client.create(story("new", ns="other"))
        assert await manager.run_until(lambda: rec.calls[Request("other", "new")] >= 1, timeout=10)
        assert await manager.wait_idle(timeout=10)


async def test_status_writes_converge_and_idle_waits_for_follow_up_events(client: SqliteClient) -> None:
    """Story reconcile writes a status; the engram controller counts stories via a watch."""
    await client.create(engram("e"))
    for i in range(5):
        await client.create(story(f"s{i}"))

    async def reconcile_story(request: Request) -> Result:
        obj = await client.get(STORY, request.name, request.namespace)
        if (obj.get("status") or {}).get("seen") != 1:
            obj["status"] = {"seen": 1}
            await client.update_status(obj)
        return Result()

    async def reconcile_engram(request: Request) -> Result:
        obj = await client.get(ENGRAM, request.name, request.namespace)
        stories = await client.list(STORY, request.namespace)
        seen = sum(1 for s in stories if (s.get("status") or {}).get("seen") == 1)
        if (obj.get("status") or {}).get("storiesSeen") != seen:
            obj["status"] = {"storiesSeen": seen}
            await client.update_status(obj)
        return Result()

    def story_to_engrams(obj: Resource) -> list[str]:
        return [step["ref"]["name"] for step in obj["spec"]["steps"] if "ref" in step]

    manager = Manager(client, settle=0.05)
    manager.add(Controller("story", STORY, reconcile_story, workers=3))
    manager.add(
        Controller(
            "engram",
            ENGRAM,
            reconcile_engram,
            watches=[Watch(STORY, names_mapper(story_to_engrams))],
        )
    )
    async with manager:
        assert await manager.wait_idle(timeout=10)
        got = await client.get(ENGRAM, "e", "default")
        assert got["status"] == {"storiesSeen": 5}


async def test_owner_mapper_enqueues_owner(client: SqliteClient) -> None:
    owner = await client.create(story("owner"))
    rec = Recorder()
    manager = Manager(client, settle=0.05)
    manager.add(Controller("story", STORY, rec, watches=[Watch(ENGRAM, owner_mapper(STORY))]))
    async with manager:
        assert await manager.wait_idle(timeout=10)
        before = rec.calls[Request("default", "owner")]
        ref = {
            "apiVersion": "bubustack.io/v1alpha1",
            "kind": "Story",
            "name": "owner",
            "uid": owner["metadata"]["uid"],
        }
        await client.create(engram("child", ownerReferences=[ref]))
        assert await manager.run_until(lambda: rec.calls[Request("default", "owner")] > before, timeout=10)


def test_owner_mapper_filters_kind_group_and_controller() -> None:
    event = WatchEvent(
        "ADDED",
        {
            "metadata": {
                "name": "c",
                "namespace": "ns",
                "ownerReferences": [
                    {"apiVersion": "bubustack.io/v1alpha1", "kind": "Story", "name": "a", "controller": True},
                    {"apiVersion": "bubustack.io/v1alpha1", "kind": "Story", "name": "b"},
                    {"apiVersion": "other.io/v1", "kind": "Story", "name": "x"},
                    {"apiVersion": "bubustack.io/v1alpha1", "kind": "Engram", "name": "y"},
                ],
            }
        },
    )
    assert list(owner_mapper(STORY)(event)) == [Request("ns", "a"), Request("ns", "b")]  # type: ignore[arg-type]
    assert list(owner_mapper(STORY, controller_only=True)(event)) == [Request("ns", "a")]  # type: ignore[arg-type]


def test_names_mapper_handles_pairs_and_cluster_scope() -> None:
    event = WatchEvent("ADDED", {"metadata": {"name": "o", "namespace": "ns"}})
    mapper = names_mapper(lambda obj: ["a", ("other", "b"), (None, "c"), ""])
    assert list(mapper(event)) == [  # type: ignore[arg-type]
        Request("ns", "a"),
        Request("other", "b"),
        Request("ns", "c"),
    ]
    cluster = names_mapper(lambda obj: ["t"], cluster_scoped=True)
    assert list(cluster(event)) == [Request(None, "t")]  # type: ignore[arg-type]


def test_predicates() -> None:
    def ev(kind: str, gen: int, name: str = "o", phase: str = "") -> WatchEvent:
        obj = {"metadata": {"name": name, "namespace": "ns", "generation": gen}, "status": {"phase": phase}}
        return WatchEvent(kind, obj)  # type: ignore[arg-type]

    gen = generation_changed()
    assert gen(ev("ADDED", 1))
    assert not gen(ev("MODIFIED", 1)), "status-only change"
    assert gen(ev("MODIFIED", 2))
    assert gen(ev("MODIFIED", 5, name="unseen")), "first sight of an object passes"
    assert gen(ev("DELETED", 2))
    assert gen(ev("MODIFIED", 2)), "forgotten after DELETED"

    phase = changed(lambda o: o["status"]["phase"])
    assert phase(ev("MODIFIED", 1, phase="Running"))
    assert not phase(ev("MODIFIED", 1, phase="Running"))
    assert phase(ev("MODIFIED", 1, phase="Succeeded"))

    only = event_types("ADDED", "DELETED")
    assert only(ev("ADDED", 1)) and only(ev("DELETED", 1)) and not only(ev("MODIFIED", 1))


def test_newer_version() -> None:
    assert newer_version(None, "3") == "3"
    assert newer_version("10", "9") == "10"
    assert newer_version("9", "10") == "10"
    assert newer_version("5", None) == "5"


async def test_reverse_mapper_lists_primaries_in_namespace(client: SqliteClient) -> None:
    await client.create(story("s1"))
    await client.create(story("s2"))
    await client.create(story("s3", ns="elsewhere"))
    mapper = reverse_mapper(
        client,
        STORY,
        lambda s, e: any(
            step.get("ref", {}).get("name") == e["metadata"]["name"] for step in s["spec"]["steps"]
        ),
    )
    result = mapper(WatchEvent("DELETED", engram("e")))
    assert not isinstance(result, list)
    got = sorted(await result)  # type: ignore[misc]
    assert got == [Request("default", "s1"), Request("default", "s2")]


async def test_failing_mapper_falls_back_to_relist(client: SqliteClient) -> None:
    await client.create(story("s"))
    rec = Recorder()

    def broken(event: WatchEvent) -> list[Request]:
        raise RuntimeError("mapper bug")

    manager = Manager(client, settle=0.05)
    manager.add(Controller("story", STORY, rec, watches=[Watch(ENGRAM, broken)]))
    async with manager:
        assert await manager.wait_idle(timeout=10)
        before = rec.calls[Request("default", "s")]
        await client.create(engram("e"))
        assert await manager.run_until(lambda: rec.calls[Request("default", "s")] > before, timeout=10)


async def test_lost_events_are_recovered_by_relisting(tmp_path: Path) -> None:
    """The watch falls behind the pruned change log (410): everything is re-listed."""
    client = SqliteClient(tmp_path / "state.db", event_retention=4, prune_every=2)
    gate = asyncio.Event()
    seen_block = asyncio.Event()
    rec = Recorder()

    async def slow_mapper(event: WatchEvent) -> list[Request]:
        seen_block.set()
        await gate.wait()
        return []

    manager = Manager(client, settle=0.05)
    manager.add(Controller("story", STORY, rec))
    manager.add(Controller("engram", ENGRAM, Recorder(), watches=[Watch(STORY, slow_mapper)]))
    try:
        async with manager:
            assert await manager.wait_idle(timeout=10)
            await client.create(story("first"))
            await asyncio.wait_for(seen_block.wait(), 10)
            for i in range(40):
                await client.create(story(f"s{i}"))
            gate.set()
            wanted = {Request("default", f"s{i}") for i in range(40)}
            assert await manager.run_until(lambda: wanted <= set(rec.calls), timeout=10)
            assert manager.informer(STORY).expirations >= 1
    finally:
        client.close()


class ExpiringClient:
    """Delegates to a real store, but the first watch of each kind fails with 410."""

    def __init__(self, inner: SqliteClient) -> None:
        self.inner = inner
        self.expired: Counter[str] = Counter()

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Resource:
        return await self.inner.get(kind, name, namespace)

    async def list(self, kind: Kind, namespace: str | None = None, **kw: Any) -> list[Resource]:
        return await self.inner.list(kind, namespace, **kw)

    async def _expired(self) -> AsyncIterator[WatchEvent]:
        raise StatusError("too old resource version", reason="Expired", code=410)
        yield  # pragma: no cover

    def watch(
        self, kind: Kind, namespace: str | None = None, since: str | None = None
    ) -> AsyncIterator[WatchEvent]:
        if self.expired[kind.plural] == 0:
            self.expired[kind.plural] += 1
            return self._expired()
        return self.inner.watch(kind, namespace, since)


async def test_manager_without_bookmark_and_expired_watch(client: SqliteClient) -> None:
    """A backend without resource_version(): starts derived from lists; 410 → re-list."""
    await client.create(story("a"))
    wrapped = ExpiringClient(client)
    rec = Recorder()
    manager = Manager(wrapped, settle=0.05)  # type: ignore[arg-type]
    manager.add(Controller("story", STORY, rec, watches=[Watch(ENGRAM_TEMPLATE, names_mapper(lambda o: []))]))
    async with manager:
        assert await manager.run_until(lambda: rec.calls[Request("default", "a")] >= 2, timeout=10)
        assert wrapped.expired[STORY.plural] == 1
        assert manager.informer(ENGRAM_TEMPLATE).expirations == 1
        await client.create(story("b"))
        assert await manager.run_until(lambda: rec.calls[Request("default", "b")] >= 1, timeout=10)


async def test_graceful_stop_finishes_in_flight_reconcile(client: SqliteClient) -> None:
    await client.create(story("a"))
    started = asyncio.Event()
    finished: list[Request] = []

    async def reconcile(request: Request) -> Result:
        started.set()
        await asyncio.sleep(0.05)
        finished.append(request)
        return Result()

    manager = Manager(client)
    manager.add(Controller("story", STORY, reconcile))
    await manager.start()
    await asyncio.wait_for(started.wait(), 10)
    await manager.stop(grace=5)
    assert finished == [Request("default", "a")]
    assert not manager.started
    await client.create(story("b"))
    await asyncio.sleep(0.05)
    assert finished == [Request("default", "a")], "a stopped manager takes no new keys"


async def test_stop_cancels_reconciles_exceeding_grace(client: SqliteClient) -> None:
    await client.create(story("a"))
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def reconcile(request: Request) -> Result:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return Result()

    manager = Manager(client)
    manager.add(Controller("story", STORY, reconcile))
    await manager.start()
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.wait_for(manager.stop(grace=0.05), 10)
    assert cancelled == [True]


async def test_registration_rules(client: SqliteClient) -> None:
    manager = Manager(client)
    c = manager.add(Controller("story", STORY, Recorder()))
    assert manager.controller("story") is c
    with pytest.raises(ValueError):
        manager.add(Controller("story", STORY, Recorder()))
    with pytest.raises(RuntimeError):
        await manager.idle()
    with pytest.raises(RuntimeError):
        await manager.run_until(lambda: True)
    await manager.start()
    try:
        with pytest.raises(RuntimeError):
            manager.add(Controller("other", ENGRAM, Recorder()))
        assert await manager.run_until(lambda: True, timeout=1)

        async def never() -> bool:
            return False

        assert not await manager.run_until(never, timeout=0.1)
    finally:
        await manager.stop()
    await manager.stop()
    with pytest.raises(RuntimeError):
        await manager.start()


async def test_wait_idle_times_out_while_a_reconcile_keeps_failing(client: SqliteClient) -> None:
    await client.create(story("a"))

    async def failing(request: Request) -> Result:
        raise RuntimeError("always")

    manager = Manager(client, settle=0.02)
    manager.add(Controller("story", STORY, failing, base_delay=0.01, max_delay=0.02))
    async with manager:
        assert not await manager.wait_idle(timeout=0.3)


def test_request_and_map_objects() -> None:
    namespaced = Request.for_object({"metadata": {"name": "a", "namespace": "ns"}})
    cluster = Request.for_object({"metadata": {"name": "t"}})
    assert (str(namespaced), str(cluster)) == ("ns/a", "t")
    assert cluster.namespace is None
    mapper = map_objects(lambda o: [Request("x", o["metadata"]["name"].upper())])
    assert list(mapper(WatchEvent("ADDED", {"metadata": {"name": "a"}}))) == [Request("x", "A")]  # type: ignore[arg-type]
    assert list(enqueue_object(WatchEvent("DELETED", {"metadata": {"name": "a", "namespace": "n"}}))) == [
        Request("n", "a")
    ]


class _Runnable:
    def __init__(self, name: str, log: list[str]) -> None:
        self._name = name
        self.log = log

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        self.log.append(f"start {self._name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self._name}")


async def test_runnables_start_before_and_stop_after_the_controllers(client: SqliteClient) -> None:
    """A runnable (e.g. the engine's attempt runner) lives exactly as long as the manager runs."""
    log: list[str] = []
    manager = Manager(client, settle=0.01)
    runnable = _Runnable("work", log)
    assert manager.add_runnable(runnable) is runnable
    assert manager.runnable("work") is runnable
    with pytest.raises(ValueError, match="already registered"):
        manager.add_runnable(_Runnable("work", log))
    async with manager:
        assert log == ["start work"]
        with pytest.raises(RuntimeError, match="before the manager starts"):
            manager.add_runnable(_Runnable("late", log))
    assert log == ["start work", "stop work"]


async def test_run_until_rechecks_on_changes_and_every_settle_period(client: SqliteClient) -> None:
    manager = Manager(client, settle=0.05)
    manager.add(Controller("story", STORY, Recorder()))
    await manager.start()
    try:
        flag = [False]
        checks = [0]

        def held() -> bool:
            checks[0] += 1
            return flag[0]

        asyncio.get_running_loop().call_later(0.12, lambda: flag.__setitem__(0, True))
        # No change of queue or watch state sets the flag: the settle tick finds it.
        assert await manager.run_until(held, timeout=5)
        assert checks[0] >= 3
        # Concurrent waiters share the tick; a cancelled wait does not stop the others.
        waiter = asyncio.create_task(manager.run_until(lambda: False))
        await asyncio.sleep(0.06)
        waiter.cancel()
        ok = [False]
        asyncio.get_running_loop().call_later(0.07, lambda: ok.__setitem__(0, True))
        assert await manager.run_until(lambda: ok[0], timeout=5)
        assert await manager.wait_idle(timeout=5)
    finally:
        await manager.stop()


class _Draining(_Runnable):
    def __init__(self, name: str, log: list[str], work: float) -> None:
        super().__init__(name, log)
        self.work = work

    async def drain(self) -> None:
        await asyncio.sleep(self.work)
        self.log.append(f"drained {self._name}")


async def test_stop_with_drain_lets_runnables_finish_their_work_first(client: SqliteClient) -> None:
    log: list[str] = []
    manager = Manager(client, settle=0.01)
    manager.add_runnable(_Draining("quick", log, 0.05))
    manager.add_runnable(_Runnable("plain", log))
    await manager.start()
    await manager.stop(drain=10)
    assert log == ["start quick", "start plain", "drained quick", "stop quick", "stop plain"]


async def test_drain_is_bounded_and_skipped_without_a_grace(client: SqliteClient) -> None:
    log: list[str] = []
    slow = Manager(client, settle=0.01)
    slow.add_runnable(_Draining("slow", log, 3600))
    await slow.start()
    await asyncio.wait_for(slow.stop(drain=0.05), timeout=10)
    assert log == ["start slow", "stop slow"]
    log.clear()
    manager = Manager(client, settle=0.01)
    manager.add_runnable(_Draining("never", log, 3600))
    await manager.start()
    await manager.stop()
    assert log == ["start never", "stop never"]
