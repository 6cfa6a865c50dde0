"""LocalExecutor: runs Engram steps on this machine (warm Python workers, command subprocesses).

One implementation of the :class:`bobrapet.executors.protocol.Executor` seam.

Capacity (steps that wait on I/O overlap by default; CPU-bound steps spread over processes):

* the pool keeps ``workers`` warm processes (retired ones aside); each runs up to
  ``slots_per_worker`` steps at once -- sync engrams in threads, async engrams as tasks on
  the worker's event loop (see :mod:`bobrapet.executors.local.worker`);
* at most ``max_steps`` attempts (Python and command engrams together) hold a slot at once;
  this, with the per-worker cap, bounds threads, tasks and memory;
* a Python attempt is placed on the least-loaded live worker with a free slot (ties: the
  most recently used, for warm caches), so N CPU-bound steps land on N different processes
  while there are N; attempts that find no slot wait FIFO (per kind: Python, command) and are
  placed as slots free up;
* :meth:`LocalExecutor.reserve` takes a slot now if one is free (``False``: the attempt will
  wait), so a caller can record "Running" before :meth:`run`; :meth:`release` gives back a
  reservation that will not run; ``run(request, on_started)`` awaits ``on_started()`` once the
  attempt has its slot, right before its code starts (``False``: nothing runs, the attempt is
  reported canceled).

Failure semantics:

* user code never runs in the engine process; ``run`` never raises for engram failures;
* timeout or cancel of an attempt alone on its worker: the worker is killed and replaced at
  once. Of an attempt sharing its worker: the worker is asked to cancel it (an async step is
  cancelled) and Timeout/canceled is reported at once; if the step has not ended after
  ``kill_grace`` (a sync step cannot be interrupted inside a thread) the worker is *retired*:
  it takes no new work, a replacement is spawned, and it is stopped once its other steps
  have finished or their own timeouts have passed;
* a worker that dies (segfault, ``os._exit``, kill) fails *every* attempt in flight on it
  with its exit status (128+N for signal N; the retryable crash class): the price of sharing
  a process between steps. Its replacement is spawned at once;
* a worker that served ``max_tasks_per_worker`` steps is retired;
* at most ``max_steps`` command engrams run at once (they share the total cap);
* ``cancel(key)`` stops that attempt wherever it is (queued or running): result Failed
  "canceled".

Effect claims and triggers: a Python step's effect frames are answered by its request's
:class:`~bobrapet.execution.effects.StepEffects`, its trigger frames by its
:class:`~bobrapet.execution.triggers.StepTriggers` (in background tasks, so a slow store
write or a trigger waiting for its decision holds up no other frame); a claim granted after
the step's worker died is released at once (nobody would run the effect).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from bobrapet.execution import triggers
from bobrapet.execution.effects import StepEffects, answer
from bobrapet.execution.request import ExecutionRequest, ExecutionResult
from bobrapet.executors.local import protocol
from bobrapet.executors.local.command import run_command
from bobrapet.executors.local.killing import terminate_group
from bobrapet.executors.local.process import InFlight, WorkerProcess, worker_env
from bobrapet.executors.local.secrets import SecretMountError, redacted
from bobrapet.executors.local.secrets import mounted as secret_mounts
from bobrapet.executors.local.secrets import sweep_stale as sweep_stale_secrets
from bobrapet.executors.outcomes import canceled, exit_status, failed, timed_out
from bobrapet.executors.protocol import OnStarted

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Steps one worker process runs at once (threads for sync engrams, tasks for async ones).
DEFAULT_SLOTS_PER_WORKER = 128
#: Steps (Python and command) running at once in one engine.
DEFAULT_MAX_STEPS = 256


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Attempt:
    """Book-keeping for one attempt from ``reserve``/``run`` until its slot is given back."""

    key: str
    python: bool
    canceled: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    placed: asyncio.Future[None] | None = None  # set while it waits for a slot
    #: Arrival order among waiting attempts of both kinds (FIFO across kinds).
    arrival: int = 0
    holds_slot: bool = False
    reserved: bool = False
    running: bool = False
    worker: WorkerProcess | None = None
    process: asyncio.subprocess.Process | None = None
    #: Wakes :meth:`LocalExecutor._reply_or_wake` (set while it waits); called by ``cancel``.
    waker: Callable[[], None] | None = None


class LocalExecutor:
    """A warm pool of concurrent Python worker processes plus command-engram subprocesses."""

    def __init__(
        self,
        *,
        workers: int = 2,
        python_path: Sequence[str] = (),
        max_tasks_per_worker: int | None = None,
        kill_grace: float = 0.5,
        slots_per_worker: int = DEFAULT_SLOTS_PER_WORKER,
        max_steps: int = DEFAULT_MAX_STEPS,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if slots_per_worker < 1:
            raise ValueError("slots_per_worker must be at least 1")
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self._size = workers
        self._slots_per_worker = slots_per_worker
        self._max_steps = max_steps
        self._env = worker_env([str(p) for p in python_path])
        self._max_tasks = max_tasks_per_worker
        self._grace = kill_grace
        self._active: list[WorkerProcess] = []  # workers taking new work
        self._workers: set[WorkerProcess] = set()  # every live worker (retired ones included)
        self._spawning = 0
        self._spawn_error: Exception | None = None
        self._used = 0
        #: Attempts waiting for a slot, per kind (python?); canceled ones are dropped lazily.
        self._queues: dict[bool, deque[_Attempt]] = {True: deque(), False: deque()}
        self._arrivals = itertools.count()
        self._attempts: dict[str, _Attempt] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._outputs: Path | None = None
        self._counter = itertools.count()
        self._started = False
        self._closed = False

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Spawn the warm pool (returns once the processes exist; they import in parallel)."""
        spawns = self._begin()
        await asyncio.gather(*spawns)

    def _begin(self) -> list[asyncio.Task[None]]:
        if self._started:
            return []
        self._started = True
        sweep_stale_secrets()
        self._outputs = Path(tempfile.mkdtemp(prefix="bobrapet-outputs-"))
        return [self._spawn_soon() for _ in range(self._size)]

    async def close(self) -> None:
        """Stop every worker and subprocess; in-flight runs finish as Failed."""
        self._closed = True
        for queue in self._queues.values():
            for attempt in queue:
                if attempt.placed is not None and not attempt.placed.done():
                    attempt.placed.cancel()
            queue.clear()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*list(self._background), return_exceptions=True)
        stops = [terminate_group(a.process, self._grace) for a in self._attempts.values() if a.process]
        stops += [w.shutdown(self._grace) for w in list(self._workers)]
        await asyncio.gather(*stops, return_exceptions=True)
        self._workers.clear()
        self._active.clear()
        if self._outputs is not None:
            shutil.rmtree(self._outputs, ignore_errors=True)

    @property
    def pids(self) -> list[int]:
        """Pids of the live worker processes (retired ones included)."""
        return sorted(w.pid for w in self._workers if w.alive)

    @property
    def capacity(self) -> tuple[int, int]:
        """(slots in use, total slots): how many attempts may hold a slot at once."""
        return self._used, self._max_steps

    async def wait_ready(self) -> list[float]:
        """Wait until every worker that has not run a step yet has started; seconds each took."""
        fresh = [w for w in self._workers if w.tasks == 0]
        await asyncio.gather(*(w.wait_ready() for w in fresh))
        return [w.ready_after for w in fresh if w.ready_after is not None]

    def _background_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # ----------------------------------------------------------------- the pool

    def _spawn_soon(self) -> asyncio.Task[None]:
        """Start spawning one worker (counted in ``_spawning`` at once)."""
        self._spawning += 1
        return self._background_task(self._spawn_one())

    async def _spawn_one(self) -> None:
        try:
            worker = await WorkerProcess.spawn(self._env, threads=self._slots_per_worker)
        except Exception as exc:  # reported to the Python attempts waiting for a worker
            self._spawning -= 1
            log.error("cannot start a worker: %s", exc)
            self._spawn_error = exc
            self._dispatch()
            return
        except BaseException:
            self._spawning -= 1
            raise
        self._spawning -= 1
        if self._closed:
            await worker.shutdown(self._grace)
            return
        self._spawn_error = None
        self._workers.add(worker)
        self._active.append(worker)
        self._background_task(self._watch(worker))
        self._dispatch()

    async def _watch(self, worker: WorkerProcess) -> None:
        """Forget ``worker`` once its process is gone; keep the pool at ``workers``."""
        await worker.wait_closed()
        self._workers.discard(worker)
        if worker in self._active:
            self._active.remove(worker)
        self._ensure_pool()
        self._dispatch()

    def _ensure_pool(self) -> None:
        if self._closed or not self._started:
            return
        missing = self._size - len(self._active) - self._spawning
        for _ in range(max(0, missing)):
            self._spawn_soon()

    def _retire(self, worker: WorkerProcess) -> None:
        """No new work for ``worker``; stop it once its steps are done or their timeouts passed."""
        if worker.retired:
            return
        worker.retired = True
        if worker in self._active:
            self._active.remove(worker)
        self._ensure_pool()

        async def stop_when_done() -> None:
            live = [p.deadline for k, p in worker.inflight.items() if k not in worker.abandoned]
            wait = max(0.0, max(live, default=0.0) - time.monotonic()) + self._grace
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.wait_settled(), wait)
            if worker.inflight:
                await worker.stop(self._grace)  # abandoned steps are still running: kill them
            else:
                await worker.shutdown(self._grace)

        self._background_task(stop_when_done())

    # ----------------------------------------------------------------- slots

    def _worker_cap(self) -> int:
        """Slots a worker may fill now: all of them, or while workers are still being
        spawned, its fair share of the Python demand (so the first one up does not take all)."""
        if not self._spawning:
            return self._slots_per_worker
        demand = sum(w.assigned for w in self._active) + len(self._queues[True]) + 1
        share = -(-demand // (len(self._active) + self._spawning))
        return max(1, min(self._slots_per_worker, share))

    def _pick_worker(self) -> WorkerProcess | None:
        best: WorkerProcess | None = None
        cap = self._worker_cap()
        for worker in self._active:
            if not worker.alive or worker.assigned >= cap:
                continue
            if best is None or (worker.assigned, -worker.last_used) < (best.assigned, -best.last_used):
                best = worker
        return best

    def _place(self, attempt: _Attempt) -> bool:
        """Give ``attempt`` a slot (and a worker) if one is free now."""
        if self._used >= self._max_steps:
            return False
        if attempt.python:
            worker = self._pick_worker()
            if worker is None:
                return False
            worker.assigned += 1
            worker.last_used = time.monotonic()
            attempt.worker = worker
        self._used += 1
        attempt.holds_slot = True
        return True

    def _unplace(self, attempt: _Attempt) -> None:
        """Give ``attempt``'s slot back and place waiting attempts."""
        if not attempt.holds_slot:
            return
        attempt.holds_slot = False
        self._used -= 1
        if attempt.worker is not None:
            attempt.worker.assigned -= 1
            attempt.worker = None
        self._dispatch()

    def _waiting(self, python: bool) -> bool:
        return bool(self._head(python))

    def _head(self, python: bool) -> _Attempt | None:
        """The first live attempt waiting in ``python``'s queue (canceled ones dropped)."""
        queue = self._queues[python]
        while queue:
            placed = queue[0].placed
            if placed is not None and not placed.done():
                return queue[0]
            queue.popleft()
        return None

    def _dispatch(self) -> None:
        """Place waiting attempts in arrival order while slots are free: each step looks at
        the two queue heads only, so a long queue costs nothing while no slot is free."""
        blocked: set[bool] = set()
        while len(blocked) < 2:
            heads = [h for python in (True, False) if python not in blocked and (h := self._head(python))]
            if not heads:
                return
            attempt = min(heads, key=lambda a: a.arrival)
            placed = attempt.placed
            assert placed is not None
            if self._place(attempt):
                self._queues[attempt.python].popleft()
                placed.set_result(None)
            elif attempt.python and not self._active and not self._spawning and self._spawn_error:
                self._queues[True].popleft()
                placed.set_exception(self._spawn_error)
            else:
                blocked.add(attempt.python)

    async def _acquire(self, attempt: _Attempt) -> bool:
        """Wait for a slot; False when the attempt was canceled first. Raises when no worker can start."""
        if attempt.holds_slot:
            return True
        self._ensure_pool()
        if not self._waiting(attempt.python) and self._place(attempt):
            return True
        placed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        attempt.placed = placed
        attempt.arrival = next(self._arrivals)
        self._queues[attempt.python].append(attempt)
        self._dispatch()
        won, _ = await self._until_canceled(attempt, placed, lambda _: self._unplace(attempt))
        attempt.placed = None
        return won

    def reserve(self, request: ExecutionRequest) -> bool:
        """Take a slot for ``request`` now if one is free (then :meth:`run` starts it at once)."""
        if self._closed or not self._started or request.key in self._attempts:
            return False
        attempt = _Attempt(request.key, python=request.command is None)
        if self._waiting(attempt.python) or not self._place(attempt):
            return False
        attempt.reserved = True
        self._attempts[request.key] = attempt
        return True

    def release(self, key: str) -> None:
        """Give back the reservation of ``key`` (its ``run`` will not be called)."""
        attempt = self._attempts.get(key)
        if attempt is not None and attempt.reserved and not attempt.running:
            del self._attempts[key]
            self._unplace(attempt)

    # ----------------------------------------------------------------- running

    async def run(self, request: ExecutionRequest, on_started: OnStarted | None = None) -> ExecutionResult:
        """Run one attempt to completion; engram failures come back as results.

        ``on_started`` (for an attempt that was not reserved) is awaited once the attempt has
        a slot, before its code starts; when it returns False nothing runs.
        """
        if self._closed:
            raise RuntimeError("LocalExecutor is closed")
        attempt = self._attempts.get(request.key)
        if attempt is not None and (attempt.running or not attempt.reserved):
            raise ValueError(f"attempt {request.key!r} is already running")
        self._begin()  # without waiting: attempts are served in the order they come
        if attempt is None:
            attempt = _Attempt(request.key, python=request.command is None)
            self._attempts[request.key] = attempt
        attempt.running = True
        try:
            with secret_mounts(request) as mounted:
                if mounted.command is not None:
                    result = await self._run_command(mounted, attempt, on_started)
                else:
                    result = await self._run_python(mounted, attempt, on_started)
            return redacted(result, request)
        except SecretMountError as exc:
            return failed(str(exc), started_at=_now(), finished_at=_now())
        finally:
            if self._attempts.get(request.key) is attempt:
                del self._attempts[request.key]

    async def cancel(self, key: str) -> None:
        """Cancel attempt ``key`` (reserved, queued or running); unknown keys are ignored."""
        attempt = self._attempts.get(key)
        if attempt is None or attempt.canceled:
            return
        attempt.canceled = True
        attempt.wake.set()
        if attempt.waker is not None:
            attempt.waker()
        if attempt.reserved and not attempt.running:
            self._unplace(attempt)  # its run() (if it comes) finds it canceled
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

    async def _started_ok(self, attempt: _Attempt, on_started: OnStarted | None) -> bool:
        if attempt.canceled:
            return False
        if on_started is not None and not await on_started():
            return False
        return not attempt.canceled

    # ----------------------------------------------------------------- commands

    async def _run_command(
        self, request: ExecutionRequest, attempt: _Attempt, on_started: OnStarted | None
    ) -> ExecutionResult:
        queued_at = _now()
        try:
            if not await self._acquire(attempt) or not await self._started_ok(attempt, on_started):
                return canceled(started_at=queued_at, finished_at=_now())
            assert self._outputs is not None
            output_path = self._outputs / f"{next(self._counter)}.json"

            def started(proc: asyncio.subprocess.Process) -> None:
                attempt.process = proc

            return await run_command(request, output_path, self._grace, started, lambda: attempt.canceled)
        finally:
            self._unplace(attempt)

    # ----------------------------------------------------------------- python engrams

    async def _run_python(
        self, request: ExecutionRequest, attempt: _Attempt, on_started: OnStarted | None
    ) -> ExecutionResult:
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
                    "redact": list(request.secrets.redact),
                    "env": {**request.env, "BUBU_DEBUG": "true" if request.debug else "false"},
                    "log": str(request.log_path),
                    "logHeader": request.log_header,
                    "inputsRecord": request.inputs_record,
                    "inputsLog": None if request.inputs_log is None else str(request.inputs_log),
                    "workdir": str(request.workdir),
                    "debug": request.debug,
                }
            )
        except (TypeError, ValueError) as exc:
            self._unplace(attempt)
            return failed(
                f"inputs are not JSON-serializable: {exc}",
                started_at=queued_at,
                finished_at=_now(),
                error_type="serialization_error",
            )
        settled_later = False
        try:
            worker = await self._worker_for(attempt, on_started)
            if worker is None:
                return canceled(started_at=queued_at, finished_at=_now())
            if isinstance(worker, Exception):
                return failed(f"cannot start a worker: {worker}", started_at=queued_at, finished_at=_now())
            started = _now()
            pending = worker.send(request.key, frame, request.timeout)
            if request.effects is not None or request.triggers is not None:
                pending.on_call = self._call_handler(worker, pending, request)  # else "not available"
            if self._max_tasks is not None and worker.tasks >= self._max_tasks:
                self._retire(worker)
            try:
                replied = await self._reply_or_wake(attempt, pending, request.timeout)
            except BaseException:  # the caller was canceled (engine shutdown): stop the step
                settled_later = await self._abandon(worker, attempt, pending)
                raise
            if replied:
                return self._python_result(request, attempt, worker, pending, started)
            settled_later = await self._abandon(worker, attempt, pending)
            finished = _now()
            if attempt.canceled:
                code = -1 if settled_later else exit_status(worker.returncode or worker.proc.returncode)[0]
                return canceled(
                    started_at=started, finished_at=finished, exit_code=code, signals=pending.signals
                )
            return timed_out(
                request.timeout, started_at=started, finished_at=finished, signals=pending.signals
            )
        finally:
            if not settled_later:
                self._unplace(attempt)

    def _call_handler(
        self, worker: WorkerProcess, pending: InFlight, request: ExecutionRequest
    ) -> Callable[[dict[str, Any]], None]:
        """Answers the effect and trigger frames of one step with its request's ports (see
        the module docstring)."""

        async def effect(frame: dict[str, Any], effects: StepEffects | None) -> dict[str, Any]:
            answered = await answer(effects, frame)
            if effects is not None and answered.get("decision") == "run" and pending.reply.done():
                with contextlib.suppress(Exception):
                    await effects.release(str(frame.get("effectKey")))
            return answered

        async def reply(frame: dict[str, Any]) -> None:
            if frame.get("op") == protocol.TRIGGER:
                answered = await triggers.answer(request.triggers, frame)
            else:
                answered = await effect(frame, request.effects)
            worker.reply_call(frame, answered)

        def handle(frame: dict[str, Any]) -> None:
            self._background_task(reply(frame))

        return handle

    async def _worker_for(
        self, attempt: _Attempt, on_started: OnStarted | None
    ) -> WorkerProcess | Exception | None:
        """A live worker with a slot held for ``attempt`` (None: canceled)."""
        reported = False
        while True:
            try:
                if not await self._acquire(attempt):
                    return None
            except Exception as exc:
                return exc
            if not reported:
                reported = True
                if not await self._started_ok(attempt, on_started):
                    return None
            worker = attempt.worker
            if worker is not None and worker.alive:
                return worker
            self._unplace(attempt)  # the worker died meanwhile: take another slot

    async def _reply_or_wake(self, attempt: _Attempt, pending: InFlight, timeout: float) -> bool:
        """True when the reply came; False on timeout or cancellation.

        One future, woken by whichever comes first: the reader resolving the reply
        (``InFlight.on_reply``, called synchronously), ``cancel`` (``_Attempt.waker``) or the
        timeout's timer; no task is created per attempt for the wait.
        """
        reply = pending.reply
        if reply.done() or attempt.canceled:
            return reply.done()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not waiter.done():
                waiter.set_result(None)

        pending.on_reply = attempt.waker = wake
        timer = loop.call_later(timeout, wake)
        try:
            await waiter
        finally:
            timer.cancel()
            pending.on_reply = attempt.waker = None
        return reply.done()

    async def _abandon(self, worker: WorkerProcess, attempt: _Attempt, pending: InFlight) -> bool:
        """Stop an attempt whose result is no longer wanted; True when its slot is given back later.

        Alone on its worker: the worker is killed (and replaced). Sharing it: the worker is
        asked to cancel the step; a background task gives the slot back once the step ended,
        retiring the worker if it has not ended within the kill grace.
        """
        if pending.reply.done():
            return False
        if set(worker.inflight) <= {attempt.key} | worker.abandoned:
            await worker.stop(self._grace)
            return False
        worker.abandoned.add(attempt.key)
        worker.cancel(attempt.key)

        async def settle() -> None:
            try:
                try:
                    await asyncio.wait_for(asyncio.shield(pending.reply), self._grace)
                except TimeoutError:
                    self._retire(worker)
                    await pending.reply
            finally:
                self._unplace(attempt)

        self._background_task(settle())
        return True

    def _python_result(
        self,
        request: ExecutionRequest,
        attempt: _Attempt,
        worker: WorkerProcess,
        pending: InFlight,
        started: datetime,
    ) -> ExecutionResult:
        finished = _now()
        frame = pending.reply.result()
        if frame is None:
            code, text = exit_status(
                worker.returncode if worker.returncode is not None else worker.proc.returncode
            )
            if attempt.canceled:
                return canceled(
                    started_at=started, finished_at=finished, exit_code=code, signals=pending.signals
                )
            message = text if text.startswith("killed") else f"worker {text}"
            shared = f" while running {worker.lost} steps, all failed with it" if worker.lost > 1 else ""
            _append_log(request.log_path, f"bobrapet: worker {worker.pid} {text}{shared}\n")
            return failed(
                message, started_at=started, finished_at=finished, exit_code=code, signals=pending.signals
            )
        phase = frame.get("phase")
        succeeded = phase == "Succeeded"
        return ExecutionResult(
            phase="Succeeded" if succeeded else "Failed",
            output=frame.get("output") if succeeded else None,
            exit_code=int(frame.get("exitCode", 0 if succeeded else 1)),
            exit_class=frame.get("exitClass"),
            error=frame.get("error"),
            message=frame.get("message"),
            signals=pending.signals,
            started_at=started,
            finished_at=finished,
        )


def _append_log(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text)
