"""The supervisor's side of a user-written impulse: a child process (:mod:`.child`) it starts,
serves and stops.

:class:`ChildImpulse` is an :class:`~bobrapet.impulses.delivery.ImpulseRuntime`: ``run`` starts
``python -m bobrapet.impulses.child`` in serve's working directory with the environment of
:func:`child_env` (reference §5.5: ``BUBU_IMPULSE_NAME``/``_NAMESPACE``,
``BUBU_TARGET_STORY_NAME``/``_NAMESPACE``, ``BUBU_DEBUG``, ``BUBU_STEP_CONFIG`` = the raw
``spec.with``, the ``BUBU_TRIGGER_*`` policy variables, env-mounted secrets), answers its
``trigger_story`` calls through the Impulse's :class:`~bobrapet.impulses.sink.TriggerSink` (so
dedupe, retry, throttle, counters and debug previews are the same as for built-in impulses,
and only serve writes to the store), and logs its output line by line.

Why a channel to serve rather than the store: the child needs no store code, admission or
engine imports (it starts in milliseconds), the throttle and the status counters stay in one
process, and when serve dies (even by SIGKILL) the channel closes and the child stops instead
of delivering on its own.

Invariants: ``run`` returns after ``stop`` once the child has exited (``{"op": "stop"}`` and
SIGTERM, then SIGKILL after ``grace`` seconds); a child that exits on its own is a crash
(:class:`ChildExited`, the supervisor restarts it) unless it exits 78 (its entrypoint cannot
be loaded: :class:`~bobrapet.impulses.config.ImpulseFatalError`); at most ``max_in_flight``
trigger calls of one child are served at once; the crash message carries the last lines the
child printed (secret values redacted).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bobrapet.execution.secrets import StepSecrets
from bobrapet.impulses.child import CHANNEL_FD_ENV, ENTRYPOINT_ENV, EXIT_FATAL, LINE_LIMIT
from bobrapet.impulses.config import ImpulseFatalError
from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.delivery import Deliver
from bobrapet.impulses.pacing import describe_error
from bobrapet.impulses.policy import ImpulsePolicy
from bobrapet.impulses.sink import Refused, TriggerSink
from bobrapet.sdk.redact import redact
from bobrapet.store.client import Resource
from bobrapet.triggers import DEFAULT_DECISION_TIMEOUT, TriggerError

GRACE = 10.0
MAX_IN_FLIGHT = 64
TAIL_LINES = 20
MAX_LOG_LINE = 8192


class ChildExited(Exception):
    """The impulse process ended without being asked to stop."""


def child_env(
    impulse: Resource, policy: ImpulsePolicy, secrets: StepSecrets, *, debug: bool, story: tuple[str, str]
) -> dict[str, str]:
    """The §5.5 environment of a user-written impulse (added to serve's own environment)."""
    meta = impulse.get("metadata") or {}
    spec = impulse.get("spec") or {}
    config = spec.get("with")
    env = {
        "BUBU_IMPULSE_NAME": str(meta.get("name") or ""),
        "BUBU_IMPULSE_NAMESPACE": str(meta.get("namespace") or "default"),
        "BUBU_TARGET_STORY_NAMESPACE": story[0],
        "BUBU_TARGET_STORY_NAME": story[1],
        "BUBU_DEBUG": "true" if debug else "false",
        "BUBU_STEP_CONFIG": json.dumps(config if isinstance(config, dict) else {}, separators=(",", ":")),
    }
    env.update(policy.env())
    env.update(secrets.env)
    return env


class ChildImpulse:
    """Runs ``entrypoint`` in a child process (see the module docstring)."""

    def __init__(
        self,
        entrypoint: str,
        context: ImpulseContext,
        sink: TriggerSink,
        env: Mapping[str, str],
        *,
        workdir: Path,
        python: str = sys.executable,
        grace: float = GRACE,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.entrypoint = entrypoint
        self.context = context
        self.sink = sink
        self.env = dict(env)
        self.workdir = workdir
        self.python = python
        self.grace = grace
        self.slots = asyncio.Semaphore(max_in_flight)
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.process: asyncio.subprocess.Process | None = None

    async def run(self, deliver: Deliver, stop: asyncio.Event) -> None:
        ours, theirs = socket.socketpair()
        try:
            env = {
                **os.environ,
                **self.env,
                CHANNEL_FD_ENV: str(theirs.fileno()),
                ENTRYPOINT_ENV: self.entrypoint,
            }
            process = await asyncio.create_subprocess_exec(
                self.python, "-m", "bobrapet.impulses.child",
                env=env, cwd=self.workdir, pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.process = process
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=LINE_LIMIT)
        tasks: set[asyncio.Task[Any]] = set()
        try:
            await self._send(writer, {"op": "hello", "secrets": self.context.secrets})
            assert process.stdout is not None
            tasks.add(asyncio.create_task(self._forward(process.stdout)))
            tasks.add(asyncio.create_task(self._serve(reader, writer)))
            await self._until_exit_or_stop(process, writer, stop)
        finally:
            await self._end(process)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()
        if stop.is_set():
            return
        self._raise_for(process.returncode)

    async def _until_exit_or_stop(
        self, process: asyncio.subprocess.Process, writer: asyncio.StreamWriter, stop: asyncio.Event
    ) -> None:
        exited = asyncio.ensure_future(process.wait())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if exited.done():
            return
        with contextlib.suppress(OSError, ConnectionError):
            await self._send(writer, {"op": "stop"})
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(exited, self.grace)
        except TimeoutError:
            self.context.log.warning("impulse process did not stop within %.0fs; killing it", self.grace)

    async def _end(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    def _raise_for(self, code: int | None) -> None:
        tail = redact(" | ".join(self.tail), self.context.redact_terms)
        said = f": {tail}" if tail else ""
        if code == EXIT_FATAL:
            raise ImpulseFatalError(f"entrypoint {self.entrypoint} cannot be loaded{said}")
        raise ChildExited(f"the impulse process exited with code {code}{said}")

    async def _forward(self, output: asyncio.StreamReader) -> None:
        """Log the child's output line by line (long lines cut)."""
        log = self.context.log
        while True:
            try:
                raw = await output.readline()
            except ValueError:  # a line over the reader's limit
                raw = await output.read(MAX_LOG_LINE)
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip()[:MAX_LOG_LINE]
            if line:
                self.tail.append(line)
                log.info("%s", redact(line, self.context.redact_terms))

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, message: Mapping[str, Any]) -> None:
        writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the child's requests (each in its own task, at most ``max_in_flight`` at once)."""
        pending: set[asyncio.Task[None]] = set()
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(request, dict) or request.get("op") != "trigger":
                    continue
                await self.slots.acquire()
                task = asyncio.create_task(self._answer(request, writer))
                pending.add(task)
                task.add_done_callback(pending.discard)
        finally:
            for task in pending:
                task.cancel()

    async def _answer(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        try:
            answer = await self._trigger(request)
            with contextlib.suppress(OSError, ConnectionError):
                await self._send(writer, {"id": request.get("id"), **answer})
        finally:
            self.slots.release()

    async def _trigger(self, request: dict[str, Any]) -> dict[str, Any]:
        inputs = request.get("inputs")
        key = request.get("key")
        wait = DEFAULT_DECISION_TIMEOUT if request.get("wait", True) else None
        if not isinstance(inputs, dict) or (key is not None and not isinstance(key, str)):
            return {"ok": False, "error": "inputs must be a JSON object and key a string", "status": 400}
        try:
            accepted = await self.sink.trigger(inputs, key, wait=wait)
        except Refused as refused:
            return {
                "ok": False,
                "error": refused.message,
                "status": refused.code,
                "retryable": refused.code >= 500,
            }
        except TriggerError as exc:
            return {"ok": False, "error": str(exc), "retryable": exc.retryable}
        except Exception as exc:
            return {"ok": False, "error": describe_error(exc, None, self.context), "retryable": True}
        if accepted.decision == "Rejected":
            message = f"storytrigger {accepted.story_trigger} was rejected: {accepted.message}"
            return {"ok": False, "error": message, "status": 422}
        return {"ok": True, "result": accepted.to_json()}
