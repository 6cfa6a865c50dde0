"""Test doubles and tools for impulse runtimes: a recording ``deliver``, the supervisor's state
and run control, a runtime runner, and a loopback TCP proxy that can cut a broker away."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from bobrapet.impulses.delivery import Delivery, ImpulseRuntime

WAIT = 30.0
"""Upper bound of any wait on a real broker (a safety net, never a timing assertion)."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Recorder:
    """A ``deliver`` that records deliveries; the first ``fail`` calls raise, ``gate`` holds calls."""

    def __init__(self, fail: int = 0) -> None:
        self.deliveries: list[Delivery] = []
        self.attempts: list[Delivery] = []
        self.events: list[str] = []
        self.fail = fail
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self._changed = asyncio.Condition()

    async def __call__(self, delivery: Delivery, /) -> None:
        self.attempts.append(delivery)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail > 0:
            self.fail -= 1
            async with self._changed:
                self._changed.notify_all()
            raise RuntimeError("store unavailable")
        self.deliveries.append(delivery)
        self.events.append(f"deliver {delivery.key}")
        async with self._changed:
            self._changed.notify_all()

    @property
    def keys(self) -> list[str | None]:
        return [d.key for d in self.deliveries]

    async def wait_for(self, count: int, timeout: float = WAIT) -> list[Delivery]:
        """Wait (on real time) until ``count`` deliveries succeeded."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.deliveries) >= count)
        return self.deliveries


class MemoryState:
    """The supervisor's per-Impulse JSON state, in memory."""

    def __init__(self, value: Mapping[str, Any] | None = None) -> None:
        self.value = dict(value) if value is not None else None
        self.saves: list[dict[str, Any]] = []

    async def load(self) -> Mapping[str, Any] | None:
        return self.value

    async def save(self, state: Mapping[str, Any]) -> None:
        self.value = dict(state)
        self.saves.append(dict(state))


class FakeRuns:
    """The supervisor's view of this Impulse's runs; cancellations go to ``events``."""

    def __init__(self, events: list[str], active: Sequence[str] = ()) -> None:
        self.active = list(active)
        self.events = events
        self.cancelled: list[str] = []

    async def active_runs(self) -> Sequence[str]:
        return list(self.active)

    async def cancel(self, run: str) -> None:
        self.cancelled.append(run)
        self.events.append(f"cancel {run}")


@contextlib.asynccontextmanager
async def running(runtime: ImpulseRuntime, deliver: Any) -> AsyncIterator[asyncio.Event]:
    """Run ``runtime`` in a task; on exit set ``stop`` and require ``run`` to return."""
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(deliver, stop))
    try:
        yield stop
    finally:
        stop.set()
        async with asyncio.timeout(WAIT):
            await task


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a broker; ``cut()`` drops every connection and refuses new ones
    until ``restore()`` (a broker going away and coming back, without touching the shared broker)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
