"""Small Python engrams for the example Stories.

Each engram is a plain function ``fn(inputs, ctx) -> dict``: ``inputs`` is the step's
resolved ``with`` (templates already evaluated, so numbers are numbers), ``ctx`` is the
SDK context (config, logger, ...). The returned dict becomes the step's output
(``{{ steps.<name>.output }}``); raising an exception fails the step with its message.
They are referenced from EngramTemplates in ``examples/catalog.yaml`` as
``spec.entrypoint: "examples.engrams.basics:<fn>"``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any


def greet(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Say hello to ``inputs["name"]`` (``world`` when it is missing or empty)."""
    name = inputs.get("name") or "world"
    return {"greeting": f"Hello, {name}!"}


def square(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Square the number ``inputs["n"]``."""
    n = inputs.get("n", 0)
    return {"n": n, "square": n * n}


def total(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Sum the ``square`` field of every item of ``inputs["parts"]``."""
    parts = inputs.get("parts") or []
    return {"total": sum(p.get("square", 0) for p in parts), "count": len(parts)}


def echo(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Return the inputs unchanged."""
    return dict(inputs)


def charge(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Pretend to charge ``inputs["amount"]``; raise (fail the step) when ``inputs["fail"]`` is true."""
    if inputs.get("fail"):
        raise RuntimeError("card declined")
    return {"charged": inputs.get("amount", 0)}


def sign(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """HMAC-SHA256 of ``inputs["message"]`` with the ``signing`` secret's ``key``."""
    key = ctx.secrets["signing"]["key"]
    if os.environ.get("SIGNING_key") != key:  # noqa: SIM112 - also a variable: <envPrefix><key>
        raise RuntimeError("SIGNING_key is not set")
    digest = hmac.new(key.encode(), str(inputs.get("message", "")).encode(), hashlib.sha256)
    return {"signature": digest.hexdigest()}
