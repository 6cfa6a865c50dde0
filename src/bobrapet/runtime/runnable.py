"""A runnable: long-lived work the manager starts and stops with its controllers.

Invariants: :meth:`Runnable.start` is called once by :meth:`Manager.start
<bobrapet.runtime.manager.Manager.start>` before any controller reconciles (so reconcilers
may hand work to it at once); :meth:`Runnable.stop` is called once by :meth:`Manager.stop
<bobrapet.runtime.manager.Manager.stop>` after every controller stopped (nothing hands it
new work any more) and returns when the runnable's tasks have ended. Both are idempotent.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Runnable"]


class Runnable(Protocol):
    """Work that lives as long as the manager runs (e.g. the StepRun attempts of an engine)."""

    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
