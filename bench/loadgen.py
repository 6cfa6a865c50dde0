"""A small concurrent HTTP load generator (asyncio, HTTP/1.1 keep-alive) and its statistics.

    result = asyncio.run(run_load(Target("127.0.0.1", 8080, "/path"), body_of, total=2000))
    summary = result.summary()  # accepted/s, latency percentiles...

Each of ``concurrency`` workers keeps one connection open and sends requests one after the
other; with ``rate`` the requests follow an open-loop schedule (request ``i`` is due at
``start + i / rate``; a late request is sent at once, and its latency counts from when it was
due, so a server that falls behind shows it instead of slowing the generator down). The body of
request ``i`` is ``body_of(i)``: the target and the body builder are parameters, so one tool
drives the resource API (StoryTriggers) and a webhook endpoint alike.

A hand-written client rather than an HTTP library: on a 2-core machine the generator shares the
CPU with the server it measures, and a minimal client costs a few tens of microseconds per
request. It speaks only what the measured endpoints need: ``POST``/``GET`` with a JSON body,
responses with ``Content-Length`` or ``chunked`` bodies, keep-alive (a closed connection is
opened again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: ``body_of(i)`` for request ``i`` (``None``: no body).
BodyOf = Callable[[int], bytes | None]


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    method: str = "POST"
    token: str | None = None
    #: Statuses that count as accepted.
    accepted: tuple[int, ...] = (200, 201, 202)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


@dataclass
class Sample:
    """One request: when it was due and sent (monotonic seconds), how long it took, its status."""

    index: int
    due: float
    latency: float
    status: int
    #: Wall-clock time (``time.time()``) when the reply arrived.
    done_at: float
    error: str | None = None
    #: The reply's body (kept only when asked: ``run_load(keep_bodies=True)``).
    body: bytes | None = None


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0
    concurrency: int = 0

    def accepted(self, target: Target) -> list[Sample]:
        return [s for s in self.samples if s.status in target.accepted]

    def summary(self, target: Target) -> dict[str, Any]:
        """Requests, accepted, errors by status, accepted/s and latency percentiles (ms)."""
        ok = self.accepted(target)
        statuses: dict[str, int] = {}
        for sample in self.samples:
            if sample.status not in target.accepted:
                key = str(sample.status) if sample.status else (sample.error or "error")
                statuses[key] = statuses.get(key, 0) + 1
        return {
            "requests": len(self.samples),
            "accepted": len(ok),
            "failed": statuses,
            "concurrency": self.concurrency,
            "wall_s": self.wall,
            "accepted_per_s": len(ok) / self.wall if self.wall > 0 else None,
            "latency_ms": latency_stats([s.latency * 1000 for s in ok]),
        }


# -- statistics ----------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0 < q <= 100) by the nearest-rank method (``None`` when empty):
    the smallest value such that at least ``q`` % of the values are at most it."""
    if not values:
        return None
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} is outside (0, 100]")
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def latency_stats(values: Sequence[float]) -> dict[str, float | None]:
    """Count, mean, p50, p90, p99 and max of ``values`` (``None`` figures when empty)."""
    return {
        "count": float(len(values)),
        "mean": sum(values) / len(values) if values else None,
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


# -- the client ----------------------------------------------------------------------------------
class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, body: bytes | None, *, path: str | None = None, method: str | None = None
    ) -> Reply:
        for attempt in range(2):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.target.host, self.target.port)
            try:
                return await self._exchange(body, path or self.target.path, method or self.target.method)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, body: bytes | None, path: str, method: str) -> Reply:
        assert self._reader is not None and self._writer is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.target.host}:{self.target.port}"]
        if self.target.token:
            head.append(f"Authorization: Bearer {self.target.token}")
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        await self._writer.drain()
        status_line = await self._reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while True:
            line = await self._reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.lower() == "close":
                close = True
        data = await self._body(length, chunked)
        if close:
            await self.close()
        return Reply(status, data)

    async def _body(self, length: int | None, chunked: bool) -> bytes:
        assert self._reader is not None
        if chunked:
            parts = []
            while True:
                size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self._reader.readuntil(b"\r\n")
                    return b"".join(parts)
                parts.append(await self._reader.readexactly(size))
                await self._reader.readexactly(2)
        return await self._reader.readexactly(length) if length else b""

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def get_json(target: Target, path: str) -> Any:
    """``GET path`` on ``target``'s server, its JSON body (raises on a non-2xx status)."""
    connection = Connection(target)
    try:
        reply = await connection.request(None, path=path, method="GET")
    finally:
        await connection.close()
    if not 200 <= reply.status < 300:
        raise RuntimeError(f"GET {path}: HTTP {reply.status}: {reply.body[:300]!r}")
    return json.loads(reply.body)


async def run_load(
    target: Target,
    body_of: BodyOf,
    *,
    total: int | None = None,
    duration: float | None = None,
    concurrency: int = 32,
    rate: float | None = None,
    result: LoadResult | None = None,
    keep_bodies: bool = False,
) -> LoadResult:
    """Send requests until ``total`` were sent or ``duration`` seconds passed (one is required);
    samples are appended to ``result`` (a new one by default) as replies arrive, with the
    reply bodies when ``keep_bodies``."""
    if total is None and duration is None:
        raise ValueError("give total, duration or both")
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + duration if duration is not None else math.inf
    counter = iter(range(total if total is not None else 1 << 62))
    result = result if result is not None else LoadResult()
    result.concurrency = concurrency

    async def worker() -> None:
        connection = Connection(target)
        try:
            for index in counter:
                due = start + index / rate if rate else loop.time()
                if due >= end:
                    return
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                body = body_of(index)
                sent = due if rate else loop.time()
                reply: Reply | None = None
                try:
                    reply = await connection.request(body)
                    status, error = reply.status, None
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    status, error = 0, type(exc).__name__
                kept = reply.body if keep_bodies and reply is not None else None
                result.samples.append(
                    Sample(index, sent - start, loop.time() - sent, status, time.time(), error, kept)
                )
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall = loop.time() - start
    result.samples.sort(key=lambda s: s.index)
    return result
