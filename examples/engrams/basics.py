"""Small engrams for the examples: each is ``run(inputs, ctx) -> dict``."""

from __future__ import annotations

from typing import Any


def greet(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Say hello to ``inputs["name"]``."""
    name = inputs.get("name") or "world"
    return {"greeting": f"Hello, {name}!"}


def square(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Square ``inputs["n"]``."""
    n = inputs.get("n", 0)
    return {"n": n, "square": n * n}


def total(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Sum the ``square`` field of every item of ``inputs["parts"]``."""
    parts = inputs.get("parts") or []
    return {"total": sum(p.get("square", 0) for p in parts), "count": len(parts)}


def echo(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Return the inputs unchanged."""
    return dict(inputs)
