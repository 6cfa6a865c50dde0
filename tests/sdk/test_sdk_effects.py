"""ctx.effect_once outside an engine (in memory) and the SDK algorithm over a scripted backend."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any

import pytest

from bobrapet.sdk import Context, EffectError, EffectResult, MemoryEffects
from bobrapet.sdk.effects import MAX_DETAILS_BYTES, recorded_details, renew_interval


def test_runs_once_then_returns_the_recorded_details() -> None:
    ctx = Context(env={})
    calls: list[int] = []

    def charge() -> dict[str, Any]:
        calls.append(1)
        return {"receipt": "r-1"}

    assert ctx.effect_once("charge", charge) == EffectResult({"receipt": "r-1"}, performed=True)
    again = ctx.effect_once("charge", charge)
    assert again == EffectResult({"receipt": "r-1"}, performed=False)
    assert calls == [1]
    assert ctx.effect_once("other", charge).performed is True
    assert calls == [1, 1]


def test_a_failing_effect_is_released_and_runs_again() -> None:
    effects = MemoryEffects()
    ctx = Context(env={}, effects=effects)

    def declined() -> None:
        raise RuntimeError("declined")

    with pytest.raises(RuntimeError, match="declined"):
        ctx.effect_once("charge", declined)
    assert effects.completed == {}
    assert ctx.effect_once("charge", lambda: 5) == EffectResult(5, performed=True)
    assert effects.completed == {"charge": {"value": 5}}


def test_seeded_memory_effects_are_already_performed() -> None:
    ctx = Context(env={}, effects=MemoryEffects(completed={"charge": {"id": 9}}))
    assert ctx.effect_once("charge", lambda: pytest.fail("must not run")) == EffectResult({"id": 9}, False)


def test_recorded_details_shapes() -> None:
    assert recorded_details({"a": (1, 2)}) == {"a": [1, 2]}
    assert recorded_details(None) == {"value": None}
    assert recorded_details("ok") == {"value": "ok"}
    assert recorded_details(object()) == {"truncated": True, "type": "object"}
    big = recorded_details({"blob": "x" * MAX_DETAILS_BYTES})
    assert big["truncated"] is True and big["sizeBytes"] > MAX_DETAILS_BYTES


def test_non_json_value_is_returned_but_summarised() -> None:
    ctx = Context(env={})
    marker = object()
    assert ctx.effect_once("k", lambda: marker).value is marker
    assert ctx.effect_once("k", lambda: None).value == {"truncated": True, "type": "object"}


@pytest.mark.parametrize(
    ("key", "lease", "message"),
    [
        ("", 600, "non-empty string"),
        ("k" * 257, 600, "at most 256"),
        ("k", 0, "lease_seconds"),
        ("k", 1.5, "lease_seconds"),
        ("k", True, "lease_seconds"),
    ],
)
def test_bad_key_or_lease(key: str, lease: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Context(env={}).effect_once(key, lambda: None, lease_seconds=lease)


def test_no_effects_after_close() -> None:
    ctx = Context(env={})
    ctx.close()
    with pytest.raises(RuntimeError, match="finished"):
        ctx.effect_once("k", lambda: None)


def test_renew_interval_bounds() -> None:
    assert renew_interval(600) == 30
    assert renew_interval(30) == 10
    assert renew_interval(0.1) == 0.1


async def test_async_effects() -> None:
    ctx = Context(env={})

    async def charge() -> dict[str, int]:
        await asyncio.sleep(0)
        return {"id": 1}

    assert await ctx.effect_once_async("a", charge) == EffectResult({"id": 1}, True)
    assert await ctx.effect_once_async("a", charge) == EffectResult({"id": 1}, False)
    assert await ctx.effect_once_async("sync-fn", lambda: 3) == EffectResult(3, True)

    async def failing() -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await ctx.effect_once_async("b", failing)
    assert (await ctx.effect_once_async("b", charge)).performed is True


def test_sync_call_with_an_async_function_is_refused_and_released() -> None:
    effects = MemoryEffects()
    ctx = Context(env={}, effects=effects)

    async def charge() -> int:
        return 1

    with pytest.raises(TypeError, match="effect_once_async"):
        ctx.effect_once("k", charge)
    assert ctx.effect_once("k", lambda: 2).performed is True


def test_same_key_calls_are_serialised_in_one_step() -> None:
    ctx = Context(env={})
    inside = threading.Event()
    proceed = threading.Event()
    runs: list[int] = []

    def slow() -> int:
        runs.append(1)
        inside.set()
        assert proceed.wait(10)
        return 1

    results: list[EffectResult] = []
    first = threading.Thread(target=lambda: results.append(ctx.effect_once("k", slow)))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=lambda: results.append(ctx.effect_once("k", slow)))
    second.start()
    proceed.set()
    first.join(10)
    second.join(10)
    assert runs == [1]
    assert sorted(r.performed for r in results) == [False, True]


class Scripted:
    """A backend answering claims from a script and recording every call."""

    def __init__(self, claims: list[dict[str, Any]], **replies: dict[str, Any]) -> None:
        self.claims = claims
        self.replies = replies
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.renewed = threading.Event()

    def call(self, action: str, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        self.calls.append((action, payload))
        future: Future[dict[str, Any]] = Future()
        if action == "claim":
            future.set_result(self.claims.pop(0))
        else:
            if action == "renew":
                self.renewed.set()
            future.set_result(self.replies.get(action, {"held": True} if action == "renew" else {}))
        return future

    def actions(self) -> list[str]:
        return [a for a, _ in self.calls]


def test_waits_while_another_attempt_holds_the_claim() -> None:
    backend = Scripted(
        [{"decision": "wait", "waitSeconds": 0.01, "holder": "e/attempt-1/x"}] * 2 + [{"decision": "run"}]
    )
    ctx = Context(env={}, effects=backend)
    assert ctx.effect_once("k", lambda: {"ok": 1}, lease_seconds=5).performed is True
    assert backend.actions() == ["claim", "claim", "claim", "complete"]
    assert backend.calls[0][1] == {"effectKey": "k", "leaseSeconds": 5}
    assert backend.calls[-1][1] == {"effectKey": "k", "details": {"ok": 1}}


def test_claim_is_renewed_while_the_effect_runs() -> None:
    backend = Scripted([{"decision": "run"}])
    ctx = Context(env={}, effects=backend)
    # lease 1 s: renewed every 1/3 s; the effect ends once a renewal was seen
    assert ctx.effect_once("k", lambda: backend.renewed.wait(10), lease_seconds=1).value is True
    assert "renew" in backend.actions() and backend.actions()[-1] == "complete"


def test_engine_errors_reach_the_engram_as_effect_errors() -> None:
    backend = Scripted([{"error": "effect 'k' was abandoned", "terminal": True}])
    with pytest.raises(EffectError, match="abandoned") as caught:
        Context(env={}, effects=backend).effect_once("k", lambda: pytest.fail("must not run"))
    assert caught.value.exit_class == "terminal"
    lost = Scripted([{"decision": "run"}], complete={"error": "taken over"})
    with pytest.raises(EffectError, match="taken over") as caught:
        Context(env={}, effects=lost).effect_once("k", lambda: 1)
    assert caught.value.exit_class == "retry"


def test_a_failing_release_keeps_the_original_error() -> None:
    backend = Scripted([{"decision": "run"}], release={"error": "store down"})

    def boom() -> None:
        raise KeyError("original")

    with pytest.raises(KeyError, match="original"):
        Context(env={}, effects=backend).effect_once("k", boom)
    assert backend.actions() == ["claim", "release"]
