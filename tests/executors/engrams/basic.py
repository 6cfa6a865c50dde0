"""Small Python engrams exercising the executor contract."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from bobrapet.sdk import Context, StructuredError


def echo(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {"inputs": inputs, "config": ctx.config, "pid": os.getpid()}


def nothing(inputs: dict[str, Any], ctx: Context) -> None:
    return None


async def async_echo(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"async": True, "inputs": inputs}


class Counter:
    """Class engram: one instance per worker, init called once."""

    def __init__(self) -> None:
        self.inits = 0
        self.calls = 0
        self.config: dict[str, Any] = {}
        self.secrets: dict[str, dict[str, str]] = {}

    def init(self, config: dict[str, Any], secrets: dict[str, dict[str, str]]) -> None:
        self.inits += 1
        self.config = config
        self.secrets = secrets

    def process(self, inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
        self.calls += 1
        return {"inits": self.inits, "calls": self.calls, "config": self.config, "secrets": self.secrets}


class FailingInit:
    def init(self, config: dict[str, Any], secrets: dict[str, dict[str, str]]) -> None:
        raise RuntimeError("no database")

    def process(self, inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return {}


def boom(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    print("about to fail")
    raise ValueError("bad input x")


def structured(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    raise StructuredError("quota exhausted", exit_class="terminal", retryable=False, code="Quota")


def not_json(inputs: dict[str, Any], ctx: Context) -> Any:
    return {"s": {1, 2}}


def not_a_dict(inputs: dict[str, Any], ctx: Context) -> Any:
    return 42


def chatty(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    tag = inputs["tag"]
    for i in range(inputs.get("lines", 20)):
        print(f"{tag} line {i}")
        os.write(1, f"{tag} raw {i}\n".encode())
        time.sleep(0.005)
    print(f"{tag} err", file=sys.stderr)
    ctx.logger.info("%s via logger", tag)
    return {"tag": tag}


def hang(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    time.sleep(60)
    return {}


def exit3(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    print("exiting hard", flush=True)
    os._exit(3)


def segfault(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    import ctypes

    ctypes.string_at(0)
    return {}


def env(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {
        "env": {k: v for k, v in os.environ.items() if k.startswith("BUBU_")},
        "identity": [ctx.story, ctx.story_run, ctx.step, ctx.step_run, ctx.namespace, ctx.engram],
        "debug": ctx.debug,
        "cwd_on_path": sys.path[0],
    }


def signals(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    ctx.signal("progress", {"pct": 50})
    ctx.signal("progress", {"pct": 100})
    try:
        ctx.signal("big", "x" * 9000)
    except ValueError as exc:
        return {"rejected": str(exc)}
    return {}


def signal_then_crash(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    ctx.signal("before", 1)
    os._exit(5)


class AsyncProcessor:
    async def process(self, inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"instance": id(self), "config": ctx.config}
