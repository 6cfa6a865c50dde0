"""The Impulse status fields the supervisor owns, written in batches.

Owned here (single writer: the supervisor of ``bobrapet serve``): ``replicas`` and
``readyReplicas`` (1 while the runtime runs), the ``Listening`` condition (why it does or does
not run), ``throttledTriggers``/``lastThrottled`` (deliveries the throttle made wait,
reference §5.4) and ``refusedDeliveries``/``lastRefused`` (deliveries that could never become
a trigger). The Impulse controller derives ``phase`` and ``Ready`` from ``readyReplicas`` and
``Listening``, and owns the run counters and ``lastTrigger``/``lastSuccess`` (from the
StoryRuns); every other field is carried over.

Invariants: counters are cumulative in the store — each write adds what was counted since
the last successful write, exactly once; a runtime change (started, failed) is written at
once, counters at most every ``interval`` seconds per Impulse (so 1,000 deliveries a second
cost one status write a second); writes re-read the Impulse and retry on conflict; a write
that fails keeps its counts for the next flush; timestamps have second precision (as
``metav1.Time``) so they compare as text; an Impulse that is gone is forgotten.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bobrapet.api import conditions
from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import IMPULSE
from bobrapet.impulses.pacing import unless_stopped
from bobrapet.runtime.clock import Clock
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.store.client import Client

log = logging.getLogger("bobrapet.impulses.status")

FLUSH_INTERVAL = 1.0
Key = tuple[str, str]


@dataclass(frozen=True)
class RuntimeReport:
    """Whether an Impulse's runtime runs, and why (the ``Listening`` condition)."""

    listening: bool
    reason: str
    message: str
    generation: int | None = None


@dataclass
class _Pending:
    runtime: RuntimeReport | None = None
    throttled: int = 0
    throttled_at: str | None = None
    refused: int = 0
    refused_at: str | None = None

    def merge(self, later: _Pending) -> None:
        """Fold ``later`` (counted after this one) into this one."""
        self.runtime = later.runtime or self.runtime
        self.throttled += later.throttled
        self.throttled_at = _latest(self.throttled_at, later.throttled_at)
        self.refused += later.refused
        self.refused_at = _latest(self.refused_at, later.refused_at)


def _latest(a: Any, b: str | None) -> Any:
    if b is None:
        return a
    return b if not isinstance(a, str) or b > a else a


def apply(status: dict[str, Any], pending: _Pending, now: datetime) -> None:
    """``status`` with ``pending`` written into the fields this module owns."""
    report = pending.runtime
    if report is not None:
        status["replicas"] = 1
        status["readyReplicas"] = 1 if report.listening else 0
        conditions.set_condition(
            status.setdefault("conditions", []), conditions.LISTENING, report.listening,
            report.reason, report.message, observed_generation=report.generation, now=now,
        )  # fmt: skip
    for field, value in (
        ("lastThrottled", pending.throttled_at),
        ("lastRefused", pending.refused_at),
    ):
        if value is not None:
            status[field] = _latest(status.get(field), value)
    for field, count in (("throttledTriggers", pending.throttled), ("refusedDeliveries", pending.refused)):
        if count:
            status[field] = int(status.get(field) or 0) + count


class StatusBook:
    """Pending status changes of every supervised Impulse, flushed by :meth:`run`."""

    def __init__(self, client: Client, clock: Clock, interval: float = FLUSH_INTERVAL) -> None:
        self.client = client
        self.clock = clock
        self.interval = interval
        self._pending: dict[Key, _Pending] = {}
        self._urgent = asyncio.Event()
        self._closing = False

    def _entry(self, key: Key) -> _Pending:
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = _Pending()
        return entry

    def _stamp(self) -> str:
        return conditions.format_time(self.clock.now())

    def report(self, key: Key, report: RuntimeReport) -> None:
        self._entry(key).runtime = report
        self._urgent.set()

    def throttled(self, key: Key) -> None:
        entry = self._entry(key)
        entry.throttled += 1
        entry.throttled_at = self._stamp()

    def refused(self, key: Key) -> None:
        entry = self._entry(key)
        entry.refused += 1
        entry.refused_at = self._stamp()

    def forget(self, key: Key) -> None:
        self._pending.pop(key, None)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Write every pending change (failures stay pending)."""
        batch, self._pending = self._pending, {}
        self._urgent.clear()
        for key, pending in batch.items():
            try:
                await self._write(key, pending)
            except NotFound:
                continue
            except Exception as exc:  # the store is unavailable: keep the counts
                log.warning("impulse %s/%s: status not written (%s); retrying", key[0], key[1], exc)
                later = self._pending.get(key)
                if later is not None:
                    pending.merge(later)
                self._pending[key] = pending

    async def _write(self, key: Key, pending: _Pending) -> None:
        namespace, name = key

        async def attempt() -> None:
            impulse = await self.client.get(IMPULSE, name, namespace)
            current = impulse.get("status") or {}
            status = copy.deepcopy(current)
            apply(status, pending, self.clock.now())
            if status != current:
                await self.client.update_status({**impulse, "status": status})

        await retry_on_conflict(attempt, attempts=16)

    async def run(self) -> None:
        """Flush every ``interval`` seconds (the clock's), and at once after a runtime report,
        until :meth:`close`; then flush what is left."""
        while not self._closing:
            await unless_stopped(self.clock.sleep(self.interval), self._urgent)
            await self.flush()

    def close(self) -> None:
        """Make :meth:`run` flush once more and return."""
        self._closing = True
        self._urgent.set()
