"""A user-written impulse in its own process: ``python -m bobrapet.impulses.child``.

The supervisor (:mod:`bobrapet.impulses.process`) starts this module with the ImpulseTemplate's
``entrypoint`` (``module:callable``, importable from serve's working directory or
``PYTHONPATH``, as engrams are) and the ``BUBU_*`` environment of reference §5.5. The callable
is called with a :class:`Context`; a plain function runs in a thread, an ``async def`` (or a
callable returning an awaitable) on the event loop. It should run until ``ctx.stopping``::

    def watch_folder(ctx):
        while not ctx.sleep(5):
            for name in new_files(ctx.config["path"]):
                ctx.trigger_story({"file": name}, key=name)

``ctx.trigger_story(inputs, key=None)`` (``await ctx.trigger_story_async(...)`` in async code)
asks serve to store a StoryTrigger for the Impulse's Story, under the Impulse's merged
delivery policy (dedupe mode and key template), retry and throttle (§5.4): with
``mode: none`` a given key still deduplicates (token mode), so the same key starts the Story
once. It returns a :class:`TriggerResult` once the trigger is stored and decided (``wait``),
and raises :class:`TriggerFailed` (``retryable`` says whether calling again may succeed).

Invariants: standard library only (the process starts fast and imports nothing of the
engine); the channel to serve is the socket named by ``BOBRAPET_IMPULSE_CHANNEL_FD`` (JSON
lines), so user output on stdout/stderr never mixes with it; the process exits 78 when the
entrypoint cannot be loaded (fatal: the supervisor does not restart it), 1 when the callable
raised, 0 when it returned; SIGTERM or a closed channel (serve is gone) sets
``ctx.stopping``, and a callable still running :data:`STOP_GRACE` seconds after a closed
channel is abandoned (the process exits).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import itertools
import json
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CHANNEL_FD_ENV = "BOBRAPET_IMPULSE_CHANNEL_FD"
ENTRYPOINT_ENV = "BOBRAPET_IMPULSE_ENTRYPOINT"
EXIT_FATAL = 78
EXIT_CRASHED = 1
STOP_GRACE = 5.0
LINE_LIMIT = 64 * 1024 * 1024
LOGGER_NAME = "bobrapet.impulse"


class TriggerFailed(Exception):
    """serve did not store the trigger (``retryable``: calling again may succeed)."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status


@dataclass(frozen=True)
class TriggerResult:
    """A stored trigger: its name, the decision (``None`` if not awaited) and the StoryRun."""

    story_trigger: str
    namespace: str
    decision: str | None
    story_run: str | None


def _env_flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class Channel:
    """JSON-line requests to serve, answered by id."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.closed = asyncio.Event()

    async def send(self, message: Mapping[str, Any]) -> None:
        self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        await self.writer.drain()

    async def request(self, message: Mapping[str, Any]) -> dict[str, Any]:
        if self.closed.is_set():
            raise TriggerFailed("serve is gone; the impulse is stopping", retryable=True)
        number = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[number] = future
        try:
            await self.send({**message, "id": number})
            return await future
        finally:
            self.waiting.pop(number, None)

    async def read(self) -> dict[str, Any] | None:
        line = await self.reader.readline()
        if not line:
            return None
        value = json.loads(line)
        return value if isinstance(value, dict) else {}

    async def serve(self, on_stop: Any) -> None:
        """Route answers to their requests until the channel closes."""
        try:
            while (message := await self.read()) is not None:
                if message.get("op") == "stop":
                    on_stop()
                    continue
                future = self.waiting.get(int(message.get("id") or 0))
                if future is not None and not future.done():
                    future.set_result(message)
        except (OSError, ValueError):
            pass
        finally:
            self.closed.set()
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(
                        TriggerFailed("serve is gone; the impulse is stopping", retryable=True)
                    )
            on_stop()


class Context:
    """What a user-written impulse gets (see the module docstring)."""

    def __init__(
        self,
        channel: Channel,
        loop: asyncio.AbstractEventLoop,
        *,
        config: dict[str, Any],
        secrets: dict[str, dict[str, str]],
        env: Mapping[str, str],
    ) -> None:
        self._channel = channel
        self._loop = loop
        self._stop_flag = threading.Event()
        #: Set (on the event loop) when the impulse should stop.
        self.stop_event = asyncio.Event()
        self.config = config
        self.secrets = secrets
        self.name = env.get("BUBU_IMPULSE_NAME", "")
        self.namespace = env.get("BUBU_IMPULSE_NAMESPACE", "")
        self.story = env.get("BUBU_TARGET_STORY_NAME", "")
        self.story_namespace = env.get("BUBU_TARGET_STORY_NAMESPACE", "")
        self.debug = _env_flag(env.get("BUBU_DEBUG"))
        self.logger = logging.getLogger(LOGGER_NAME)

    # -- stopping -------------------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop_flag.set()
        self.stop_event.set()

    @property
    def stopping(self) -> bool:
        """Whether the impulse was asked to stop (serve stops, the Impulse changed or went)."""
        return self._stop_flag.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep (in a sync impulse) unless asked to stop first; returns :attr:`stopping`."""
        return self._stop_flag.wait(max(0.0, seconds))

    async def wait_stop(self, timeout: float | None = None) -> bool:
        """Wait (in an async impulse) until asked to stop, at most ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.stop_event.wait()
        return self.stopping

    # -- triggers -------------------------------------------------------------------------------
    async def trigger_story_async(
        self, inputs: Mapping[str, Any] | None = None, key: str | None = None, *, wait: bool = True
    ) -> TriggerResult:
        """Store a StoryTrigger for ``inputs`` (see the module docstring)."""
        if key is not None and not isinstance(key, str):
            raise TypeError(f"key must be a string, got {type(key).__name__}")
        try:
            payload = json.loads(json.dumps(dict(inputs or {}), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise TriggerFailed(f"inputs must be a JSON object: {exc}") from None
        answer = await self._channel.request({"op": "trigger", "inputs": payload, "key": key, "wait": wait})
        if not answer.get("ok"):
            raise TriggerFailed(
                str(answer.get("error") or "the trigger was not stored"),
                retryable=bool(answer.get("retryable")),
                status=answer.get("status"),
            )
        result = answer.get("result") or {}
        decision = result.get("decision")
        return TriggerResult(
            str(result.get("storyTrigger")),
            str(result.get("namespace")),
            None if decision == "Pending" else decision,
            result.get("storyRun"),
        )

    def trigger_story(
        self, inputs: Mapping[str, Any] | None = None, key: str | None = None, *, wait: bool = True
    ) -> TriggerResult:
        """:meth:`trigger_story_async` for plain (sync) impulses."""
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is self._loop:
                raise RuntimeError("in an async impulse use `await ctx.trigger_story_async(...)`")
        future = asyncio.run_coroutine_threadsafe(
            self.trigger_story_async(inputs, key, wait=wait), self._loop
        )
        return future.result()


def load(entrypoint: str) -> Any:
    module_name, _, attribute = entrypoint.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"entrypoint {entrypoint!r} must be module:callable")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{entrypoint} is not callable")
    return target


async def _call(target: Any, ctx: Context) -> None:
    if inspect.iscoroutinefunction(target):
        await target(ctx)
        return
    result = await asyncio.to_thread(target, ctx)
    if inspect.isawaitable(result):
        await result


async def _abandon_after_close(channel: Channel) -> None:
    await channel.closed.wait()
    await asyncio.sleep(STOP_GRACE)
    logging.getLogger(LOGGER_NAME).warning("serve is gone and the impulse did not stop; exiting")
    os._exit(0)


async def run(env: Mapping[str, str]) -> int:
    """Run the impulse named by ``env``; the process exit code."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(fileno=int(env[CHANNEL_FD_ENV]))
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=LINE_LIMIT)
    channel = Channel(reader, writer)
    hello = await channel.read() or {}
    config = json.loads(env.get("BUBU_STEP_CONFIG") or "{}")
    ctx = Context(
        channel,
        loop,
        config=config if isinstance(config, dict) else {},
        secrets=hello.get("secrets") or {},
        env=env,
    )
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, ctx.request_stop)
    reading = asyncio.create_task(channel.serve(ctx.request_stop))
    watchdog = asyncio.create_task(_abandon_after_close(channel))
    entrypoint = env.get(ENTRYPOINT_ENV, "")
    try:
        target = load(entrypoint)
    except Exception as exc:
        print(
            f"impulse entrypoint {entrypoint} cannot be loaded: {type(exc).__name__}: {exc}", file=sys.stderr
        )
        return EXIT_FATAL
    try:
        await _call(target, ctx)
    except Exception:
        traceback.print_exc()
        return EXIT_CRASHED
    finally:
        watchdog.cancel()
        reading.cancel()
        writer.close()
    return 0


def main() -> int:
    debug = _env_flag(os.environ.get("BUBU_DEBUG"))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(run(dict(os.environ)))


if __name__ == "__main__":
    sys.exit(main())
