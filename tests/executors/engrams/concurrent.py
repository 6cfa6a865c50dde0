"""Engrams for the concurrency tests: each records when its code started and ended."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from bobrapet.sdk import Context


def sleep_sync(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    start = time.time()
    time.sleep(float(inputs.get("seconds", 1)))
    return {"start": start, "end": time.time(), "pid": os.getpid()}


async def sleep_async(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    start = time.time()
    await asyncio.sleep(float(inputs.get("seconds", 1)))
    return {"start": start, "end": time.time(), "pid": os.getpid()}


def talk_sync(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Prints, writes to stderr and logs ``tag`` lines, interleaved with other steps."""
    tag = inputs["tag"]
    for i in range(10):
        print(f"{tag} line {i}")
        print(f"{tag} err {i}", file=sys.stderr)
        ctx.logger.info("%s via logger %d", tag, i)
        time.sleep(0.02)
    return {"pid": os.getpid()}


async def talk_async(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    tag = inputs["tag"]
    for i in range(10):
        print(f"{tag} line {i}")
        ctx.logger.info("%s via logger %d", tag, i)
        await asyncio.sleep(0.02)
    return {"pid": os.getpid()}


def _environment(ctx: Context) -> dict[str, Any]:
    return {
        "environ": os.environ.get("BUBU_STEPRUN_NAME"),
        "getenv": os.getenv("BUBU_STEPRUN_NAME"),
        "ctx": ctx.step_run,
        "own": os.environ.get("STEP_WRITE"),
        "pid": os.getpid(),
    }


def env_sync(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Writes its own variable, waits for the other step to run, then reads both."""
    os.environ["STEP_WRITE"] = inputs["tag"]
    time.sleep(0.3)
    return _environment(ctx)


async def env_async(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    os.environ["STEP_WRITE"] = inputs["tag"]
    await asyncio.sleep(0.3)
    return _environment(ctx)


def hang_sync(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    time.sleep(60)
    return {}


async def hang_async(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    await asyncio.sleep(60)
    return {}


def crash(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    time.sleep(float(inputs.get("after", 0.2)))
    os._exit(7)
