"""The engine's effects port (StepRunEffects) over the real SQLite store, with admission."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.controllers.ctrl_objects import engram, engram_template, step_run

from bobrapet.api.admission.identity import effect_claim_name
from bobrapet.api.kinds import EFFECT_CLAIM, STEP_RUN
from bobrapet.controllers.effects import StepRunEffects, holder_identity
from bobrapet.execution.effects import UNAVAILABLE, ClaimAnswer, EffectClaimError, answer
from bobrapet.runtime.clock import FakeClock
from bobrapet.store.client import Resource
from bobrapet.store.sqlite import SqliteClient

NAME = effect_claim_name("default", "run-pay", "charge")


@pytest.fixture
async def stored(client: SqliteClient) -> Resource:
    await client.create(engram_template("tpl"))
    await client.create(engram("e"))
    return await client.create(step_run("run-pay", "e"))


def attempt(client: SqliteClient, clock: FakeClock, stored: Resource, n: int) -> StepRunEffects:
    return StepRunEffects(client, clock, stored, holder_identity("engine-a", n))


async def _claim(client: SqliteClient) -> Resource:
    return await client.get(EFFECT_CLAIM, NAME, "default")


async def _effects(client: SqliteClient) -> list[dict[str, Any]]:
    got = await client.get(STEP_RUN, "run-pay", "default")
    return list((got.get("status") or {}).get("effects") or [])


async def test_claim_complete_then_the_next_attempt_skips(
    client: SqliteClient, clock: FakeClock, stored: Resource
) -> None:
    first = attempt(client, clock, stored, 1)
    assert await first.claim("charge", 600) == ClaimAnswer("run")
    created = await _claim(client)
    assert created["spec"]["holderIdentity"] == first.holder
    assert created["spec"]["stepRunRef"] == {"name": "run-pay", "uid": stored["metadata"]["uid"]}
    assert created["metadata"]["ownerReferences"][0]["uid"] == stored["metadata"]["uid"]
    assert await first.renew("charge") is True
    await first.complete("charge", {"receipt": "r-1"})
    done = (await _claim(client))["spec"]
    assert (done["completionStatus"], done["details"]) == ("completed", {"receipt": "r-1"})
    assert [(e["seq"], e["key"], e["status"], e["details"]) for e in await _effects(client)] == [
        (1, "charge", "succeeded", {"receipt": "r-1"})
    ]
    second = attempt(client, clock, stored, 2)
    assert await second.claim("charge", 600) == ClaimAnswer("done", details={"receipt": "r-1"})
    assert await first.renew("charge") is False  # nothing held any more


async def test_release_lets_the_next_attempt_run_it(
    client: SqliteClient, clock: FakeClock, stored: Resource
) -> None:
    first = attempt(client, clock, stored, 1)
    await first.claim("charge", 600)
    await first.release("charge")
    released = (await _claim(client))["spec"]
    assert released["completionStatus"] == "released" and "completedAt" not in released
    assert "holderIdentity" not in released
    second = attempt(client, clock, stored, 2)
    assert await second.claim("charge", 600) == ClaimAnswer("run")
    taken = (await _claim(client))["spec"]
    assert (taken["holderIdentity"], taken["leaseTransitions"]) == (second.holder, 1)
    await second.complete("charge", {})
    assert (await _claim(client))["spec"]["completionStatus"] == "completed"


async def test_a_live_lease_waits_and_an_expired_one_is_taken_over(
    client: SqliteClient, clock: FakeClock, stored: Resource
) -> None:
    crashed = attempt(client, clock, stored, 1)
    await crashed.claim("charge", 60)
    clock.advance(20)
    retry = attempt(client, clock, stored, 2)
    waiting = await retry.claim("charge", 60)
    assert (waiting.decision, waiting.holder) == ("wait", crashed.holder)
    assert waiting.wait_seconds == pytest.approx(40)
    clock.advance(40)
    assert await retry.claim("charge", 60) == ClaimAnswer("run")
    # the crashed holder is not the holder any more: it can neither renew nor complete
    assert await crashed.renew("charge") is False
    with pytest.raises(EffectClaimError, match="taken over"):
        await crashed.complete("charge", {"late": True})
    await retry.complete("charge", {"ok": True})
    assert [e["details"] for e in await _effects(client)] == [{"ok": True}]


async def test_renewal_keeps_the_lease_live(client: SqliteClient, clock: FakeClock, stored: Resource) -> None:
    holder = attempt(client, clock, stored, 1)
    await holder.claim("charge", 60)
    for _ in range(3):
        clock.advance(50)
        assert await holder.renew("charge") is True
    assert (await attempt(client, clock, stored, 2).claim("charge", 60)).decision == "wait"


async def test_concurrent_claims_grant_one(client: SqliteClient, clock: FakeClock, stored: Resource) -> None:
    answers = await asyncio.gather(
        *(attempt(client, clock, stored, n).claim("charge", 600) for n in range(4))
    )
    assert sorted(a.decision for a in answers) == ["run", "wait", "wait", "wait"]


async def test_completed_claim_without_its_status_entry_is_mirrored(
    client: SqliteClient, clock: FakeClock, stored: Resource
) -> None:
    first = attempt(client, clock, stored, 1)
    await first.claim("charge", 600)
    claim = await _claim(client)
    spec = {**claim["spec"], "completionStatus": "completed", "completedAt": claim["spec"]["renewTime"]}
    await client.update({**claim, "spec": {**spec, "details": {"id": 3}}})  # the engine stopped here
    assert await _effects(client) == []
    assert await attempt(client, clock, stored, 2).claim("charge", 600) == ClaimAnswer(
        "done", details={"id": 3}
    )
    assert [e["details"] for e in await _effects(client)] == [{"id": 3}]


async def test_effects_entries_survive_other_status_writes(
    client: SqliteClient, clock: FakeClock, stored: Resource
) -> None:
    first = attempt(client, clock, stored, 1)
    await first.claim("a", 600)
    await first.complete("a", {})
    current = await client.get(STEP_RUN, "run-pay", "default")
    await client.update_status({**current, "status": {**current["status"], "phase": "Running"}})
    await first.claim("b", 600)
    await first.complete("b", {})
    assert [(e["seq"], e["key"]) for e in await _effects(client)] == [(1, "a"), (2, "b")]


async def test_abandoned_claim_is_terminal(client: SqliteClient, clock: FakeClock, stored: Resource) -> None:
    first = attempt(client, clock, stored, 1)
    await first.claim("charge", 600)
    claim = await _claim(client)
    stamp = claim["spec"]["renewTime"]
    await client.update(
        {**claim, "spec": {**claim["spec"], "completionStatus": "abandoned", "completedAt": stamp}}
    )
    with pytest.raises(EffectClaimError, match="abandoned") as caught:
        await attempt(client, clock, stored, 2).claim("charge", 600)
    assert caught.value.terminal


async def test_a_deleted_step_run_cannot_claim(
    client: SqliteClient, clock: FakeClock, stored: Resource
) -> None:
    await client.delete(STEP_RUN, "run-pay", "default")
    with pytest.raises(EffectClaimError, match="no longer exists") as caught:
        await attempt(client, clock, stored, 1).claim("charge", 600)
    assert caught.value.terminal


async def test_claims_die_with_their_step_run(
    client: SqliteClient, clock: FakeClock, stored: Resource
) -> None:
    await attempt(client, clock, stored, 1).claim("charge", 600)
    await client.delete(STEP_RUN, "run-pay", "default")
    assert await client.list(EFFECT_CLAIM, "default") == []


def test_holder_identity_names_engine_and_attempt() -> None:
    holder = holder_identity("host-1-abc", 3)
    assert holder.startswith("host-1-abc/attempt-3/") and holder != holder_identity("host-1-abc", 3)
    assert len(holder_identity("h" * 300, 1)) == 253


# --------------------------------------------------------------------------- the wire (answer)


async def test_answer_maps_calls_and_errors(client: SqliteClient, clock: FakeClock, stored: Resource) -> None:
    port = attempt(client, clock, stored, 1)
    assert await answer(port, {"action": "claim", "effectKey": "k", "leaseSeconds": 30}) == {
        "decision": "run"
    }
    assert await answer(port, {"action": "renew", "effectKey": "k"}) == {"held": True}
    assert await answer(port, {"action": "complete", "effectKey": "k", "details": "x" * 9000}) == {}
    recorded = (await client.get(EFFECT_CLAIM, effect_claim_name("default", "run-pay", "k"), "default"))[
        "spec"
    ]
    assert recorded["details"] == {"truncated": True, "sizeBytes": 9012}  # the engine enforces the limit
    done = await answer(
        attempt(client, clock, stored, 2), {"action": "claim", "effectKey": "k", "leaseSeconds": 1}
    )
    assert done["decision"] == "done"
    assert await answer(None, {"action": "claim"}) == dict(UNAVAILABLE)
    bad = await answer(port, {"action": "claim", "effectKey": "", "leaseSeconds": 1})
    assert bad["terminal"] is True and "non-empty" in bad["error"]
    assert "unknown effect call" in (await answer(port, {"action": "nope", "effectKey": "k"}))["error"]
    await client.delete(STEP_RUN, "run-pay", "default")
    gone = await answer(port, {"action": "claim", "effectKey": "z", "leaseSeconds": 1})
    assert gone["terminal"] is True and "no longer exists" in gone["error"]


async def test_answer_reports_engine_errors_as_retryable(stored: Resource) -> None:
    class Broken:
        async def claim(self, key: str, lease_seconds: int) -> ClaimAnswer:
            raise OSError("disk full")

        async def renew(self, key: str) -> bool:
            return False

        async def complete(self, key: str, details: dict[str, Any]) -> None: ...

        async def release(self, key: str) -> None: ...

    reply = await answer(Broken(), {"action": "claim", "effectKey": "k", "leaseSeconds": 1})
    assert reply == {"error": "engine error during the effect claim: disk full"}
