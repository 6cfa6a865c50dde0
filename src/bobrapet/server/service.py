"""The ``bobrapet serve`` process: the engine of a home and its HTTP API on one event loop.

Start-up: the listening socket is bound first (a busy port or a refused address fails
before anything starts), the API answers at once (``/readyz`` is 503 until the engine is
up), then the engine starts with no scope (it drives every run of the home), then the
extensions' long-lived tasks (:class:`Extensions`) and the full garbage collections at quiet
moments (:mod:`bobrapet.runtime.collector`), then ``<home>/serve.json`` is written
(:mod:`bobrapet.host.serve_file`) and ``on_ready`` is called.

Shutdown (SIGTERM, SIGINT or :meth:`Service.request_stop`): ``/readyz`` turns 503 and
``serve.json`` is removed (new CLI commands start their own engine), the listener closes
and open watches end (requests in flight get a few seconds), the extensions' tasks are
cancelled, then the engine stops launching steps and lets the running ones finish for up
to ``grace`` seconds; steps still running then are canceled and left claimed for the next
engine to take over. :meth:`Service.run` then returns normally (exit code 0).

Invariants: without a token the service binds only loopback addresses
(:func:`check_bind`); the token is never written to disk. An extension task that ends or
fails is logged and the service goes on; the HTTP server ending on its own is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import APIRouter
from starlette.types import ASGIApp

from bobrapet.api.timestamps import format_timestamp
from bobrapet.host import serve_file
from bobrapet.host.embedded import ControlPlane
from bobrapet.host.engine_host import EngineHost
from bobrapet.host.impulses import ImpulseHost
from bobrapet.host.serve_file import ServeRecord
from bobrapet.runtime import metrics
from bobrapet.runtime.collector import QuietCollections
from bobrapet.runtime.foreground import Foreground
from bobrapet.server.app import build_app
from bobrapet.server.context import ApiContext
from bobrapet.server.impulses import PREFIX as IMPULSES_PREFIX
from bobrapet.server.impulses import ImpulseEndpoint

log = logging.getLogger("bobrapet.server.service")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_GRACE = 30.0
#: Longest wait for HTTP requests in flight once shutdown began.
HTTP_DRAIN = 5.0
#: Seconds an idle keep-alive connection stays open (uvicorn's 5 s default closes connections
#: that webhook senders are about to reuse under load: the request then meets a reset).
KEEP_ALIVE = 75


class ServeError(Exception):
    """The service cannot start as asked (a usage problem: exit code 2)."""


@dataclass(frozen=True)
class ServeOptions:
    home: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    grace: float = DEFAULT_GRACE
    workers: int | None = None
    workdir: Path | None = None


@dataclass
class ServeContext:
    """What an extension's long-lived task gets: the store, the engine and the API state."""

    options: ServeOptions
    plane: ControlPlane
    engine: EngineHost
    api: ApiContext


Task = Callable[[ServeContext], Coroutine[Any, Any, None]]


@dataclass
class Extensions:
    """Endpoints and long-lived tasks other parts add to the service.

    Routers are served with the resource API (same ``Status`` errors, same bearer token but
    under :data:`~bobrapet.server.auth.OPEN_PREFIXES`); mounts are plain ASGI applications
    served under their path prefix before the API's routing (hot paths; they answer their
    own errors); each task is started once the engine is up and cancelled at shutdown,
    before the engine drains.
    """

    routers: list[APIRouter] = field(default_factory=list)
    mounts: dict[str, ASGIApp] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)


def default_extensions() -> Extensions:
    """The extensions every ``bobrapet serve`` runs: the one place they are registered.

    Impulses: the supervisor that runs every Impulse of the home (:mod:`bobrapet.host.impulses`)
    and the webhook endpoint ``POST /impulses/<namespace>/<impulse>`` it answers.
    """
    impulses = ImpulseHost()

    async def run_impulses(context: ServeContext) -> None:
        await impulses.run(context.plane, context.options.workdir)

    return Extensions(mounts={IMPULSES_PREFIX: ImpulseEndpoint(impulses.endpoint)}, tasks=[run_impulses])


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without a token (anyone on the network could drive the home)."""
    if not is_loopback(host) and not token:
        raise ServeError(
            f"--host {host}: binding an address other than loopback requires --token TOKEN "
            "(every request but /healthz and /readyz must then carry `Authorization: Bearer TOKEN`)"
        )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (ServeError, naming the address, when it cannot be had)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on sockets that say they
    # are TCP. With it on, a response written in two parts (head, body) waits for the
    # client's delayed ACK: 40 ms added to every answer.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
        return sock
    except OSError as err:
        sock.close()
        reason = err.strerror or str(err)
        hint = " (choose another with --port, or stop the process using it)" if err.errno == 98 else ""
        raise ServeError(f"cannot listen on {host}:{port}: {reason}{hint}") from None


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Service:
    """One ``bobrapet serve`` process (see the module docstring)."""

    def __init__(
        self,
        options: ServeOptions,
        *,
        extensions: Extensions | None = None,
        on_ready: Callable[[ServeRecord, float], None] | None = None,
    ) -> None:
        self.options = options
        self.extensions = extensions if extensions is not None else default_extensions()
        self.on_ready = on_ready
        self.record: ServeRecord | None = None
        #: HTTP writes are foreground work the engine's reconciles yield to.
        self.foreground = Foreground()
        self._stop = asyncio.Event()
        self._ready = False

    def request_stop(self) -> None:
        """Begin the graceful shutdown (what SIGTERM and SIGINT do)."""
        self._stop.set()

    async def run(self) -> None:
        """Serve until asked to stop; return once everything has shut down."""
        options = self.options
        check_bind(options.host, options.token)
        started = time.monotonic()
        listener = bind(options.host, options.port)
        port = int(listener.getsockname()[1])
        async with ControlPlane(options.home) as plane:
            await plane.open()
            recorder = metrics.enable()
            client = plane.request_client()
            api = ApiContext(client=client, ready=lambda: self._ready, metrics=recorder)
            app = build_app(
                api,
                token=options.token,
                extra_routers=self.extensions.routers,
                mounts=self.extensions.mounts,
                foreground=self.foreground,
            )
            config = uvicorn.Config(
                app,
                lifespan="off",
                log_config=None,
                log_level="warning",
                access_log=False,
                timeout_keep_alive=KEEP_ALIVE,
                timeout_graceful_shutdown=max(1, int(min(HTTP_DRAIN, options.grace))),
            )
            server = _Server(config)
            http = asyncio.create_task(server.serve(sockets=[listener]), name="bobrapet-serve-http")

            async def stop_http() -> None:
                """Stop accepting, end watches, let requests in flight finish (bounded)."""
                self._ready = False
                api.stopping.set()
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await http

            try:
                await self._serve_engine(plane, api, recorder, http, stop_http, started, port)
            finally:
                await stop_http()
                client.close()
                listener.close()

    async def _serve_engine(
        self,
        plane: ControlPlane,
        api: ApiContext,
        recorder: metrics.Metrics,
        http: asyncio.Task[None],
        stop_http: Callable[[], Awaitable[None]],
        started: float,
        port: int,
    ) -> None:
        options = self.options
        engine = EngineHost(
            plane, workers=options.workers, workdir=options.workdir, foreground=self.foreground
        )
        await engine.__aenter__()
        tasks: list[asyncio.Task[None]] = []
        try:
            recorder.observe_state(
                "bobrapet_storyrun_queue_depth",
                "StoryRuns holding steps queued by a concurrency limit.",
                engine.queued_runs,
            )
            recorder.observe_state(
                "bobrapet_storyrun_steps_active",
                "StepRuns running or claimed and waiting for an execution slot.",
                engine.active_steps,
            )
            context = ServeContext(options, plane, engine, api)
            tasks = [asyncio.create_task(task(context)) for task in self.extensions.tasks]
            tasks.append(asyncio.create_task(QuietCollections(self.foreground).run(), name="bobrapet-gc"))
            for started_task in tasks:
                started_task.add_done_callback(_report_end)
            assert engine.lease is not None
            self.record = ServeRecord(
                address=_url(options.host, port),
                host=options.host,
                port=port,
                pid=os.getpid(),
                lease=engine.lease.id,
                started_at=format_timestamp(datetime.now(UTC), "s"),
            )
            serve_file.write(plane.home, self.record)
            self._ready = True
            if self.on_ready is not None:
                self.on_ready(self.record, time.monotonic() - started)
            with _signals(self.request_stop):
                stopping = asyncio.ensure_future(self._stop.wait())
                await asyncio.wait({stopping, http}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
            if http.done() and not self._stop.is_set():
                failure = None if http.cancelled() else http.exception()
                raise RuntimeError(f"the HTTP server stopped unexpectedly: {failure or 'no error given'}")
        finally:
            self._ready = False
            serve_file.remove(plane.home)
            await stop_http()
            await _cancel(tasks)
            await engine.stop(drain=options.grace)


def _report_end(task: asyncio.Task[None]) -> None:
    """An extension's task ended before shutdown: say so (the service keeps serving)."""
    if task.cancelled():
        return
    failure = task.exception()
    if failure is not None:
        log.error("a serve task ended with an error: %s", failure, exc_info=failure)


async def _cancel(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.contextmanager
def _signals(handler: Callable[[], None]) -> Generator[None, None, None]:
    """SIGTERM and SIGINT call ``handler`` while inside (main thread only)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests): request_stop() is the way out
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
