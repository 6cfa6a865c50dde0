"""A runnable: long-lived work the manager starts and stops with its controllers.

Invariants: :meth:`Runnable.start` is called once by :meth:`Manager.start
<bobrapet.runtime.manager.Manager.start>` before any controller reconciles (so reconcilers
may hand work to it at once); :meth:`Runnable.stop` is called once by :meth:`Manager.stop
<bobrapet.runtime.manager.Manager.stop>` after every controller stopped (nothing hands it
new work any more) and returns when the runnable's tasks have ended. Both are idempotent.
A runnable that can finish its work instead of abandoning it is :class:`Drainable`: an
engine leaving gracefully awaits its ``drain()`` (bounded by a grace period) before ``stop()``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Drainable", "Runnable"]


class Runnable(Protocol):
    """Work that lives as long as the manager runs (e.g. the StepRun attempts of an engine)."""

    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class Drainable(Protocol):
    """A runnable whose ``drain()`` returns once its current work has finished."""

    async def drain(self) -> None: ...
