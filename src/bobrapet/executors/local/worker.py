"""A warm worker process: ``python -m bobrapet.executors.local.worker <read-fd> <write-fd>``.

Invariants: runs one step at a time, talking to the engine only over the two inherited pipe
fds (never over stdout); while a step runs, fds 1 and 2 are redirected (``dup2``) to that
step's log file so ``print`` and C-level output land in the step log, and are restored after
the step; the ``BUBU_*`` env of the request is set for the step and restored afterwards; the
step's ``workdir`` is first on ``sys.path``. Every run request gets exactly one result frame
(user exceptions, init failures and non-JSON outputs included). Imports only the standard
library, ``bobrapet.sdk`` and the user's modules; exits on EOF of the request pipe.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import logging
import os
import sys
import threading
from typing import Any

from bobrapet.executors.local import protocol
from bobrapet.executors.local.loader import EntrypointCache, EntrypointError
from bobrapet.sdk.context import LOGGER_NAME, Context
from bobrapet.sdk.errors import StructuredError, error_wire
from bobrapet.sdk.preview import preview
from bobrapet.sdk.redact import redact, redaction_terms


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


class _StepIO:
    """Redirects fds 1/2 to a step log and restores the worker's own afterwards."""

    def __init__(self) -> None:
        self._saved_out = os.dup(1)
        self._saved_err = os.dup(2)

    def redirect(self, log_path: str) -> None:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)

    def restore(self) -> None:
        self._flush()
        os.dup2(self._saved_out, 1)
        os.dup2(self._saved_err, 2)

    @staticmethod
    def _flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()


def _make_logger() -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    return logger


def _apply_env(env: dict[str, str]) -> dict[str, str | None]:
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    return saved


def _restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _put_first_on_path(directory: str) -> None:
    if directory and (not sys.path or sys.path[0] != directory):
        if directory in sys.path:
            sys.path.remove(directory)
        sys.path.insert(0, directory)


def _print_traceback(terms: tuple[str, ...]) -> None:
    import traceback

    sys.stderr.write(redact(traceback.format_exc(), terms))


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


class Worker:
    """Executes run requests one at a time."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._io = _StepIO()
        self._cache = EntrypointCache()
        self._logger = _make_logger()

    def serve(self) -> None:
        self._channel.send({"op": protocol.READY, "pid": os.getpid()})
        while (request := self._channel.receive()) is not None:
            if request.get("op") == protocol.RUN:
                self._channel.send_bytes(self.run(request))

    def run(self, request: dict[str, Any]) -> bytes:
        """Run one step and return its encoded result frame."""
        try:
            self._io.redirect(request["log"])
        except OSError as exc:
            message = f"cannot open the step log {request['log']!r}: {exc}"
            return protocol.encode(_failure(error_wire("execution_error", message, exit_code=1)))
        saved_env = _apply_env(request.get("env") or {})
        _put_first_on_path(request.get("workdir") or "")
        try:
            frame = self._execute(request)
            try:
                return protocol.encode(frame)
            except (TypeError, ValueError, RecursionError) as exc:
                message = f"output is not JSON-serializable: {type(exc).__name__}: {exc}"
                print(message, file=sys.stderr)
                return protocol.encode(_failure(error_wire("serialization_error", message, exit_code=1)))
        finally:
            self._io.restore()
            _restore_env(saved_env)

    def _execute(self, request: dict[str, Any]) -> dict[str, Any]:
        debug = bool(request.get("debug"))
        self._logger.setLevel(logging.DEBUG if debug else logging.INFO)
        config = request.get("config") or {}
        secrets = request.get("secrets") or {}
        terms = redaction_terms(secrets)
        inputs = request.get("inputs")
        ctx = Context(
            config=config,
            secrets=secrets,
            logger=self._logger,
            debug=debug,
            on_signal=lambda event: self._channel.send({"op": protocol.SIGNAL, "event": event}),
        )
        try:
            if debug:
                self._logger.debug("inputs: %s", preview(inputs, terms=terms))
            target = self._cache.resolve(request["entrypoint"], config, secrets)
            output = target(inputs, ctx)
            if hasattr(output, "__await__"):
                import asyncio

                output = asyncio.run(output)
            if output is None:
                output = {}
            if not isinstance(output, dict):
                message = (
                    f"the engram returned {type(output).__name__}, not a dict: return a JSON object "
                    'such as {"result": value}'
                )
                print(message, file=sys.stderr)
                return _failure(error_wire("serialization_error", message, exit_code=1))
            if debug:
                self._logger.debug("output: %s", preview(output, terms=terms))
            return {"op": protocol.RESULT, "phase": "Succeeded", "output": output, "exitCode": 0}
        except StructuredError as exc:
            _print_traceback(terms)
            return _failure(exc.to_wire(1), 1, exc.exit_class)
        except EntrypointError as exc:
            _print_traceback(terms)
            return _failure(error_wire(exc.error_type, str(exc), exit_code=1))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) and exc.code > 0 else 1
            return _failure(error_wire("execution_error", f"SystemExit: {exc.code}", exit_code=code), code)
        except BaseException as exc:
            _print_traceback(terms)
            return _failure(error_wire("execution_error", f"{type(exc).__name__}: {exc}", exit_code=1))
        finally:
            ctx.close()


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


def main(argv: list[str]) -> int:
    """Entry point: serve run requests until the engine closes the request pipe."""
    if len(argv) != 3:
        print("usage: python -m bobrapet.executors.local.worker <read-fd> <write-fd>", file=sys.stderr)
        return 2
    faulthandler.enable()  # a segfault's Python traceback goes to fd 2, i.e. the step log
    _die_with_engine()
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    Worker(_Channel(int(argv[1]), int(argv[2]))).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
