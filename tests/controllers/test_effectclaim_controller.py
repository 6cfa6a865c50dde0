"""EffectClaim controller (§6.3) over the real SQLite store: owner reference, phase and
conditions from the completion, orphan claims deleted."""

from __future__ import annotations

from typing import Any

import pytest
from tests.controllers.conftest import Settle
from tests.controllers.ctrl_objects import engram, engram_template, step_run

from bobrapet.api.admission.identity import effect_claim_name
from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import EFFECT_CLAIM, STEP_RUN
from bobrapet.controllers import effectclaim
from bobrapet.runtime.manager import Manager
from bobrapet.store.client import Resource, WatchEvent
from bobrapet.store.sqlite import SqliteClient

STAMP = "2025-01-01T00:00:00.000000Z"


def claim(key: str = "charge", step: str = "run-pay", uid: str | None = None, **spec: Any) -> Resource:
    ref = {"name": step, **({"uid": uid} if uid else {})}
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "EffectClaim",
        "metadata": {"name": effect_claim_name("default", step, key), "namespace": "default"},
        "spec": {"stepRunRef": ref, "effectKey": key, **spec},
    }


@pytest.fixture
async def stored(client: SqliteClient) -> Resource:
    await client.create(engram_template("tpl"))
    await client.create(engram("e"))
    return await client.create(step_run("run-pay", "e"))


async def _get(client: SqliteClient, key: str = "charge") -> Resource:
    return await client.get(EFFECT_CLAIM, effect_claim_name("default", "run-pay", key), "default")


def _conditions(obj: Resource) -> dict[str, str]:
    return {c["type"]: c["status"] for c in obj["status"]["conditions"]}


async def test_claim_gets_an_owner_reference_and_a_phase(
    client: SqliteClient, settle: Settle, stored: Resource
) -> None:
    await client.create(claim(holderIdentity="pod-a", acquireTime=STAMP, renewTime=STAMP))
    await settle()
    got = await _get(client)
    assert got["metadata"]["ownerReferences"] == [
        {"apiVersion": "runs.bubustack.io/v1alpha1", "kind": "StepRun", "name": "run-pay",
         "uid": stored["metadata"]["uid"]}
    ]  # fmt: skip
    assert not got["metadata"]["ownerReferences"][0].get("controller")
    assert got["status"]["phase"] == "Reserved"
    assert _conditions(got) == {"Ready": "False", "Progressing": "True", "Degraded": "False"}
    # the owner reference makes the claim die with its StepRun
    await client.delete(STEP_RUN, "run-pay", "default")
    with pytest.raises(NotFound):
        await _get(client)


@pytest.mark.parametrize(
    ("completion", "phase", "conditions"),
    [
        ({"completionStatus": "completed", "completedAt": STAMP}, "Completed",
         {"Ready": "True", "Progressing": "False", "Degraded": "False"}),
        ({"completionStatus": "released"}, "Released",
         {"Ready": "False", "Progressing": "False", "Degraded": "False"}),
        ({"completionStatus": "abandoned", "completedAt": STAMP}, "Abandoned",
         {"Ready": "False", "Progressing": "False", "Degraded": "True"}),
    ],
)  # fmt: skip
async def test_phase_follows_the_completion(
    client: SqliteClient, running: Manager, stored: Resource, completion: dict[str, Any], phase: str,
    conditions: dict[str, str],
) -> None:  # fmt: skip
    await client.create(claim(holderIdentity="pod-a", acquireTime=STAMP, renewTime=STAMP))
    assert await running.wait_idle(timeout=20)
    assert (await _get(client))["status"]["phase"] == "Reserved"
    current = await _get(client)
    spec = {k: v for k, v in current["spec"].items() if completion.get("completionStatus") != "released"
            or k not in ("holderIdentity", "acquireTime", "renewTime")}  # fmt: skip
    await client.update({**current, "spec": {**spec, **completion}})
    assert await running.wait_idle(timeout=20)
    got = await _get(client)
    assert got["status"]["phase"] == phase
    assert _conditions(got) == conditions
    assert got["status"]["observedGeneration"] == got["metadata"]["generation"]


async def test_orphan_claim_is_deleted_when_its_step_run_goes(
    client: SqliteClient, running: Manager, stored: Resource
) -> None:
    # written before the controller could stamp an owner reference (e.g. the controller was
    # not running): nothing cascades, the controller deletes it when the StepRun goes
    await running.stop()
    await client.create(claim(uid=stored["metadata"]["uid"]))
    await client.delete(STEP_RUN, "run-pay", "default")
    assert (await _get(client))["metadata"].get("ownerReferences") is None
    manager = Manager(client, clock=running.clock, settle=0.05)
    from bobrapet.controllers.registry import setup_all

    setup_all(manager)
    async with manager:
        assert await manager.wait_idle(timeout=20)
    assert await client.list(EFFECT_CLAIM, "default") == []


async def test_claim_of_a_recreated_step_run_is_deleted(
    client: SqliteClient, settle: Settle, stored: Resource
) -> None:
    await client.create(claim(uid=stored["metadata"]["uid"]))
    await client.delete(STEP_RUN, "run-pay", "default")  # no owner reference yet: it stays
    await client.create(step_run("run-pay", "e"))  # same name, new uid
    await settle()
    assert await client.list(EFFECT_CLAIM, "default") == []


async def test_deleted_step_run_wakes_its_claims(
    client: SqliteClient, running: Manager, stored: Resource
) -> None:
    await client.create(claim(key="a"))
    await client.create(claim(key="b"))
    assert await running.wait_idle(timeout=20)
    watch = running.controller(effectclaim.NAME).watches[0]
    assert watch.kind == STEP_RUN
    requests = watch.mapper(WatchEvent("DELETED", stored))
    assert sorted(r.name for r in requests) == sorted(  # type: ignore[union-attr]
        effect_claim_name("default", "run-pay", k) for k in ("a", "b")
    )
