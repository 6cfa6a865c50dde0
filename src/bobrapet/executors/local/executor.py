"""LocalExecutor: runs Engram steps on this machine (warm Python workers, command subprocesses).

Invariants:
* user code never runs in the engine process; ``run`` never raises for engram failures;
* at most ``workers`` Python steps run at once, one per worker; waiting requests are served
  FIFO; the most recently used idle worker is reused first (warm caches);
* a worker that died, timed out, was canceled or served ``max_tasks_per_worker`` steps is
  discarded and replaced in the background, so the pool stays at ``workers`` processes;
* at most ``workers`` command engrams run at once (a separate limit);
* ``cancel(key)`` stops that attempt wherever it is (queued or running): result Failed
  "canceled".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from bobrapet.executors.local import protocol
from bobrapet.executors.local.command import run_command
from bobrapet.executors.local.killing import terminate_group
from bobrapet.executors.local.process import WorkerProcess, WorkerReply, worker_env
from bobrapet.executors.local.secrets import SecretMountError, redacted
from bobrapet.executors.local.secrets import mounted as secret_mounts
from bobrapet.executors.local.secrets import sweep_stale as sweep_stale_secrets
from bobrapet.executors.outcomes import canceled, exit_status, failed, timed_out
from bobrapet.executors.request import ExecutionRequest, ExecutionResult

log = logging.getLogger(__name__)
T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Attempt:
    """Book-keeping for one in-flight ``run`` call."""

    key: str
    canceled: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    worker: WorkerProcess | None = None
    process: asyncio.subprocess.Process | None = None


class LocalExecutor:
    """A warm pool of Python worker processes plus command-engram subprocesses."""

    def __init__(
        self,
        *,
        workers: int = 2,
        python_path: Sequence[str] = (),
        max_tasks_per_worker: int | None = None,
        kill_grace: float = 0.5,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._size = workers
        self._env = worker_env([str(p) for p in python_path])
        self._max_tasks = max_tasks_per_worker
        self._grace = kill_grace
        self._idle: asyncio.LifoQueue[WorkerProcess | None] = asyncio.LifoQueue()
        self._workers: set[WorkerProcess] = set()
        self._command_slots = asyncio.Semaphore(workers)
        self._attempts: dict[str, _Attempt] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._outputs: Path | None = None
        self._counter = itertools.count()
        self._started = False
        self._closed = False

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Spawn the warm pool (returns once the processes exist; they import in parallel)."""
        if self._started:
            return
        self._started = True
        sweep_stale_secrets()
        self._outputs = Path(tempfile.mkdtemp(prefix="bobrapet-outputs-"))
        spawned = await asyncio.gather(*(self._spawn() for _ in range(self._size)), return_exceptions=True)
        for worker in spawned:
            if isinstance(worker, BaseException):
                log.error("cannot start a worker: %s", worker)
                self._idle.put_nowait(None)
            else:
                self._idle.put_nowait(worker)

    async def close(self) -> None:
        """Stop every worker and subprocess; in-flight runs finish as Failed."""
        self._closed = True
        # replacements in flight are short (stop + spawn) and shut their fresh worker down
        await asyncio.gather(*list(self._background), return_exceptions=True)
        stops = [terminate_group(a.process, self._grace) for a in self._attempts.values() if a.process]
        stops += [w.shutdown(self._grace) for w in list(self._workers)]
        await asyncio.gather(*stops, return_exceptions=True)
        self._workers.clear()
        if self._outputs is not None:
            shutil.rmtree(self._outputs, ignore_errors=True)

    @property
    def pids(self) -> list[int]:
        """Pids of the live worker processes."""
        return sorted(w.pid for w in self._workers if w.alive)

    async def wait_ready(self) -> list[float]:
        """Wait until every worker has started; seconds each took from spawn to ready.

        Only for use before any step was run (it reads the workers' first frame).
        """
        fresh = [w for w in self._workers if w.tasks == 0]
        await asyncio.gather(*(w.wait_ready() for w in fresh))
        return [w.ready_after for w in fresh if w.ready_after is not None]

    # ----------------------------------------------------------------- running

    async def run(self, request: ExecutionRequest) -> ExecutionResult:
        """Run one attempt to completion; engram failures come back as results."""
        if self._closed:
            raise RuntimeError("LocalExecutor is closed")
        if request.key in self._attempts:
            raise ValueError(f"attempt {request.key!r} is already running")
        if not self._started:
            await self.start()
        attempt = _Attempt(request.key)
        self._attempts[request.key] = attempt
        try:
            with secret_mounts(request) as mounted:
                if mounted.command is not None:
                    result = await self._run_command(mounted, attempt)
                else:
                    result = await self._run_python(mounted, attempt)
            return redacted(result, request)
        except SecretMountError as exc:
            return failed(str(exc), started_at=_now(), finished_at=_now())
        finally:
            del self._attempts[request.key]

    async def cancel(self, key: str) -> None:
        """Cancel attempt ``key`` (queued or running); unknown keys are ignored."""
        attempt = self._attempts.get(key)
        if attempt is None or attempt.canceled:
            return
        attempt.canceled = True
        attempt.wake.set()
        if attempt.worker is not None:
            await attempt.worker.stop(self._grace)
        elif attempt.process is not None:
            await terminate_group(attempt.process, self._grace)

    async def _until_canceled(
        self, attempt: _Attempt, waiting: Awaitable[T], undo: Callable[[T], None]
    ) -> tuple[bool, T | None]:
        """Await ``waiting`` unless the attempt is canceled first: (won, value).

        When the attempt is canceled (or the caller's task is) after ``waiting`` already
        produced a value, ``undo(value)`` gives it back.
        """
        task: asyncio.Future[T] = asyncio.ensure_future(waiting)
        wake = asyncio.ensure_future(attempt.wake.wait())
        won = False
        try:
            await asyncio.wait((task, wake), return_when=asyncio.FIRST_COMPLETED)
            won = task.done() and not task.cancelled() and not attempt.canceled
        finally:
            wake.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if not won and task.done() and not task.cancelled() and task.exception() is None:
                undo(task.result())
        return (True, task.result()) if won else (False, None)

    # ----------------------------------------------------------------- commands

    async def _run_command(self, request: ExecutionRequest, attempt: _Attempt) -> ExecutionResult:
        queued_at = _now()
        if self._command_slots.locked():
            won, _ = await self._until_canceled(
                attempt, self._command_slots.acquire(), lambda _: self._command_slots.release()
            )
            if not won:
                return canceled(started_at=queued_at, finished_at=_now())
        else:
            await self._command_slots.acquire()
        try:
            if attempt.canceled:
                return canceled(started_at=queued_at, finished_at=_now())
            assert self._outputs is not None
            output_path = self._outputs / f"{next(self._counter)}.json"

            def started(proc: asyncio.subprocess.Process) -> None:
                attempt.process = proc

            return await run_command(request, output_path, self._grace, started, lambda: attempt.canceled)
        finally:
            self._command_slots.release()

    # ----------------------------------------------------------------- python engrams

    async def _run_python(self, request: ExecutionRequest, attempt: _Attempt) -> ExecutionResult:
        queued_at = _now()
        try:
            frame = protocol.encode(
                {
                    "op": protocol.RUN,
                    "key": request.key,
                    "entrypoint": request.entrypoint,
                    "inputs": request.inputs,
                    "config": request.config,
                    "secrets": request.secrets.wire(),
                    "env": {**request.env, "BUBU_DEBUG": "true" if request.debug else "false"},
                    "log": str(request.log_path),
                    "workdir": str(request.workdir),
                    "debug": request.debug,
                }
            )
        except (TypeError, ValueError) as exc:
            return failed(
                f"inputs are not JSON-serializable: {exc}",
                started_at=queued_at,
                finished_at=_now(),
                error_type="serialization_error",
            )
        worker = await self._take_worker(attempt)
        if worker is None:
            return canceled(started_at=queued_at, finished_at=_now())
        if isinstance(worker, BaseException):
            return failed(f"cannot start a worker: {worker}", started_at=queued_at, finished_at=_now())
        if attempt.canceled:  # canceled while a fresh worker was being spawned
            self._release(worker)
            return canceled(started_at=queued_at, finished_at=_now())
        attempt.worker = worker
        started = _now()
        try:
            reply = await worker.run(frame, request.timeout, self._grace)
        except TimeoutError:
            self._replace(worker)
            return timed_out(request.timeout, started_at=started, finished_at=_now())
        except BaseException:
            self._replace(worker)
            raise
        finally:
            attempt.worker = None
        return self._python_result(request, attempt, worker, reply, started)

    def _python_result(
        self,
        request: ExecutionRequest,
        attempt: _Attempt,
        worker: WorkerProcess,
        reply: WorkerReply,
        started: datetime,
    ) -> ExecutionResult:
        finished = _now()
        if reply.frame is None:
            self._replace(worker)
            code, text = exit_status(reply.returncode)
            if attempt.canceled:
                return canceled(
                    started_at=started, finished_at=finished, exit_code=code, signals=reply.signals
                )
            message = text if text.startswith("killed") else f"worker {text}"
            _append_log(request.log_path, f"bobrapet: worker {worker.pid} {text}\n")
            return failed(
                message, started_at=started, finished_at=finished, exit_code=code, signals=reply.signals
            )
        self._release(worker)
        frame = reply.frame
        phase = frame.get("phase")
        succeeded = phase == "Succeeded"
        return ExecutionResult(
            phase="Succeeded" if succeeded else "Failed",
            output=frame.get("output") if succeeded else None,
            exit_code=int(frame.get("exitCode", 0 if succeeded else 1)),
            exit_class=frame.get("exitClass"),
            error=frame.get("error"),
            message=frame.get("message"),
            signals=reply.signals,
            started_at=started,
            finished_at=finished,
        )

    async def _take_worker(self, attempt: _Attempt) -> WorkerProcess | BaseException | None:
        """An idle live worker; None if canceled while queued; the exception if none could start."""
        if not self._idle.empty():
            slot = self._idle.get_nowait()
        else:
            won, slot = await self._until_canceled(attempt, self._idle.get(), self._idle.put_nowait)
            if not won:
                return None
        if attempt.canceled:
            self._idle.put_nowait(slot)
            return None
        if slot is not None and slot.alive:
            return slot
        if slot is not None:
            self._workers.discard(slot)
        try:
            return await self._spawn()
        except BaseException as exc:
            self._idle.put_nowait(None)  # keep the pool size: the next taker tries again
            if not isinstance(exc, Exception):
                raise
            return exc

    async def _spawn(self) -> WorkerProcess:
        worker = await WorkerProcess.spawn(self._env)
        self._workers.add(worker)
        return worker

    def _release(self, worker: WorkerProcess) -> None:
        if self._closed:
            return
        if self._max_tasks is not None and worker.tasks >= self._max_tasks:
            self._replace(worker, retire=True)
        else:
            self._idle.put_nowait(worker)

    def _replace(self, worker: WorkerProcess, retire: bool = False) -> None:
        """Discard ``worker`` and put a fresh one in the pool (in the background)."""
        self._workers.discard(worker)
        if self._closed:
            return

        async def replace() -> None:
            if retire:
                await worker.shutdown(self._grace)
            else:
                await worker.stop(self._grace)
            try:
                fresh: WorkerProcess | None = await self._spawn()
            except Exception as exc:  # the next taker retries and reports it
                log.error("cannot start a replacement worker: %s", exc)
                fresh = None
            if self._closed and fresh is not None:
                await fresh.shutdown(self._grace)
                return
            self._idle.put_nowait(fresh)

        task = asyncio.get_running_loop().create_task(replace())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _append_log(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text)
