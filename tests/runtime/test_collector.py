"""Full garbage collections at quiet moments (runtime/collector.py)."""

from __future__ import annotations

import asyncio
import gc

from bobrapet.runtime.collector import NO_AUTOMATIC_FULL, QuietCollections
from bobrapet.runtime.foreground import Foreground


async def test_full_collections_wait_for_a_quiet_foreground_and_thresholds_come_back() -> None:
    before = gc.get_threshold()
    clock = [0.0]
    foreground = Foreground(busy_rate=1.0, window=0.5, now=lambda: clock[0])
    with foreground.serving():
        pass  # busy for as long as the clock stands still
    collections = QuietCollections(foreground, interval=0.01, max_interval=1000.0, now=lambda: clock[0])
    task = asyncio.create_task(collections.run())
    await asyncio.sleep(0.05)
    assert gc.get_threshold() == (before[0], before[1], NO_AUTOMATIC_FULL)
    assert collections.collections == 0, "no full collection while the foreground is busy"
    clock[0] += 10_000.0  # the burst is long over
    await asyncio.sleep(0.7)
    assert collections.collections >= 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert gc.get_threshold() == before


async def test_a_long_burst_does_not_put_collections_off_forever() -> None:
    clock = [0.0]
    foreground = Foreground(busy_rate=1.0, window=0.5, now=lambda: clock[0])
    with foreground.serving():
        pass
    collections = QuietCollections(foreground, interval=0.01, max_interval=5.0, now=lambda: clock[0])
    task = asyncio.create_task(collections.run())
    await asyncio.sleep(0.05)
    assert collections.collections == 0
    clock[0] += 5.0
    with foreground.serving():
        pass  # still busy, but max_interval has passed
    assert foreground.busy
    await asyncio.sleep(0.7)
    assert collections.collections >= 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
