"""The engine's handle on one warm worker process.

Invariants: the worker is spawned as ``sys.executable -m bobrapet.executors.local.worker`` in a
new session, with one pipe per direction (only those two fds are inherited); the engine
never reads the worker's stdout. Several requests may be in flight on one worker: a reader
task routes each frame to its request by ``key`` (signals are collected in order); each
:meth:`WorkerProcess.send` returns an :class:`InFlight` whose ``reply`` future resolves to the
worker's result frame, or to ``None`` when the worker died first (EOF on the reply pipe:
crash, ``os._exit``, kill; ``returncode`` is then set). A garbled or oversized frame makes
the stream unusable: the worker is stopped and every in-flight request gets ``None``.
An effect or trigger frame (a call the engine answers) goes to its request's ``on_call``
(which must answer it with :meth:`WorkerProcess.reply_call`); without one it is answered
with "not available" at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bobrapet
from bobrapet.execution import effects, triggers
from bobrapet.executors.local import protocol
from bobrapet.executors.local.killing import terminate_group

_READ_LIMIT = 1 << 28  # largest single frame (an engram's output) the engine accepts
WORKER_MODULE = "bobrapet.executors.local.worker"


@dataclass
class InFlight:
    """One request sent to a worker and not answered yet."""

    key: str
    deadline: float  # monotonic time at which the request's timeout expires
    reply: asyncio.Future[dict[str, Any] | None]
    signals: list[dict[str, Any]] = field(default_factory=list)
    #: Called by the reader right after it resolved ``reply`` (saves the waiter a loop turn
    #: that a done callback would cost).
    on_reply: Callable[[], None] | None = None
    #: Handles the step's effect and trigger frames (``ctx.effect_once``,
    #: ``ctx.trigger_story``); set by the executor.
    on_call: Callable[[dict[str, Any]], None] | None = None

    def resolve(self, frame: dict[str, Any] | None) -> None:
        """Resolve ``reply`` with ``frame`` (once) and call ``on_reply``."""
        if not self.reply.done():
            self.reply.set_result(frame)
        if self.on_reply is not None:
            self.on_reply()


def worker_env(python_path: Sequence[str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: ``python_path`` first on PYTHONPATH, and bobrapet importable."""
    env = dict(os.environ if base is None else base)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(bobrapet.__file__ or "")))
    parts = [*python_path, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep)), package_root]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(str(p) for p in parts))
    return env


class WorkerProcess:
    """One spawned worker, its frame pipes and the requests in flight on it."""

    def __init__(
        self, proc: asyncio.subprocess.Process, reader: asyncio.StreamReader, writer: asyncio.WriteTransport
    ) -> None:
        self.proc = proc
        self._reader = reader
        self._writer = writer
        self.tasks = 0
        self.spawned_at = time.monotonic()
        self.last_used = 0.0
        self.ready_after: float | None = None  # seconds from spawn to the worker's ready frame
        self.inflight: dict[str, InFlight] = {}
        #: Slots held by attempts placed on this worker (in flight or about to be sent).
        self.assigned = 0
        #: A retired worker takes no new work; it is stopped once its requests are done.
        self.retired = False
        #: Keys in flight whose result nobody waits for any more (timed out, canceled).
        self.abandoned: set[str] = set()
        self._answered = asyncio.Event()  # set whenever a request is answered (or the worker died)
        self.returncode: int | None = None
        #: Requests still in flight when the worker died (they all failed with it).
        self.lost = 0
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = asyncio.Event()
        self._reading = asyncio.get_running_loop().create_task(self._read_frames())

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and not self._writer.is_closing() and not self._closed.is_set()

    @classmethod
    async def spawn(cls, env: Mapping[str, str], threads: int | None = None) -> WorkerProcess:
        """Start a worker (returns once the process exists, without waiting for its imports)."""
        loop = asyncio.get_running_loop()
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        extra = [str(threads)] if threads is not None else []
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                WORKER_MODULE,
                str(to_worker_r),
                str(from_worker_w),
                *extra,
                pass_fds=(to_worker_r, from_worker_w),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                env=dict(env),
                start_new_session=True,
            )
        except BaseException:
            for fd in (to_worker_w, from_worker_r):
                os.close(fd)
            raise
        finally:
            os.close(to_worker_r)
            os.close(from_worker_w)
        reader = asyncio.StreamReader(limit=_READ_LIMIT)
        reply_pipe = os.fdopen(from_worker_r, "rb", 0)
        request_pipe = os.fdopen(to_worker_w, "wb", 0)
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), reply_pipe)
            writer, _ = await loop.connect_write_pipe(asyncio.Protocol, request_pipe)
        except BaseException:
            request_pipe.close()
            reply_pipe.close()
            await terminate_group(proc, 0)
            raise
        return cls(proc, reader, writer)

    async def _next_frame(self) -> dict[str, Any] | None:
        line = await self._reader.readline()
        if not line.endswith(b"\n"):
            return None  # EOF (possibly mid-frame): the worker is gone
        return protocol.decode(line)

    async def _read_frames(self) -> None:
        """Route every frame to its request until EOF; then fail what is still in flight."""
        try:
            while True:
                try:
                    frame = await self._next_frame()
                except (ValueError, asyncio.LimitOverrunError):
                    self._writer.close()  # an oversized or garbled frame: the stream is unusable
                    await terminate_group(self.proc, 0.0)
                    frame = None
                if frame is None:
                    break
                op = frame.get("op")
                if op == protocol.RESULT:
                    pending = self.inflight.pop(str(frame.get("key")), None)
                    if pending is not None:
                        pending.resolve(frame)
                    self.abandoned.discard(str(frame.get("key")))
                    self._answered.set()
                    if not self.inflight:
                        self._idle.set()
                elif op == protocol.SIGNAL:
                    pending = self.inflight.get(str(frame.get("key")))
                    if pending is not None:
                        pending.signals.append(frame["event"])
                elif op in protocol.REPLY_OF:
                    self._call(frame)
                elif op == protocol.READY:
                    if self.ready_after is None:
                        self.ready_after = time.monotonic() - self.spawned_at
                    self._ready.set()
            self.returncode = await self.proc.wait()
        finally:
            self.lost = len(self.inflight)
            self._closed.set()
            self._ready.set()
            for pending in list(self.inflight.values()):
                pending.resolve(None)
            self.inflight.clear()
            self._idle.set()
            self._answered.set()

    def _call(self, frame: dict[str, Any]) -> None:
        pending = self.inflight.get(str(frame.get("key")))
        if pending is not None and pending.on_call is not None:
            pending.on_call(frame)
        else:
            unavailable = effects.UNAVAILABLE if frame.get("op") == protocol.EFFECT else triggers.UNAVAILABLE
            self.reply_call(frame, dict(unavailable))

    def reply_call(self, frame: dict[str, Any], reply: dict[str, Any]) -> None:
        """Answer the call ``frame`` (effect or trigger) with ``reply`` (dropped when the
        worker is gone)."""
        if self.alive:
            op = protocol.REPLY_OF[str(frame.get("op"))]
            answer = {"op": op, "key": frame.get("key"), "id": frame.get("id")}
            self._writer.write(protocol.encode({**answer, "reply": reply}))

    async def wait_ready(self) -> None:
        """Wait for the worker's ready frame (or its death)."""
        await self._ready.wait()

    async def wait_idle(self) -> None:
        """Wait until no request is in flight (or the worker died)."""
        await self._idle.wait()

    async def wait_settled(self) -> None:
        """Wait until every request in flight is abandoned (or the worker died)."""
        while self.inflight and not set(self.inflight) <= self.abandoned:
            self._answered.clear()
            await self._answered.wait()

    async def wait_closed(self) -> None:
        """Wait until the reply pipe hit EOF and the process was reaped."""
        await self._closed.wait()

    def send(self, key: str, request: bytes, timeout: float) -> InFlight:
        """Send one encoded run request; its reply arrives on the returned ``InFlight``."""
        self.tasks += 1
        self.last_used = time.monotonic()
        pending = InFlight(key, time.monotonic() + timeout, asyncio.get_running_loop().create_future())
        if not self.alive:
            pending.reply.set_result(None)
            return pending
        self.inflight[key] = pending
        self._idle.clear()
        self._writer.write(request)
        return pending

    def cancel(self, key: str) -> None:
        """Ask the worker to cancel ``key`` (effective for async steps only)."""
        if self.alive and key in self.inflight:
            self._writer.write(protocol.encode({"op": protocol.CANCEL, "key": key}))

    async def stop(self, grace: float) -> int | None:
        """Kill the worker's process group (SIGTERM, SIGKILL after ``grace``)."""
        self._writer.close()
        code = await terminate_group(self.proc, grace)
        await self._reaped()
        return code

    async def shutdown(self, grace: float) -> None:
        """Ask an idle worker to exit (EOF on its request pipe), killing it if it lingers."""
        self._writer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), grace)
        await terminate_group(self.proc, grace)
        await self._reaped()

    async def _reaped(self) -> None:
        """Wait for the reader to see EOF (a descendant may hold the pipe: then stop reading)."""
        try:
            await asyncio.wait_for(asyncio.shield(self._closed.wait()), 1.0)
        except TimeoutError:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
