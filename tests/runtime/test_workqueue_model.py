"""WorkQueue against a reference model, on random operation sequences (hypothesis)."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.queue import WorkQueue

KEYS = ["a", "b", "c", "d"]


@dataclass
class Model:
    """client-go workqueue semantics, written as plainly as possible."""

    now: float = 0.0
    queue: list[str] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)
    processing: set[str] = field(default_factory=set)
    waiting: dict[str, tuple[float, int]] = field(default_factory=dict)
    seq: itertools.count[int] = field(default_factory=itertools.count)

    def add(self, key: str) -> None:
        if key in self.dirty:
            return
        self.dirty.add(key)
        if key not in self.processing:
            self.queue.append(key)

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        deadline = self.now + delay
        current = self.waiting.get(key)
        if current is not None and current[0] <= deadline:
            return
        self.waiting[key] = (deadline, next(self.seq))

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        for key, _ in sorted(
            ((k, v) for k, v in self.waiting.items() if v[0] <= target), key=lambda kv: kv[1]
        ):
            del self.waiting[key]
            self.add(key)
        self.now = target

    def get(self) -> str:
        key = self.queue.pop(0)
        self.processing.add(key)
        self.dirty.discard(key)
        return key

    def done(self, key: str) -> None:
        self.processing.discard(key)
        if key in self.dirty:
            self.queue.append(key)


key = st.sampled_from(KEYS)
delay = st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, 3.5])
operation = st.one_of(
    st.tuples(st.just("add"), key),
    st.tuples(st.just("add_after"), key, delay),
    st.tuples(st.just("advance"), st.sampled_from([0.0, 0.5, 1.0, 4.0])),
    st.tuples(st.just("get")),
    st.tuples(st.just("done"), st.integers(min_value=0, max_value=3)),
)


async def run(ops: list[tuple[object, ...]]) -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    model = Model()
    # The model's sequence numbers must follow the clock's timer creation order: the queue
    # creates a new timer exactly when the model records a new waiting entry.
    for op in ops:
        name = op[0]
        if name == "add":
            q.add(str(op[1]))
            model.add(str(op[1]))
        elif name == "add_after":
            q.add_after(str(op[1]), float(op[2]))  # type: ignore[arg-type]
            model.add_after(str(op[1]), float(op[2]))  # type: ignore[arg-type]
        elif name == "advance":
            clock.advance(float(op[1]))  # type: ignore[arg-type]
            model.advance(float(op[1]))  # type: ignore[arg-type]
        elif name == "get":
            if not model.queue:
                continue
            assert await asyncio.wait_for(q.get(), 1) == model.get()
        elif name == "done":
            if not model.processing:
                continue
            chosen = sorted(model.processing)[int(op[1]) % len(model.processing)]  # type: ignore[call-overload]
            q.done(chosen)
            model.done(chosen)
        assert len(q) == len(model.queue)
        assert q.processing == model.processing
        assert q.waiting == {k: v[0] for k, v in model.waiting.items()}
    # Drain: every queued key comes out in model order.
    while model.queue:
        assert await asyncio.wait_for(q.get(), 1) == model.get()


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=60))
def test_queue_matches_model(ops: list[tuple[object, ...]]) -> None:
    asyncio.run(run(ops))
