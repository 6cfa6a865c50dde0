"""Full garbage collections of a long-lived process, at quiet moments.

Python collects its oldest generation whenever the heap has grown by a quarter since the last
full collection. A service whose caches grow (thousands of runs, each a tree of dicts) then
walks its whole heap again and again while it grows, each walk a pause of the event loop
(300 ms at 500,000 objects on the reference machine), and such a walk during a burst of
deliveries is what its slowest answers wait for. :class:`QuietCollections` takes the oldest
generation over: automatic collections keep the two young generations, and a full collection
runs every ``interval`` seconds when the foreground (:mod:`.foreground`) is not busy, or after
``max_interval`` seconds whatever the load, so cyclic garbage is still freed.

Invariants: while :meth:`QuietCollections.run` runs, the automatic threshold of the oldest
generation is out of reach; when it ends (cancelled included) the thresholds it found are
restored; a full collection never waits longer than ``max_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

from bobrapet.runtime.foreground import Foreground

log = logging.getLogger("bobrapet.runtime.collector")

#: Seconds between full collections when the foreground is quiet / whatever the load.
INTERVAL = 30.0
MAX_INTERVAL = 300.0
#: How often a collection put off by a busy foreground looks again.
RETRY = 0.5
#: Young collections between two automatic full ones: never, in practice.
NO_AUTOMATIC_FULL = 1_000_000


class QuietCollections:
    """See the module docstring."""

    def __init__(
        self,
        foreground: Foreground,
        *,
        interval: float = INTERVAL,
        max_interval: float = MAX_INTERVAL,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.foreground = foreground
        self.interval = interval
        self.max_interval = max_interval
        self._now = now
        #: Full collections made so far (for tests and logs).
        self.collections = 0

    async def run(self) -> None:
        """Take over full collections until cancelled."""
        thresholds = gc.get_threshold()
        gc.set_threshold(thresholds[0], thresholds[1], NO_AUTOMATIC_FULL)
        try:
            last = self._now()
            while True:
                await asyncio.sleep(self.interval)
                while self.foreground.busy and self._now() - last < self.max_interval:
                    await asyncio.sleep(RETRY)
                started = time.perf_counter()
                found = gc.collect()
                last = self._now()
                self.collections += 1
                log.debug(
                    "full collection: %d objects freed in %.1f ms",
                    found,
                    1000 * (time.perf_counter() - started),
                )
        finally:
            gc.set_threshold(*thresholds)
