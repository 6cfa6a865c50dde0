"""Engrams calling ctx.effect_once (the executor's effect-frame tests)."""

from __future__ import annotations

import os
from typing import Any

from bobrapet.sdk import Context


def charge(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    if inputs.get("pidfile"):
        with open(inputs["pidfile"], "w") as fh:
            fh.write(str(os.getpid()))
    result = ctx.effect_once(
        "charge", lambda: {"n": inputs.get("n", 1)}, lease_seconds=inputs.get("lease", 600)
    )
    return {"performed": result.performed, "value": result.value}


async def charge_async(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    async def perform() -> dict[str, Any]:
        return {"async": True}

    result = await ctx.effect_once_async("charge", perform)
    return {"performed": result.performed, "value": result.value}


def declined(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    def perform() -> None:
        raise RuntimeError("card declined")

    ctx.effect_once("charge", perform)
    return {}
