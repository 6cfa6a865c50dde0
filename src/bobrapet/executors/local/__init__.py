"""Local execution: a warm pool of Python worker processes and command subprocesses.

``LocalExecutor`` is loaded lazily so that ``python -m bobrapet.executors.local.worker``
(which imports this package first) stays free of asyncio and the engine's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bobrapet.executors.local.executor import LocalExecutor

__all__ = ["LocalExecutor"]


def __getattr__(name: str) -> Any:
    if name == "LocalExecutor":
        from bobrapet.executors.local.executor import LocalExecutor

        return LocalExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
