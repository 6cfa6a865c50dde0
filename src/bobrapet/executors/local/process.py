"""The engine's handle on one warm worker process.

Invariants: the worker is spawned as ``sys.executable -m bobrapet.executors.local.worker`` in a
new session, with one pipe per direction (only those two fds are inherited); the engine
never reads the worker's stdout. ``run`` sends one request and returns a ``WorkerReply``:
the worker's result frame, or ``died`` with the exit status when the reply pipe hit EOF
(crash, ``os._exit``, kill). Signals streamed by the worker are collected in order.
A timeout raises ``TimeoutError`` after the worker has been stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bobrapet
from bobrapet.executors.local import protocol
from bobrapet.executors.local.killing import terminate_group

_READ_LIMIT = 1 << 28  # largest single frame (an engram's output) the engine accepts
WORKER_MODULE = "bobrapet.executors.local.worker"


@dataclass
class WorkerReply:
    """What came back for one request."""

    frame: dict[str, Any] | None
    signals: list[dict[str, Any]] = field(default_factory=list)
    returncode: int | None = None  # set when the worker died instead of replying


def worker_env(python_path: Sequence[str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: ``python_path`` first on PYTHONPATH, and bobrapet importable."""
    env = dict(os.environ if base is None else base)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(bobrapet.__file__ or "")))
    parts = [*python_path, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep)), package_root]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(str(p) for p in parts))
    return env


class WorkerProcess:
    """One spawned worker and its frame pipes."""

    def __init__(
        self, proc: asyncio.subprocess.Process, reader: asyncio.StreamReader, writer: asyncio.WriteTransport
    ) -> None:
        self.proc = proc
        self._reader = reader
        self._writer = writer
        self.tasks = 0
        self.spawned_at = time.monotonic()
        self.ready_after: float | None = None  # seconds from spawn to the worker's ready frame

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and not self._writer.is_closing()

    @classmethod
    async def spawn(cls, env: Mapping[str, str]) -> WorkerProcess:
        """Start a worker (returns once the process exists, without waiting for its imports)."""
        loop = asyncio.get_running_loop()
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                WORKER_MODULE,
                str(to_worker_r),
                str(from_worker_w),
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

    async def wait_ready(self) -> None:
        """Wait for the worker's ready frame (only meaningful before the first request)."""
        if self.ready_after is None:
            frame = await self._next_frame()
            if frame is not None and frame.get("op") == protocol.READY:
                self.ready_after = time.monotonic() - self.spawned_at

    async def run(self, request: bytes, timeout: float, grace: float) -> WorkerReply:
        """Send one encoded run request; wait for the result, the worker's death or the timeout."""
        self.tasks += 1
        reply = WorkerReply(frame=None)
        self._writer.write(request)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        frame = await self._next_frame()
                    except (ValueError, asyncio.LimitOverrunError):
                        await self.stop(grace)  # an oversized or garbled frame: the stream is unusable
                        reply.returncode = self.proc.returncode
                        return reply
                    if frame is None:
                        reply.returncode = await self.proc.wait()
                        return reply
                    op = frame.get("op")
                    if op == protocol.SIGNAL:
                        reply.signals.append(frame["event"])
                    elif op == protocol.RESULT:
                        reply.frame = frame
                        return reply
                    elif op == protocol.READY and self.ready_after is None:
                        self.ready_after = time.monotonic() - self.spawned_at
        except TimeoutError:
            await self.stop(grace)
            raise
        except BaseException:
            await self.stop(grace)  # canceled mid-step: the worker's state is unknown
            raise

    async def stop(self, grace: float) -> int | None:
        """Kill the worker's process group (SIGTERM, SIGKILL after ``grace``)."""
        self._writer.close()
        return await terminate_group(self.proc, grace)

    async def shutdown(self, grace: float) -> None:
        """Ask an idle worker to exit (EOF on its request pipe), killing it if it lingers."""
        self._writer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), grace)
        await terminate_group(self.proc, grace)
