"""The trivial Python engrams of the benchmark workloads: what is measured is the engine.

``step`` returns ``n + 1``; ``join`` sums a list of numbers; ``wait_sync``/``wait_async``
wait ``seconds`` (``time.sleep`` / ``await asyncio.sleep``, i.e. a step blocked on I/O) and
return ``n + 1`` (W6); ``make`` returns a string of ``size`` bytes and ``measure`` the length
of the string it gets (the ``payload`` workload and the serve soak: values above the inline
limit travel through storage). Referenced from ``bench/workloads/catalog.yaml`` as
``bench.engrams:<name>`` (imported from the current directory, the repository root).
"""

from __future__ import annotations

import time
from typing import Any


def step(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """One unit of trivial work: ``{"n": inputs.n + 1}``."""
    return {"n": inputs.get("n", 0) + 1}


def join(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Fan-in: the sum of ``inputs["values"]``."""
    values = inputs.get("values") or []
    return {"n": sum(values), "count": len(values)}


def wait_sync(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """W6: a step that blocks ``seconds`` (default 1) as a synchronous I/O call would."""
    time.sleep(float(inputs.get("seconds", 1)))
    return {"n": inputs.get("n", 0) + 1}


async def wait_async(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """W6: a step that awaits ``seconds`` (default 1) as an async I/O call would."""
    import asyncio  # here: the other workloads' workers stay as small as before

    await asyncio.sleep(float(inputs.get("seconds", 1)))
    return {"n": inputs.get("n", 0) + 1}


def make(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A string of ``size`` bytes (``{"big": "xxx...", "size": size}``)."""
    size = int(inputs.get("size", 0))
    return {"big": "x" * size, "size": size}


def measure(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """The length of ``inputs["data"]`` (hydrated from storage when it was offloaded)."""
    return {"len": len(inputs.get("data") or "")}
