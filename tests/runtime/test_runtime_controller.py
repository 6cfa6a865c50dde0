"""Controller workers: outcome handling, back-off, exclusivity, graceful stop."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest

from bobrapet.api.errors import Conflict
from bobrapet.api.kinds import ENGRAM, STORY
from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.watches import Watch, names_mapper
from bobrapet.store.client import WatchEvent

A = Request("ns", "a")


async def until(predicate: Callable[[], bool], limit: int = 2000) -> None:
    """Yield to the loop until ``predicate()`` holds (then poll in real time, 5 s at most)."""
    for _ in range(limit):
        if predicate():
            return
        await asyncio.sleep(0)
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_error_requeues_with_growing_backoff_then_forgets_on_success() -> None:
    clock = FakeClock()
    calls: list[float] = []

    async def reconcile(request: Request) -> Result:
        calls.append(clock.monotonic())
        if len(calls) <= 3:
            raise RuntimeError("boom")
        return Result()

    c = Controller("t", STORY, reconcile, clock=clock, base_delay=1.0, max_delay=100.0)
    c.start()
    try:
        c.enqueue(A)
        await until(lambda: len(calls) == 1 and c.in_flight == 0)
        assert c.queue.num_requeues(A) == 1
        assert not c.is_idle(), "an error back-off is pending work"
        clock.advance(1)  # 1st back-off: 1s
        await until(lambda: len(calls) == 2 and c.in_flight == 0)
        clock.advance(1.5)
        await asyncio.sleep(0)
        assert len(calls) == 2, "2nd back-off is 2s"
        clock.advance(0.5)
        await until(lambda: len(calls) == 3 and c.in_flight == 0)
        clock.advance(4)  # 3rd back-off: 4s
        await until(lambda: len(calls) == 4 and c.is_idle())
        assert calls == [0.0, 1.0, 3.0, 7.0]
        assert c.queue.num_requeues(A) == 0, "success forgets the back-off"
        assert c.errors == 3
    finally:
        await c.stop(grace=1)


async def test_requeue_after_and_requeue() -> None:
    clock = FakeClock()
    seen: Counter[str] = Counter()

    async def reconcile(request: Request) -> Result:
        seen[request.name] += 1
        if request.name == "later" and seen["later"] == 1:
            return Result(requeue_after=30)
        if request.name == "again" and seen["again"] == 1:
            return Result(requeue=True)
        return Result()

    c = Controller("t", STORY, reconcile, clock=clock, base_delay=2.0)
    c.start()
    try:
        c.enqueue(Request("ns", "later"))
        c.enqueue(Request("ns", "again"))
        await until(lambda: sum(seen.values()) == 2 and c.in_flight == 0)
        assert c.queue.waiting.keys() == {Request("ns", "later"), Request("ns", "again")}
        assert not c.is_idle(), "requeue=True goes through the rate limiter"
        clock.advance(2)
        await until(lambda: seen["again"] == 2 and c.is_idle())
        assert seen["later"] == 1, "a planned requeue does not keep the controller busy"
        clock.advance(28)
        await until(lambda: seen["later"] == 2 and c.is_idle())
    finally:
        await c.stop(grace=1)


async def test_a_reconcile_supersedes_the_pending_timers_of_its_key() -> None:
    """Level-triggered: a pass that starts sees what an earlier planned requeue would have
    seen, so that timer is dropped; the pass asks again for what it still needs."""
    clock = FakeClock()
    seen: Counter[str] = Counter()

    async def reconcile(request: Request) -> Result:
        seen[request.name] += 1
        return Result(requeue_after=30) if seen[request.name] == 1 else Result()

    c = Controller("t", STORY, reconcile, clock=clock)
    c.start()
    try:
        c.enqueue(A)
        await until(lambda: seen["a"] == 1 and c.in_flight == 0)
        assert A in c.queue.waiting
        c.enqueue(A)  # an event: reconciled now; its result plans no requeue
        await until(lambda: seen["a"] == 2 and c.in_flight == 0)
        assert A not in c.queue.waiting
        clock.advance(60)
        await until(c.is_idle)
        assert seen["a"] == 2, "the superseded timer must not reconcile again"
    finally:
        await c.stop(grace=1)


async def test_none_result_means_done() -> None:
    done = asyncio.Event()

    async def reconcile(request: Request) -> None:
        done.set()

    c = Controller("t", STORY, reconcile)
    c.start()
    c.enqueue(A)
    await asyncio.wait_for(done.wait(), 5)
    await until(c.is_idle)
    await c.stop()


async def test_conflict_is_retried() -> None:
    clock = FakeClock()
    attempts: list[int] = []

    async def reconcile(request: Request) -> Result:
        attempts.append(1)
        if len(attempts) == 1:
            raise Conflict("Story", "a", "the object has been modified")
        return Result()

    c = Controller("t", STORY, reconcile, clock=clock)
    c.start()
    c.enqueue(A)
    await until(lambda: len(attempts) == 1 and c.in_flight == 0)
    clock.advance(0.005)
    await until(lambda: len(attempts) == 2 and c.is_idle())
    await c.stop()


async def test_one_key_is_never_reconciled_twice_at_once() -> None:
    active: set[Request] = set()
    overlaps: list[Request] = []
    count = Counter[Request]()

    async def reconcile(request: Request) -> Result:
        if request in active:
            overlaps.append(request)
        active.add(request)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        active.discard(request)
        count[request] += 1
        return Result()

    c = Controller("t", STORY, reconcile, workers=8)
    c.start()
    keys = [Request("ns", f"k{i % 3}") for i in range(300)]
    for key in keys:
        c.enqueue(key)
        await asyncio.sleep(0)
    await until(c.is_idle, limit=20000)
    await c.stop()
    assert overlaps == []
    assert set(count) == set(keys)


async def test_reconcile_timeout_counts_as_failure() -> None:
    clock = FakeClock()
    release = asyncio.Event()

    async def reconcile(request: Request) -> Result:
        await release.wait()
        return Result()

    c = Controller("t", STORY, reconcile, clock=clock, reconcile_timeout=0.01)
    c.start()
    c.enqueue(A)
    await until(lambda: c.errors == 1 and c.in_flight == 0)
    assert A in c.queue.waiting
    release.set()
    await c.stop()


async def test_graceful_stop_lets_short_reconciles_finish_and_cancels_long_ones() -> None:
    finished: list[str] = []
    cancelled: list[str] = []
    started = asyncio.Event()

    async def reconcile(request: Request) -> Result:
        try:
            if request.name == "short":
                started.set()
                await asyncio.sleep(0.05)
            else:
                await asyncio.sleep(3600)
            finished.append(request.name)
        except asyncio.CancelledError:
            cancelled.append(request.name)
            raise
        return Result()

    c = Controller("t", STORY, reconcile, workers=2)
    c.start()
    c.enqueue(Request("ns", "short"))
    c.enqueue(Request("ns", "long"))
    await asyncio.wait_for(started.wait(), 5)
    await until(lambda: c.in_flight == 2)
    c.enqueue(Request("ns", "queued-later"))
    await asyncio.wait_for(c.stop(grace=1.0), 10)
    assert finished == ["short"]
    assert cancelled == ["long"]
    assert c.in_flight == 0
    assert not c.running


async def test_stop_before_start_and_double_start_are_harmless() -> None:
    async def reconcile(request: Request) -> Result:
        return Result()

    c = Controller("t", STORY, reconcile, workers=2)
    await c.stop()
    c = Controller("t", STORY, reconcile, workers=2)
    c.start()
    c.start()
    await c.stop()


def test_invalid_worker_count() -> None:
    async def reconcile(request: Request) -> Result:
        return Result()

    with pytest.raises(ValueError):
        Controller("t", STORY, reconcile, workers=0)


async def test_dispatch_applies_predicate_then_sync_or_async_mapper() -> None:
    async def reconcile(request: Request) -> Result:
        return Result()

    async def async_mapper(event: WatchEvent) -> list[Request]:
        return [Request("ns", "from-async")]

    sync_watch = Watch(
        ENGRAM,
        names_mapper(lambda obj: [obj["spec"]["target"]]),
        predicate=lambda e: e.type != "DELETED",
    )
    c = Controller("t", STORY, reconcile, watches=[sync_watch, Watch(ENGRAM, async_mapper)])
    event = WatchEvent("ADDED", {"metadata": {"namespace": "ns", "name": "e"}, "spec": {"target": "s"}})
    await c.dispatch(c.watches[0], event)
    await c.dispatch(c.watches[1], event)
    await c.dispatch(c.watches[0], WatchEvent("DELETED", event.object))
    got = []
    while len(c.queue):
        got.append(await c.queue.get())
    assert got == [Request("ns", "s"), Request("ns", "from-async")]
    assert [w.kind for w in c.all_watches()] == [STORY, ENGRAM, ENGRAM]


async def test_watch_debounce_coalesces_a_burst_into_one_reconcile() -> None:
    seen: list[Request] = []

    async def reconcile(request: Request) -> None:
        seen.append(request)

    clock = FakeClock()
    watch = Watch(STORY, lambda event: [Request("default", "parent")], debounce=lambda r: 0.1)
    controller = Controller("debounced", STORY, reconcile, watches=[watch], clock=clock)
    controller.start()
    try:
        for i in range(10):
            child = {"metadata": {"name": f"c{i}", "namespace": "default"}}
            await controller.dispatch(watch, WatchEvent("MODIFIED", child))
        await asyncio.sleep(0)
        assert seen == []
        clock.advance(0.1)
        for _ in range(20):
            await asyncio.sleep(0)
        assert seen == [Request("default", "parent")]
    finally:
        await controller.stop()
