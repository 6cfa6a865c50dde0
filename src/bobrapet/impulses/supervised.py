"""One supervised impulse runtime: built, run, restarted after a crash with capped back-off.

Invariants:

* The runtime is built by the given function, then ``run(deliver, stop)``; a build that
  raises, or a run that raises :class:`~bobrapet.impulses.config.ImpulseFatalError`, is fatal:
  reported (``InvalidConfiguration``) and never retried — only a new spec (a new supervisor
  entry) tries again.
* Any other failure, or ``run`` returning before ``stop``, is a crash: reported
  (``ExecutionFailed``, with the error and the delay) and the runtime is built again after
  ``base * 2**n`` seconds, capped at ``cap``; a runtime that ran ``stable`` seconds before
  crashing starts the back-off over.
* Every state is reported through ``on_report`` (the ``Listening`` condition): listening
  when a runtime has been built and runs. :attr:`Supervised.runtime` is the running instance
  (``None`` between crashes, after a fatal error, after stop).
* :meth:`Supervised.stop` sets ``stop``, lets the runtime finish the delivery in flight for
  up to ``grace`` seconds, then cancels it; it returns when the task has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from bobrapet.api.conditions import Reason
from bobrapet.impulses.config import ImpulseFatalError
from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.delivery import Deliver, ImpulseRuntime
from bobrapet.impulses.pacing import Backoff, describe_error, sleep_or_stop
from bobrapet.impulses.status import RuntimeReport
from bobrapet.sdk.redact import redact

RESTART_BASE = 1.0
RESTART_MAX = 60.0
STABLE_AFTER = 60.0
STOP_GRACE = 10.0

Report = Callable[[RuntimeReport], None]


class Supervised:
    """Runs the runtime ``build()`` makes until :meth:`stop` (see the module docstring)."""

    def __init__(
        self,
        build: Callable[[], ImpulseRuntime],
        deliver: Deliver,
        context: ImpulseContext,
        on_report: Report,
        *,
        generation: int | None = None,
        base: float = RESTART_BASE,
        cap: float = RESTART_MAX,
        stable: float = STABLE_AFTER,
    ) -> None:
        self.build = build
        self.deliver = deliver
        self.context = context
        self.on_report = on_report
        self.generation = generation
        self.backoff = Backoff(base, cap)
        self.stable = stable
        self.runtime: ImpulseRuntime | None = None
        self.restarts = 0
        self.last: RuntimeReport | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def log(self) -> logging.Logger:
        return self.context.log

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"impulse-{self.context.identity}")

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def stop(self, grace: float = STOP_GRACE) -> None:
        self._stop.set()
        task = self._task
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            self.log.warning("impulse runtime did not stop within %.0fs; cancelling it", grace)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            self.runtime = None

    def _report(self, listening: bool, reason: str, message: str) -> None:
        self.last = RuntimeReport(listening, reason, message, self.generation)
        self.on_report(self.last)

    async def _loop(self) -> None:
        clock = self.context.clock
        while not self._stop.is_set():
            try:
                runtime = self.build()
            except Exception as exc:
                self._fatal(exc)
                return
            self.runtime = runtime
            started = clock.monotonic()
            running = "runtime running" + (f" (restart {self.restarts})" if self.restarts else "")
            self._report(True, Reason.LISTENING, running)
            try:
                await runtime.run(self.deliver, self._stop)
            except ImpulseFatalError as exc:
                self._fatal(exc)
                return
            except Exception as exc:
                failure = describe_error(exc, None, self.context)
                self.log.error("impulse runtime crashed: %s", failure, exc_info=exc)
            else:
                if self._stop.is_set():
                    return
                failure = "the runtime ended without being asked to stop"
            self.runtime = None
            if clock.monotonic() - started >= self.stable:
                self.backoff.succeeded()
            delay = self.backoff.failed()
            self.restarts += 1
            self._report(
                False, Reason.EXECUTION_FAILED, f"runtime crashed: {failure}; restarting in {delay:.0f}s"
            )
            self.log.warning("impulse runtime crashed: %s; restarting in %.1fs", failure, delay)
            if await sleep_or_stop(clock, delay, self._stop):
                return

    def _fatal(self, exc: BaseException) -> None:
        self.runtime = None
        if isinstance(exc, ImpulseFatalError):
            message = redact(str(exc), self.context.redact_terms)
        else:
            message = describe_error(exc, None, self.context)
        self._report(False, Reason.INVALID_CONFIGURATION, message)
        self.log.error("impulse cannot run: %s", message)
