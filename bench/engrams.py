"""The trivial Python engrams of the benchmark workloads: what is measured is the engine.

``step`` returns ``n + 1``; ``join`` sums a list of numbers. Referenced from
``bench/workloads/catalog.yaml`` as ``bench.engrams:step`` and ``bench.engrams:join``
(imported from the current directory, the repository root).
"""

from __future__ import annotations

from typing import Any


def step(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """One unit of trivial work: ``{"n": inputs.n + 1}``."""
    return {"n": inputs.get("n", 0) + 1}


def join(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Fan-in: the sum of ``inputs["values"]``."""
    values = inputs.get("values") or []
    return {"n": sum(values), "count": len(values)}
