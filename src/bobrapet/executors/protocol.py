"""The executor seam: how controllers hand a step attempt to whatever runs it.

Controllers and the engine host depend on :class:`Executor` only, never on a concrete
executor: :class:`bobrapet.executors.local.LocalExecutor` (warm worker processes on this
machine) is one implementation; a Kubernetes Job executor is meant to be another.

Contract (what every implementation guarantees):

* :meth:`Executor.reserve` takes an execution slot for the attempt *now* when one is free
  (``True``: :meth:`Executor.run` starts it at once, so the caller may record ``Running``
  first); ``False`` means the attempt will wait for capacity once ``run`` is called.
  :meth:`Executor.release` gives back a reservation whose ``run`` will not be called.
* :meth:`Executor.run` executes one attempt to completion and *returns* its outcome as an
  :class:`~bobrapet.execution.request.ExecutionResult`; engram failures, timeouts and
  cancellations are results, never exceptions. ``on_started`` (for an attempt that was not
  reserved) is awaited once the attempt got its slot, right before its code starts; when it
  returns ``False`` nothing runs and the attempt is reported canceled.
* :meth:`Executor.cancel` stops the attempt with that key wherever it is (reserved, queued
  or running); unknown keys are ignored. Its ``run`` reports a canceled ``Failed`` result.
* :attr:`Executor.capacity` is ``(slots in use, total slots)``, for people (messages).
* :meth:`Executor.start` prepares the executor (e.g. warm processes); :meth:`Executor.close`
  shuts it down: in-flight attempts end as ``Failed``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from bobrapet.execution.request import ExecutionRequest, ExecutionResult

__all__ = ["Executor", "OnStarted"]

#: Called once an attempt that had to wait has its slot; ``False`` means "do not run it".
OnStarted = Callable[[], Awaitable[bool]]


class Executor(Protocol):
    """Runs step attempts (see the module docstring for the contract)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    @property
    def capacity(self) -> tuple[int, int]: ...

    def reserve(self, request: ExecutionRequest) -> bool: ...

    def release(self, key: str) -> None: ...

    async def run(
        self, request: ExecutionRequest, on_started: OnStarted | None = None
    ) -> ExecutionResult: ...

    async def cancel(self, key: str) -> None: ...
