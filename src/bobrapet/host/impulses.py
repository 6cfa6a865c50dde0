"""The impulses of a ``bobrapet serve`` process: the supervisor on the home's store, for as
long as serve runs.

:meth:`ImpulseHost.run` is a long-lived task: it starts the
:class:`~bobrapet.impulses.supervisor.ImpulseSupervisor` on the engine's store client (the
StoryTriggers it stores are decided by the engine's StoryTrigger controller in the same
process), waits until cancelled, then stops every runtime (child processes get SIGTERM) and
flushes their status. :meth:`ImpulseHost.endpoint` serves the webhook route.

Invariants: while the supervisor is not running (starting, stopping) every endpoint lookup is
a 503 naming why, never a 404 for an Impulse that exists. The ``bobrapet.impulses`` loggers
print to serve's stderr at INFO (runtime starts and crashes, a user impulse's output, the
previews of an Impulse with ``spec.execution.debug``), one line each, prefixed ``impulse``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from bobrapet.api.errors import StatusError
from bobrapet.host.embedded import ControlPlane
from bobrapet.impulses.supervisor import Endpoint, ImpulseSupervisor

LOGGER = "bobrapet.impulses"


def log_to_stderr() -> None:
    """Make the impulses' INFO lines visible on serve's stderr (once per process)."""
    logger = logging.getLogger(LOGGER)
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("impulse %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class ImpulseHost:
    """Owns the supervisor of one serve process."""

    def __init__(self) -> None:
        self.supervisor: ImpulseSupervisor | None = None

    async def run(self, plane: ControlPlane, workdir: Path | None = None) -> None:
        """Supervise the home's Impulses until cancelled."""
        log_to_stderr()
        supervisor = ImpulseSupervisor(
            plane.client, workdir=workdir or Path.cwd(), offload_inputs=plane.submission_offload()
        )
        await supervisor.start()
        self.supervisor = supervisor
        try:
            await asyncio.Event().wait()
        finally:
            self.supervisor = None
            await supervisor.stop()

    def endpoint(self, namespace: str, name: str) -> Endpoint:
        supervisor = self.supervisor
        if supervisor is None:
            raise StatusError(
                "impulses are not running (bobrapet serve is starting or stopping); retry shortly",
                reason="ServiceUnavailable",
                code=503,
            )
        return supervisor.endpoint(namespace, name)
