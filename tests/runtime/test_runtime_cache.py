"""ObjectCache (indexes, projections, version guard), cache-backed mappers, manager caches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from pathlib import Path
from typing import Any

import pytest

from bobrapet.api.kinds import ENGRAM, ENGRAM_TEMPLATE, STEP_RUN, STORY
from bobrapet.runtime.cache import ObjectCache
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.watches import Watch, cached_reverse_mapper, index_mapper, tracking_mapper
from bobrapet.store.client import Resource, WatchEvent
from bobrapet.store.sqlite import SqliteClient


def obj(name: str, rv: int, ns: str = "ns", refs: list[str] | None = None, **extra: Any) -> Resource:
    return {
        "metadata": {"name": name, "namespace": ns, "resourceVersion": str(rv)},
        "spec": {"refs": refs or [], **extra},
    }


def by_ref(o: Resource) -> list[Hashable]:
    return list(o["spec"]["refs"])


def names(objects: list[Resource]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objects)


def test_replace_get_list_and_namespaces() -> None:
    cache = ObjectCache(STORY)
    assert not cache.synced
    cache.replace([obj("a", 1), obj("b", 2, ns="other")])
    assert cache.synced
    assert len(cache) == 2
    assert cache.get("a", "ns") is not None
    assert cache.get("a", "other") is None
    assert names(cache.list("ns")) == ["a"]
    assert names(cache.list()) == ["a", "b"]


def test_cluster_scoped_ignores_namespace() -> None:
    cache = ObjectCache(ENGRAM_TEMPLATE)
    cache.replace([{"metadata": {"name": "t", "resourceVersion": "1"}}])
    assert cache.get("t") is not None
    assert cache.get("t", "whatever") is not None
    assert names(cache.list("whatever")) == ["t"]


def test_events_never_move_an_object_backwards() -> None:
    cache = ObjectCache(STORY)
    cache.replace([obj("a", 5, refs=["new"])])
    cache.apply(WatchEvent("MODIFIED", obj("a", 3, refs=["old"])))
    assert cache.get("a", "ns")["spec"]["refs"] == ["new"]  # type: ignore[index]
    cache.apply(WatchEvent("DELETED", obj("a", 4)))
    assert cache.get("a", "ns") is not None, "a delete older than the cached copy is stale"
    cache.apply(WatchEvent("MODIFIED", obj("a", 6, refs=["newer"])))
    assert cache.get("a", "ns")["spec"]["refs"] == ["newer"]  # type: ignore[index]
    cache.apply(WatchEvent("DELETED", obj("a", 7)))
    assert cache.get("a", "ns") is None
    assert cache.list() == []


def test_indexes_follow_every_change() -> None:
    cache = ObjectCache(STORY)
    cache.replace([obj("a", 1, refs=["x", "y"]), obj("b", 2, refs=["y"])])
    cache.add_index("refs", by_ref)
    cache.add_index("refs", lambda o: ["ignored"])  # idempotent per name
    assert names(cache.by_index("refs", "y")) == ["a", "b"]
    cache.apply(WatchEvent("MODIFIED", obj("a", 3, refs=["z"])))
    assert names(cache.by_index("refs", "y")) == ["b"]
    assert names(cache.by_index("refs", "z")) == ["a"]
    assert cache.by_index("refs", "x") == []
    cache.apply(WatchEvent("ADDED", obj("c", 4, refs=["z"])))
    cache.apply(WatchEvent("DELETED", obj("b", 5, refs=["y"])))
    assert cache.by_index("refs", "y") == []
    assert names(cache.by_index("refs", "z")) == ["a", "c"]
    cache.replace([obj("d", 9, refs=["y"])])
    assert cache.by_index("refs", "z") == []
    assert names(cache.by_index("refs", "y")) == ["d"]


def test_projection_keeps_identity_and_the_projected_fields_only() -> None:
    cache = ObjectCache(STEP_RUN, transform=lambda o: {"spec": {"keep": o["spec"]["keep"]}})
    cache.replace([obj("a", 1, keep=1, big="x" * 1000)])
    got = cache.get("a", "ns")
    assert got == {
        "spec": {"keep": 1},
        "metadata": {"name": "a", "namespace": "ns", "resourceVersion": "1"},
    }
    cache.apply(WatchEvent("MODIFIED", obj("a", 2, keep=2, big="y")))
    assert cache.get("a", "ns")["spec"] == {"keep": 2}  # type: ignore[index]


def test_projection_indexes_are_recomputed_only_when_the_projection_changes() -> None:
    calls: list[str] = []

    def keep(o: Resource) -> list[Hashable]:
        calls.append(o["metadata"]["resourceVersion"])
        return [o["spec"]["keep"]]

    cache = ObjectCache(STEP_RUN, transform=lambda o: {"spec": {"keep": o["spec"]["keep"]}})
    cache.add_index("keep", keep)
    cache.apply(WatchEvent("ADDED", obj("a", 1, keep=1, big="x")))
    cache.apply(WatchEvent("MODIFIED", obj("a", 2, keep=1, big="y")))  # projection unchanged
    assert cache.get("a", "ns")["metadata"]["resourceVersion"] == "2"  # type: ignore[index]
    assert calls == ["1"]
    assert names(cache.by_index("keep", 1)) == ["a"]
    cache.apply(WatchEvent("MODIFIED", obj("a", 3, keep=2)))
    assert calls == ["1", "3"]
    assert cache.by_index("keep", 1) == [] and names(cache.by_index("keep", 2)) == ["a"]
    cache.apply(WatchEvent("DELETED", obj("a", 4, keep=2)))
    assert cache.by_index("keep", 2) == [] and cache.get("a", "ns") is None


async def test_cache_mappers() -> None:
    cache = ObjectCache(STORY)
    cache.replace([obj("a", 1, refs=["e1"]), obj("b", 2, refs=["e2"]), obj("c", 3, ns="x", refs=["e1"])])
    cache.add_index("refs", by_ref)
    event = WatchEvent("MODIFIED", {"metadata": {"name": "e1", "namespace": "ns"}})
    assert sorted(index_mapper(cache, "refs", lambda o: [o["metadata"]["name"]])(event)) == [  # type: ignore[arg-type]
        Request("ns", "a"),
        Request("x", "c"),
    ]
    every_in_ns = cached_reverse_mapper(cache, lambda p, o: True)
    assert sorted(every_in_ns(event)) == [Request("ns", "a"), Request("ns", "b")]  # type: ignore[arg-type]
    everywhere = cached_reverse_mapper(cache, lambda p, o: True, same_namespace=False)
    assert len(list(everywhere(event))) == 3  # type: ignore[arg-type]


async def test_tracking_mapper_adds_previous_targets_and_falls_back_once() -> None:
    fallbacks: list[str] = []

    def fallback(event: WatchEvent) -> list[Request]:
        fallbacks.append(event.object["metadata"]["name"])
        return [Request("ns", "everything")]

    mapper = tracking_mapper(lambda o: [Request("ns", r) for r in o["spec"]["refs"]], fallback=fallback)

    async def run(kind: str, o: Resource) -> list[Request]:
        result = mapper(WatchEvent(kind, o))  # type: ignore[arg-type]
        return sorted(await result)  # type: ignore[misc]

    assert await run("ADDED", obj("s", 1, refs=["a"])) == [Request("ns", "a")]
    assert await run("MODIFIED", obj("s", 2, refs=["b"])) == [Request("ns", "a"), Request("ns", "b")]
    assert await run("MODIFIED", obj("s", 3, refs=["b"])) == [Request("ns", "b")]
    assert await run("DELETED", obj("s", 4, refs=["b"])) == [Request("ns", "b")]
    assert fallbacks == []
    assert await run("MODIFIED", obj("t", 5, refs=["c"])) == [Request("ns", "c"), Request("ns", "everything")]
    assert fallbacks == ["t"]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[SqliteClient]:
    store = SqliteClient(tmp_path / "state.db")
    yield store
    store.close()


def story(name: str, engram_name: str) -> Resource:
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Story",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"steps": [{"name": "s", "ref": {"name": engram_name}}]},
    }


async def test_manager_caches_are_filled_and_applied_before_mapping(client: SqliteClient) -> None:
    await client.create(story("s1", "e"))
    manager = Manager(client, settle=0.05)
    stories = manager.cache(STORY)
    stories.add_index("engram", lambda s: [step["ref"]["name"] for step in s["spec"]["steps"]])
    projection = manager.projection(STORY, "names-only", lambda s: {})
    assert manager.cache(STORY) is stories
    seen_in_cache: list[bool] = []

    async def reconcile_engram(request: Request) -> Result:
        return Result()

    def mapper(event: WatchEvent) -> list[Request]:
        # The cache already holds the event's object when controllers map it.
        cached = stories.get(event.object["metadata"]["name"], "default")
        seen_in_cache.append(cached is None if event.type == "DELETED" else cached == event.object)
        return []

    manager.add(Controller("engram", ENGRAM, reconcile_engram, watches=[Watch(STORY, mapper)]))
    with pytest.raises(ValueError):
        manager.projection(STORY, "", lambda s: s)
    async with manager:
        assert stories.synced and projection.synced
        assert names(stories.by_index("engram", "e")) == ["s1"]
        await client.create(story("s2", "e"))
        assert await manager.run_until(lambda: len(stories.by_index("engram", "e")) == 2, timeout=10)
        assert projection.get("s2", "default") is not None
        with pytest.raises(RuntimeError):
            manager.cache(ENGRAM_TEMPLATE)
        await client.delete(STORY, "s1", "default")
        assert await manager.run_until(lambda: names(stories.by_index("engram", "e")) == ["s2"], timeout=10)
        assert await manager.wait_idle(timeout=10)
    assert seen_in_cache and all(seen_in_cache)


async def test_cache_is_refilled_after_lost_events(tmp_path: Path) -> None:
    client = SqliteClient(tmp_path / "state.db", event_retention=4, prune_every=2)
    manager = Manager(client, settle=0.05)
    stories = manager.cache(STORY)
    gate = asyncio.Event()
    blocked = asyncio.Event()

    async def slow(event: WatchEvent) -> list[Request]:
        blocked.set()
        await gate.wait()
        return []

    async def noop(request: Request) -> Result:
        return Result()

    manager.add(Controller("engram", ENGRAM, noop, watches=[Watch(STORY, slow)]))
    try:
        async with manager:
            await client.create(story("first", "e"))
            await asyncio.wait_for(blocked.wait(), 10)
            for i in range(30):
                await client.create(story(f"s{i}", "e"))
            for i in range(0, 30, 2):
                await client.delete(STORY, f"s{i}", "default")
            gate.set()
            expected = {"first", *(f"s{i}" for i in range(1, 30, 2))}
            assert await manager.run_until(lambda: set(names(stories.list())) == expected, timeout=10)
            assert manager.informer(STORY).expirations >= 1
    finally:
        client.close()
