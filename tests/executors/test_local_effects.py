"""Effect frames between a warm worker and the engine: ctx.effect_once in a Python engram is
answered by the request's effects port (a recording fake here)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from pathlib import Path
from typing import Any

from bobrapet.execution.effects import ClaimAnswer
from bobrapet.executors.local import LocalExecutor

E = "engrams.effects"


class FakeEffects:
    """A StepEffects keeping claims in memory; ``waits`` wait answers come before a run."""

    def __init__(self, waits: int = 0) -> None:
        self.calls: list[tuple[str, str]] = []
        self.done: dict[str, dict[str, Any]] = {}
        self.waits = waits
        self.entered = asyncio.Event()
        self.gate: asyncio.Event | None = None

    async def claim(self, key: str, lease_seconds: int) -> ClaimAnswer:
        self.calls.append(("claim", key))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if key in self.done:
            return ClaimAnswer("done", details=self.done[key])
        if self.waits:
            self.waits -= 1
            return ClaimAnswer("wait", wait_seconds=0.01, holder="engine/attempt-1/x")
        return ClaimAnswer("run")

    async def renew(self, key: str) -> bool:
        self.calls.append(("renew", key))
        return True

    async def complete(self, key: str, details: dict[str, Any]) -> None:
        self.calls.append(("complete", key))
        self.done[key] = details

    async def release(self, key: str) -> None:
        self.calls.append(("release", key))


async def test_effect_runs_once_across_attempts(executor: LocalExecutor, make_request) -> None:
    effects = FakeEffects()
    first = await executor.run(dataclasses.replace(make_request("a1", f"{E}:charge"), effects=effects))
    assert first.phase == "Succeeded", first.message
    assert first.output == {"performed": True, "value": {"n": 1}}
    second = await executor.run(
        dataclasses.replace(make_request("a2", f"{E}:charge", inputs={"n": 2}), effects=effects)
    )
    assert second.output == {"performed": False, "value": {"n": 1}}
    assert effects.calls == [("claim", "charge"), ("complete", "charge"), ("claim", "charge")]


async def test_async_engram_effect(executor: LocalExecutor, make_request) -> None:
    effects = FakeEffects()
    result = await executor.run(dataclasses.replace(make_request("a", f"{E}:charge_async"), effects=effects))
    assert result.output == {"performed": True, "value": {"async": True}}
    assert effects.done == {"charge": {"async": True}}


async def test_failing_effect_is_released(executor: LocalExecutor, make_request) -> None:
    effects = FakeEffects()
    result = await executor.run(dataclasses.replace(make_request("a", f"{E}:declined"), effects=effects))
    assert result.phase == "Failed" and "card declined" in (result.message or "")
    assert effects.calls == [("claim", "charge"), ("release", "charge")]


async def test_wait_answers_are_asked_again(executor: LocalExecutor, make_request) -> None:
    effects = FakeEffects(waits=2)
    result = await executor.run(dataclasses.replace(make_request("a", f"{E}:charge"), effects=effects))
    assert result.output == {"performed": True, "value": {"n": 1}}
    assert [c for c, _ in effects.calls] == ["claim", "claim", "claim", "complete"]
    assert "is held by engine/attempt-1/x" in (make_request("a", "x").log_path).read_text()


async def test_without_an_effects_port_the_step_fails_terminally(
    executor: LocalExecutor, make_request
) -> None:
    result = await executor.run(make_request("a", f"{E}:charge"))
    assert result.phase == "Failed"
    assert result.exit_class == "terminal"
    assert "effect claims are not available" in (result.message or "")


async def test_claim_granted_after_the_worker_died_is_released(
    executor: LocalExecutor, make_request, tmp_path: Path
) -> None:
    effects = FakeEffects()
    effects.gate = asyncio.Event()
    pidfile = tmp_path / "pid"
    request = make_request("a", f"{E}:charge", inputs={"pidfile": str(pidfile)})
    running = asyncio.create_task(executor.run(dataclasses.replace(request, effects=effects)))
    await asyncio.wait_for(effects.entered.wait(), 10)
    os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the worker dies while its claim is pending
    result = await asyncio.wait_for(running, 10)
    assert result.phase == "Failed" and result.exit_code == 128 + signal.SIGKILL
    effects.gate.set()  # the engine grants the claim now: nobody will perform the effect
    for _ in range(500):
        if ("release", "charge") in effects.calls:
            break
        await asyncio.sleep(0.01)
    assert effects.calls == [("claim", "charge"), ("release", "charge")]


def test_worker_routes_effect_and_trigger_replies_by_id() -> None:
    from bobrapet.executors.local import protocol, worker

    sent: list[dict[str, Any]] = []

    class Channel:
        def send(self, frame: dict[str, Any]) -> None:
            protocol.encode(frame)  # every frame is one JSON line
            sent.append(frame)

    calls = worker._Calls(Channel())  # type: ignore[arg-type]
    claim = worker._StepEffects(calls, "step-1").call("claim", {"effectKey": "k", "leaseSeconds": 5})
    renew = worker._StepEffects(calls, "step-2").call("renew", {"effectKey": "k"})
    trigger = worker._StepTriggers(calls, "step-2").call({"story": "child", "inputs": {}})
    assert sent == [
        {"effectKey": "k", "leaseSeconds": 5, "op": "effect", "key": "step-1", "id": 1, "action": "claim"},
        {"effectKey": "k", "op": "effect", "key": "step-2", "id": 2, "action": "renew"},
        {"story": "child", "inputs": {}, "op": "trigger", "key": "step-2", "id": 3},
    ]
    calls.resolve({"op": "trigger-reply", "key": "step-2", "id": 3, "reply": {"trigger": "t"}})
    calls.resolve({"op": "effect-reply", "key": "step-2", "id": 2, "reply": {"held": True}})
    assert renew.result(0) == {"held": True} and trigger.result(0) == {"trigger": "t"} and not claim.done()
    calls.resolve({"op": "effect-reply", "key": "step-1", "id": 99, "reply": {}})  # unknown: ignored
    calls.resolve({"op": "effect-reply", "key": "step-1", "id": 1, "reply": "garbage"})
    assert claim.result(0) == {"error": "malformed reply from the engine"}
