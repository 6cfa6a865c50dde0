"""A warm worker process: ``python -m bobrapet.executors.local.worker <read-fd> <write-fd> [threads]``.

A worker runs several steps at once (the engine decides how many: its per-worker slot cap):

* one thread of a pool (at most ``threads`` + 1 threads, ``threads`` defaulting to 128) reads
  run/cancel requests from the request pipe; the thread that reads a run request hands the
  reading on to another pool thread and runs that step itself (leader/follower: the step's
  start waits for no thread hand-off): it opens the step's log, resolves the entrypoint
  and calls it; a *sync* engram runs in that thread to its end; an *async* engram
  (the call returned an awaitable) is awaited as a task on the worker's event loop (one
  thread, started on first use), so many async steps wait on I/O side by side and the pool
  thread is free again at once;
* every run request gets exactly one result frame carrying its ``key`` (user exceptions,
  init failures, non-JSON outputs and cancellation included); signal frames carry the key
  of the step that emitted them;
* a cancel request cancels the step's task when it is async; a sync step cannot be stopped
  inside a process (the engine retires the worker instead);
* ``ctx.effect_once`` and ``ctx.trigger_story`` send effect / trigger frames and block their
  step (or await, in an async step) until the engine's reply, which the reading thread
  routes back by ``id``.

Per-step isolation with concurrency (the engine and the user's code only see their own step):

* ``sys.stdout``/``sys.stderr`` are proxies writing to the log file of the step whose code
  is running (a context variable, inherited by the step's asyncio tasks and by
  :func:`contextvars.copy_context`-run callables, not by plain new threads); the SDK logger
  writes through them; ``ctx.logger.debug`` records are kept only for steps with debug on;
* ``os.environ`` is an overlay: ``os.environ``/``os.getenv`` see the step's ``BUBU_*`` and
  request variables (and the step's own writes) on top of the worker's base environment;
* C-level output (fds 1 and 2: extension modules, ``os.write``, the faulthandler trace of a
  crash) goes to the step log while the step is the only one running in the worker, and to
  the worker's own stdout/stderr while several run; subprocesses started without ``env=``
  see the worker's base environment.

A class engram's instance (one per worker, entrypoint and config) may serve several steps at
once, like a web handler: per-step state belongs in local variables. An async engram that
blocks (``time.sleep`` in ``async def``) holds up the other async steps of its worker.

Storage (reference §7): a step's inputs are hydrated here, before its code is called, and
its output is dehydrated here (values above the step's ``BUBU_MAX_INLINE_SIZE`` written to
the storage its ``BUBU_STORAGE_*`` variables name) before the result frame is sent: large
payloads never cross the pipe to the engine. A storage failure fails the step with a
``storage_error`` (terminal unless a retry could succeed).

The step's ``workdir`` is first on ``sys.path``. Imports only the standard library,
``bobrapet.sdk``, ``bobrapet.storage`` (boto3 only once an S3 store is used) and the user's
modules (asyncio only once an async step runs); exits on EOF of the request pipe (without
waiting for steps still running).
"""

from __future__ import annotations

import contextlib
import contextvars
import faulthandler
import io
import itertools
import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TextIO

from bobrapet.executors.local import protocol
from bobrapet.executors.local.loader import EntrypointCache, EntrypointError
from bobrapet.executors.logpath import SpareLogs, append_inputs_record, open_attempt_log
from bobrapet.sdk.context import LOGGER_NAME, Context
from bobrapet.sdk.errors import StructuredError, error_wire
from bobrapet.sdk.preview import preview
from bobrapet.sdk.redact import redact, redaction_terms
from bobrapet.storage.errors import StorageError
from bobrapet.storage.step import dehydrate_step_output, hydrate_step_inputs
from bobrapet.storage.step import exit_class as storage_exit_class

DEFAULT_THREADS = 128


class _Channel:
    """The worker's side of the frame pipes (writes are serialised by a lock)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._reader = os.fdopen(read_fd, "rb")
        self._write_fd = write_fd
        self._lock = threading.Lock()

    def receive(self) -> dict[str, Any] | None:
        line = self._reader.readline()
        return protocol.decode(line) if line else None

    def send(self, frame: dict[str, Any]) -> None:
        self.send_bytes(protocol.encode(frame))

    def send_bytes(self, data: bytes) -> None:
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._write_fd, view) :]


class _Calls:
    """Calls of the steps of this worker to the engine (effect claims, triggers): one frame out
    per call, replies routed by ``id`` (one sequence for every kind of call)."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def call(self, op: str, step_key: str, fields: dict[str, Any]) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            call_id = next(self._ids)
            self._pending[call_id] = future
        frame = {**fields, "op": op, "key": step_key, "id": call_id}
        try:
            self._channel.send(frame)
        except BaseException as exc:
            with self._lock:
                self._pending.pop(call_id, None)
            future.set_exception(exc)
        return future

    def resolve(self, frame: dict[str, Any]) -> None:
        """Hand a reply frame (``effect-reply``, ``trigger-reply``) to the call waiting for it."""
        with self._lock:
            future = self._pending.pop(frame.get("id"), None)  # type: ignore[arg-type]
        if future is not None:
            reply = frame.get("reply")
            malformed = {"error": "malformed reply from the engine"}
            future.set_result(reply if isinstance(reply, dict) else malformed)


class _StepEffects:
    """The :class:`~bobrapet.sdk.effects.EffectBackend` of one step: calls carry its key."""

    def __init__(self, calls: _Calls, step_key: str) -> None:
        self._calls = calls
        self._key = step_key

    def call(self, action: str, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        return self._calls.call(protocol.EFFECT, self._key, {**payload, "action": action})


class _StepTriggers:
    """The :class:`~bobrapet.sdk.triggers.TriggerBackend` of one step: calls carry its key."""

    def __init__(self, calls: _Calls, step_key: str) -> None:
        self._calls = calls
        self._key = step_key

    def call(self, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        return self._calls.call(protocol.TRIGGER, self._key, payload)


class _Step:
    """One step running in this worker: its log, its environment overlay, its debug flag."""

    def __init__(
        self, key: str, log_fd: int, env: dict[str, str], debug: bool, terms: tuple[str, ...] = ()
    ) -> None:
        self.key = key
        #: Secret texts of this step, redacted from its tracebacks and debug previews.
        self.terms = terms
        self.log_fd = log_fd
        self.log: TextIO = open(log_fd, "a", encoding="utf-8", errors="replace", closefd=False, buffering=1)  # noqa: SIM115
        self.env: dict[str, str | None] = dict(env)
        self.debug = debug
        self.task: Any = None  # the concurrent future of an async step's task
        self.lock = threading.Lock()
        self.finished = False

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.log.flush()
        with contextlib.suppress(OSError, ValueError):
            self.log.close()
        with contextlib.suppress(OSError):
            os.close(self.log_fd)


#: The step whose code runs in the current thread/task (None: worker code).
_CURRENT: contextvars.ContextVar[_Step | None] = contextvars.ContextVar("bobrapet_step", default=None)


class _StreamProxy(io.TextIOBase):
    """``sys.stdout``/``sys.stderr``: writes go to the current step's log, else to ``base``."""

    def __init__(self, base: TextIO) -> None:
        self._base = base

    def _target(self) -> TextIO:
        step = _CURRENT.get()
        return step.log if step is not None else self._base

    def write(self, text: str) -> int:
        self._target().write(text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._target().flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        step = _CURRENT.get()
        return step.log_fd if step is not None else self._base.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def buffer(self) -> Any:
        """The binary stream under the current target (``sys.stdout.buffer.write(b"...")``)."""
        return self._target().buffer


_DELETED = None  # marks a variable the step deleted from its overlay


class _EnvironOverlay(os._Environ):  # type: ignore[type-arg]
    """``os.environ`` of a worker: the current step's variables over the worker's base env.

    Reads see the step's values first; writes and deletions made while a step runs stay in
    that step's overlay; outside a step, reads and writes go to the base environment.
    """

    def __init__(self, base: os._Environ[str]) -> None:
        super().__init__(base._data, base.encodekey, base.decodekey, base.encodevalue, base.decodevalue)  # type: ignore[attr-defined]

    @staticmethod
    def _overlay() -> dict[str, str | None] | None:
        step = _CURRENT.get()
        return step.env if step is not None else None

    def __getitem__(self, key: str) -> str:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        base: str = super().__getitem__(key)
        return base

    def __setitem__(self, key: str, value: str) -> None:
        overlay = self._overlay()
        if overlay is None:
            super().__setitem__(key, value)
            return
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"str expected, not {type(value).__name__}")
        overlay[key] = value

    def __delitem__(self, key: str) -> None:
        overlay = self._overlay()
        if overlay is None:
            super().__delitem__(key)
            return
        if key not in self:
            raise KeyError(key)
        overlay[key] = _DELETED

    def __iter__(self) -> Iterator[str]:
        overlay = self._overlay()
        if overlay is None:
            yield from super().__iter__()
            return
        for key in list(super().__iter__()):
            if key not in overlay:
                yield key
        for key, value in list(overlay.items()):
            if value is not _DELETED:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def copy(self) -> dict[str, str]:
        return dict(self)


class _DebugFilter(logging.Filter):
    """Drops DEBUG records of steps without debug (the SDK logger is shared by all steps)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            return True
        step = _CURRENT.get()
        return step is not None and step.debug


def _make_logger() -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_DebugFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


class _FdRouter:
    """Points fds 1/2 at the log of the only running step, at the worker's own otherwise."""

    def __init__(self) -> None:
        self._saved_out = os.dup(1)
        self._saved_err = os.dup(2)
        self._lock = threading.Lock()
        self._running: dict[str, _Step] = {}
        self._solo: str | None = None

    def enter(self, step: _Step) -> None:
        with self._lock:
            self._running[step.key] = step
            self._route()

    def leave(self, step: _Step) -> None:
        with self._lock:
            self._running.pop(step.key, None)
            self._route()

    def _route(self) -> None:
        solo = next(iter(self._running)) if len(self._running) == 1 else None
        if solo == self._solo:
            return
        _flush_base()
        if solo is None:
            os.dup2(self._saved_out, 1)
            os.dup2(self._saved_err, 2)
        else:
            fd = self._running[solo].log_fd
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        self._solo = solo


def _flush_base() -> None:
    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()


def _put_first_on_path(directory: str) -> None:
    if directory and (not sys.path or sys.path[0] != directory):
        if directory in sys.path:
            sys.path.remove(directory)
        sys.path.insert(0, directory)


def _failure(error: dict[str, Any], exit_code: int = 1, exit_class: str | None = None) -> dict[str, Any]:
    return {
        "op": protocol.RESULT,
        "phase": "Failed",
        "output": None,
        "exitCode": exit_code,
        "exitClass": exit_class,
        "error": error,
        "message": error["message"],
    }


def _canceled() -> dict[str, Any]:
    return _failure(error_wire("execution_error", "canceled", exit_code=1, code="Canceled", retryable=False))


class Worker:
    """Executes run requests concurrently (threads for sync engrams, a loop for async ones)."""

    def __init__(self, channel: _Channel, threads: int = DEFAULT_THREADS) -> None:
        self._channel = channel
        self._cache = EntrypointCache()
        self._resolve_lock = threading.Lock()
        # One thread more than steps: the one reading the request pipe (see _lead).
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads) + 1, thread_name_prefix="step")
        self._eof = threading.Event()  # set when the request pipe hit EOF (or reading failed)
        self._error: BaseException | None = None
        self._router = _FdRouter()
        self._steps: dict[str, _Step] = {}
        self._steps_lock = threading.Lock()
        self._loop: Any = None
        self._loop_lock = threading.Lock()
        self._logger = _make_logger()
        self._spares = SpareLogs()
        self._calls = _Calls(channel)

    def serve(self) -> None:
        """Serve requests until EOF of the request pipe (then return at once)."""
        self._channel.send({"op": protocol.READY, "pid": os.getpid()})
        self._pool.submit(self._lead)
        self._eof.wait()
        if self._error is not None:
            raise self._error  # the worker dies with it, as when the main thread read requests

    def _lead(self) -> None:
        """Read requests until a run request comes, hand the reading on to another pool
        thread, then run that step in this one.

        Leader/follower: exactly one thread reads the request pipe at a time (the next reader
        is started only after this one read its whole frame), so frames are read in order and
        a cancel is seen while steps run; the step starts without waiting for another thread
        to wake up, which on an idle machine is what a hand-off costs most.
        """
        try:
            while (request := self._channel.receive()) is not None:
                op = request.get("op")
                if op == protocol.RUN:
                    self._pool.submit(self._lead)
                    contextvars.copy_context().run(self._begin, request)
                    return
                if op == protocol.CANCEL:
                    self.cancel(str(request.get("key")))
                elif op in (protocol.EFFECT_REPLY, protocol.TRIGGER_REPLY):
                    self._calls.resolve(request)
        except BaseException as exc:  # a garbled frame, a broken worker: stop serving
            self._error = exc
        self._eof.set()

    # ------------------------------------------------------------------ starting a step

    def _begin(self, request: dict[str, Any]) -> None:
        """In a pool thread, in a fresh context: open the step's log (its attempt header
        first), append the inputs record to the run's inputs log, then run the step."""
        key = str(request.get("key"))
        log_path = str(request["log"])
        try:
            fd = open_attempt_log(log_path, str(request.get("logHeader") or ""), self._spares)
        except OSError as exc:
            message = f"cannot open the step log {log_path!r}: {exc}"
            self._send_result(key, _failure(error_wire("execution_error", message, exit_code=1)))
            return
        env = {str(k): str(v) for k, v in (request.get("env") or {}).items()}
        terms = redaction_terms(request.get("secrets") or {}, request.get("redact") or ())
        step = _Step(key, fd, env, bool(request.get("debug")), terms)
        with self._steps_lock:
            self._steps[key] = step
        self._router.enter(step)
        append_inputs_record(request.get("inputsLog"), request.get("inputsRecord"))
        _CURRENT.set(step)
        self._call(step, request)
        # A sync step's result is sent (an async one runs on the loop): off the critical path.
        self._spares.refill(os.path.dirname(log_path))

    def _call(self, step: _Step, request: dict[str, Any]) -> None:
        """Inside the step's context: resolve, call; finish or go async."""
        _put_first_on_path(request.get("workdir") or "")
        ctx = self._context(step, request)
        try:
            if step.debug:
                self._logger.debug("inputs: %s", preview(request.get("inputs"), terms=step.terms))
            with self._resolve_lock:
                target = self._cache.resolve(request["entrypoint"], ctx.config, ctx.secrets)
            inputs, ctx.config = _hydrated(request.get("inputs"), ctx.config)
            output = target(inputs, ctx)
        except BaseException as exc:  # every failure becomes the step's result
            self._finish(step, ctx, self._failure_of(exc, step.terms))
            return
        if hasattr(output, "__await__"):  # an async engram (cheaper than importing inspect)
            self._run_async(step, ctx, output)
            return
        self._finish(step, ctx, self._output_frame(step, output))

    def _context(self, step: _Step, request: dict[str, Any]) -> Context:
        def signal(event: dict[str, Any]) -> None:
            self._channel.send({"op": protocol.SIGNAL, "key": step.key, "event": event})

        return Context(
            config=request.get("config") or {},
            secrets=request.get("secrets") or {},
            logger=self._logger,
            debug=step.debug,
            on_signal=signal,
            effects=_StepEffects(self._calls, step.key),
            triggers=_StepTriggers(self._calls, step.key),
        )

    # ------------------------------------------------------------------ async steps

    def _event_loop(self) -> Any:
        with self._loop_lock:
            if self._loop is None:
                import asyncio

                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="steps-loop", daemon=True)
                thread.start()
                self._loop = loop
            return self._loop

    def _run_async(self, step: _Step, ctx: Context, awaitable: Any) -> None:
        import asyncio

        async def await_step() -> None:
            try:
                output = await awaitable
            except asyncio.CancelledError:
                self._finish(step, ctx, _canceled())
                return
            except BaseException as exc:
                self._finish(step, ctx, self._failure_of(exc, step.terms))
                return
            self._finish(step, ctx, self._output_frame(step, output))

        # The task is created from this thread's context: the step's (see Task and contextvars).
        with step.lock:
            step.task = asyncio.run_coroutine_threadsafe(await_step(), self._event_loop())

    def cancel(self, key: str) -> None:
        """Cancel ``key`` if it is an async step still running (a sync step cannot be stopped)."""
        with self._steps_lock:
            step = self._steps.get(key)
        if step is None:
            return
        with step.lock:
            task = step.task
        if task is not None:
            task.cancel()

    # ------------------------------------------------------------------ results

    def _output_frame(self, step: _Step, output: Any) -> dict[str, Any]:
        if output is None:
            output = {}
        if not isinstance(output, dict):
            message = (
                f"the engram returned {type(output).__name__}, not a dict: return a JSON object "
                'such as {"result": value}'
            )
            print(message, file=sys.stderr)
            return _failure(error_wire("serialization_error", message, exit_code=1))
        try:
            output = _dehydrated_output(output)
        except StorageError as exc:
            return _storage_failure(exc)
        if step.debug:
            self._logger.debug("output: %s", preview(output, terms=step.terms))
        return {"op": protocol.RESULT, "phase": "Succeeded", "output": output, "exitCode": 0}

    @staticmethod
    def _failure_of(exc: BaseException, terms: tuple[str, ...]) -> dict[str, Any]:
        """The result frame of an exception raised by the step (printed to the step log)."""
        if isinstance(exc, StructuredError):
            _print_traceback_of(exc, terms)
            return _failure(exc.to_wire(1), 1, exc.exit_class)
        if isinstance(exc, StorageError):
            return _storage_failure(exc)
        if isinstance(exc, EntrypointError):
            _print_traceback_of(exc, terms)
            return _failure(error_wire(exc.error_type, str(exc), exit_code=1))
        if isinstance(exc, SystemExit):
            code = exc.code if isinstance(exc.code, int) and exc.code > 0 else 1
            return _failure(error_wire("execution_error", f"SystemExit: {exc.code}", exit_code=code), code)
        _print_traceback_of(exc, terms)
        return _failure(error_wire("execution_error", f"{type(exc).__name__}: {exc}", exit_code=1))

    def _finish(self, step: _Step, ctx: Context, frame: dict[str, Any]) -> None:
        """Send the step's one result frame, then release its log and env."""
        ctx.close()
        with step.lock:
            if step.finished:
                return
            step.finished = True
        try:
            data = protocol.encode({**frame, "key": step.key})
        except (TypeError, ValueError, RecursionError) as exc:
            message = f"output is not JSON-serializable: {type(exc).__name__}: {exc}"
            print(message, file=sys.stderr)
            data = protocol.encode(
                {**_failure(error_wire("serialization_error", message, exit_code=1)), "key": step.key}
            )
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        self._router.leave(step)
        with self._steps_lock:
            self._steps.pop(step.key, None)
        step.close()
        self._channel.send_bytes(data)

    def _send_result(self, key: str, frame: dict[str, Any]) -> None:
        self._channel.send({**frame, "key": key})


# ---------------------------------------------------------------------- storage (reference §7)


def _hydrated(inputs: Any, config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The step's inputs and config with storage references replaced by their data (the
    step's env says where storage is); raises :class:`StorageError`."""
    inputs, config = hydrate_step_inputs(os.environ, inputs, config)
    return inputs, config


def _dehydrated_output(output: dict[str, Any]) -> Any:
    """The step's output with the values above its inline limit offloaded to storage, so the
    engine only ever receives references for them; raises :class:`StorageError`."""
    return dehydrate_step_output(os.environ, output)


def _storage_failure(exc: StorageError) -> dict[str, Any]:
    """The result frame of a step whose inputs or output could not go through storage."""
    print(f"storage: {exc.message}", file=sys.stderr)
    exit_class = storage_exit_class(exc)
    wire = error_wire("storage_error", exc.message, exit_code=1, exit_class=exit_class)
    return _failure(wire, 1, exit_class)


def _print_traceback_of(exc: BaseException, terms: tuple[str, ...]) -> None:
    import traceback

    sys.stderr.write(redact("".join(traceback.format_exception(exc)), terms))


def _die_with_engine() -> None:
    """Ask Linux to SIGKILL this worker when the engine dies.

    An engine that crashes mid-step has its claimed StepRuns re-run by the next engine;
    an orphaned worker finishing the same step meanwhile would run it twice.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the engine died before the request took effect
        os._exit(1)


def _isolate(environ: Mapping[str, str]) -> None:
    """Install the per-step stream proxies and the ``os.environ`` overlay."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, io.TextIOWrapper) and name == "stdout":
            stream.reconfigure(line_buffering=True)
        setattr(sys, name, _StreamProxy(stream))
    if isinstance(environ, os._Environ) and not isinstance(environ, _EnvironOverlay):
        os.environ = _EnvironOverlay(environ)  # noqa: B003 - same data, per-step overlay on top


def main(argv: list[str]) -> int:
    """Entry point: serve run requests until the engine closes the request pipe."""
    if len(argv) not in (3, 4):
        print(
            "usage: python -m bobrapet.executors.local.worker <read-fd> <write-fd> [threads]", file=sys.stderr
        )
        return 2
    faulthandler.enable(all_threads=True)  # a crash's traceback goes to fd 2 (the step log when solo)
    _die_with_engine()
    _isolate(os.environ)
    threads = int(argv[3]) if len(argv) == 4 else DEFAULT_THREADS
    code = 0
    try:
        Worker(_Channel(int(argv[1]), int(argv[2])), threads).serve()
    except BaseException:  # reported, then the worker dies (the engine sees it)
        import traceback

        traceback.print_exc()
        code = 1
    _flush_base()
    os._exit(code)  # steps still running in threads (and the blocked reader) must not delay the exit


if __name__ == "__main__":
    sys.exit(main(sys.argv))
