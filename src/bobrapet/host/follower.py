"""Following runs that a running ``bobrapet serve`` of the home drives.

A command on a home whose serve is up (:func:`bobrapet.host.serve_file.live`) does not start
an engine of its own: it writes to the shared store (the run is created there as usual) and
follows the serve engine's progress through a :class:`RunFollower` — a manager with the
StoryRun and StepRun caches, no controllers, no worker pool, no lease — so it starts fast
and never competes with the serve engine for steps.

Invariant: while a follower waits, the serve's lease is checked at least every
:data:`CHECK_EVERY` seconds; once it is gone (the serve stopped or died) the wait raises
:class:`ServeGone`, so the caller can drive the run itself instead of waiting forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from bobrapet.api.kinds import STEP_RUN, STORY_RUN
from bobrapet.host.embedded import ControlPlane
from bobrapet.host.runs_view import RunsView, steps_of_run
from bobrapet.host.serve_file import ServeRecord, is_live
from bobrapet.runtime.manager import Manager

CHECK_EVERY = 0.5


class ServeGone(Exception):
    """The serve process driving the followed runs is no longer running."""


class RunFollower(RunsView):
    """Async context manager: the home's runs as the serve engine drives them."""

    def __init__(self, plane: ControlPlane, serve: ServeRecord) -> None:
        super().__init__()
        self.plane = plane
        self.serve = serve

    async def __aenter__(self) -> RunFollower:
        manager = Manager(self.plane.client, settle=0.05, resync_period=None)
        self._story_runs = manager.cache(STORY_RUN)
        self._step_runs = manager.cache(STEP_RUN)
        self._step_runs.add_index(self.by_run_index, steps_of_run)
        await manager.start()
        self.manager = manager
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.manager is not None:
            await self.manager.stop()
            self.manager = None

    async def run_until(self, done: Callable[[], bool], *, timeout: float | None = None) -> bool:
        """:meth:`RunsView.run_until`, raising :class:`ServeGone` once the serve stopped."""
        checked = [time.monotonic()]

        def done_or_gone() -> bool:
            if done():
                return True
            now = time.monotonic()
            if now - checked[0] >= CHECK_EVERY:
                checked[0] = now
                if not is_live(self.plane.home, self.serve):
                    raise ServeGone(f"the bobrapet serve process (pid {self.serve.pid}) stopped")
            return False

        return await super().run_until(done_or_gone, timeout=timeout)
