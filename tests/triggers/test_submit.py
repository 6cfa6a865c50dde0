"""Submitting triggers to a real SQLite store with admission, and waiting for the decision."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.controllers.ctrl_objects import step, story

from bobrapet.api.errors import StatusError
from bobrapet.api.kinds import STORY_RUN, STORY_TRIGGER
from bobrapet.controllers import storytrigger
from bobrapet.host.embedded import ControlPlane
from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.manager import Manager
from bobrapet.store.client import Resource
from bobrapet.store.sqlite import SqliteClient
from bobrapet.triggers import (
    DeliveryOptions,
    IdentityConflict,
    RetryPolicy,
    StillPending,
    StoryNotFound,
    Throttle,
    ThrottlePolicy,
    TriggerRejected,
    TriggerRequest,
    build_trigger,
    decision_of,
    submit,
    trigger_story,
    wait_for_decision,
)

KEYED = {"mode": "key", "key_template": "order-{{ inputs.id }}"}


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(tmp_path / "home") as control_plane:
        await control_plane.client.create(story("orders", [step("a", type="sleep")]))
        yield control_plane


@pytest.fixture
def client(plane: ControlPlane) -> SqliteClient:
    return plane.client


@pytest.fixture
async def deciding(client: SqliteClient) -> AsyncIterator[Manager]:
    """The StoryTrigger controller running beside the test, as in a serving process."""
    manager = Manager(client, settle=0.05)
    storytrigger.setup(manager)
    async with manager:
        yield manager


def orders(**fields: Any) -> TriggerRequest:
    return TriggerRequest(**{"story": "orders", "inputs": {"id": 1}, **fields})


async def test_the_same_key_is_the_same_trigger(client: SqliteClient) -> None:
    first = await submit(client, await build_trigger(client, orders(**KEYED)))
    again = await submit(client, await build_trigger(client, orders(**KEYED)))
    assert again["metadata"]["uid"] == first["metadata"]["uid"]
    assert len(await client.list(STORY_TRIGGER, "default")) == 1
    # without a key every submission is its own trigger
    await submit(client, await build_trigger(client, orders()))
    await submit(client, await build_trigger(client, orders()))
    assert len(await client.list(STORY_TRIGGER, "default")) == 3


async def test_the_same_key_for_other_inputs_is_refused(client: SqliteClient) -> None:
    keyed = {"mode": "key", "key_template": "fixed"}
    first = await submit(client, await build_trigger(client, orders(**keyed)))
    other = await build_trigger(client, orders(inputs={"id": 2}, **keyed))
    with pytest.raises(IdentityConflict) as caught:
        await submit(client, other)
    assert caught.value.differences == ("spec.deliveryIdentity.inputHash", "spec.inputs")
    assert str(caught.value) == (
        f'storytrigger "{first["metadata"]["name"]}" already exists in namespace "default" with a different '
        "immutable request (spec.deliveryIdentity.inputHash, spec.inputs differ); a delivery identity "
        "cannot be reused for another request: use another key"
    )


async def test_an_unknown_story_is_named(client: SqliteClient) -> None:
    with pytest.raises(StoryNotFound) as caught:
        await build_trigger(client, orders(story="refunds"))
    assert str(caught.value) == 'story "refunds" not found in namespace "default"; stories there: orders'


async def test_waiting_follows_the_watch_until_decided(client: SqliteClient, deciding: Manager) -> None:
    stored = await submit(client, await build_trigger(client, orders(**KEYED)))
    decided = await wait_for_decision(client, "default", stored["metadata"]["name"], timeout=20)
    assert decision_of(decided) == "Created"
    assert await client.get(STORY_RUN, decided["status"]["storyRunRef"]["name"], "default")


async def test_waiting_without_a_controller_is_still_pending(client: SqliteClient) -> None:
    clock = FakeClock()
    stored = await submit(client, await build_trigger(client, orders()))
    name = stored["metadata"]["name"]
    waiting = asyncio.ensure_future(wait_for_decision(client, "default", name, clock=clock))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    clock.advance(30)
    with pytest.raises(StillPending, match="is still pending after 30s") as caught:
        await waiting
    assert caught.value.retryable


async def test_trigger_story_delivers_and_reports(client: SqliteClient, deciding: Manager) -> None:
    delivery = await trigger_story(client, orders(**KEYED), DeliveryOptions(decision_timeout=20))
    assert (delivery.decision, delivery.throttled) == ("Created", False)
    assert delivery.story_run == delivery.trigger["status"]["storyRunRef"]["name"]
    # the same event again: the same trigger, already decided
    again = await trigger_story(client, orders(**KEYED), DeliveryOptions(decision_timeout=20))
    assert (again.trigger["metadata"]["uid"], again.story_run) == (
        delivery.trigger["metadata"]["uid"],
        delivery.story_run,
    )


async def test_a_rejected_trigger_raises(client: SqliteClient, deciding: Manager) -> None:
    await client.create(
        story("strict", [step("a", type="sleep")], inputsSchema={"type": "object", "required": ["id"]})
    )
    with pytest.raises(TriggerRejected, match=r"rejected \(ValidationFailed\): StoryRun admission") as caught:
        await trigger_story(client, orders(story="strict", inputs={}), DeliveryOptions(decision_timeout=20))
    assert caught.value.reason == "ValidationFailed"


class Flaky:
    """A store that is busy for the first ``failures`` creates."""

    def __init__(self, inner: SqliteClient, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.creates = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def create(self, obj: Resource, **kwargs: Any) -> Resource:
        self.creates += 1
        if self.creates <= self.failures:
            raise StatusError("the store is busy", reason="ServiceUnavailable", code=503)
        return await self.inner.create(obj, **kwargs)


async def test_transient_store_errors_are_retried_with_one_submission_id(client: SqliteClient) -> None:
    flaky = Flaky(client, failures=2)
    ids = iter(["sub-1", "sub-2", "sub-3"])
    options = DeliveryOptions(
        retry=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.001),
        decision_timeout=None,
        new_id=lambda: next(ids),
    )
    delivery = await trigger_story(flaky, orders(), options)  # type: ignore[arg-type]
    assert flaky.creates == 3 and delivery.decision is None
    assert delivery.trigger["spec"]["deliveryIdentity"]["submissionId"] == "sub-1"
    assert len(await client.list(STORY_TRIGGER, "default")) == 1

    with pytest.raises(StatusError, match="busy"):
        await trigger_story(Flaky(client, failures=5), orders(), options)  # type: ignore[arg-type]


async def test_a_throttled_delivery_says_so(client: SqliteClient) -> None:
    clock = FakeClock()  # no token comes back unless the test moves time
    throttle = Throttle(ThrottlePolicy(rate_per_second=1, burst=1), clock=clock)
    options = DeliveryOptions(throttle=throttle, decision_timeout=None, clock=clock)
    first = await trigger_story(client, orders(), options)
    waiting = asyncio.create_task(trigger_story(client, orders(), options))
    for _ in range(2000):
        if clock.pending_timers:
            break
        await asyncio.sleep(0.001)
    assert clock.pending_timers, "the second delivery did not wait for a token"
    clock.advance(1.0)
    second = await waiting
    assert (first.throttled, second.throttled) == (False, True)


async def test_fifty_concurrent_submissions_of_one_key_make_one_trigger_and_one_run(
    plane: ControlPlane, tmp_path: Path
) -> None:
    """Five processes' worth of clients, two of them running the controller meanwhile."""
    path = plane.home / "state.db"
    clients = [SqliteClient(path) for _ in range(5)]
    for extra in clients:
        extra.admission = plane.client.admission
    managers = [Manager(c, settle=0.05) for c in clients[:2]]
    for manager in managers:
        storytrigger.setup(manager)
    try:
        for manager in managers:
            await manager.start()
        request = orders(inputs={"id": 42}, **KEYED)
        deliveries = await asyncio.gather(
            *(trigger_story(clients[i % 5], request, DeliveryOptions(decision_timeout=30)) for i in range(50))
        )
        for manager in managers:
            assert await manager.wait_idle(timeout=20)
    finally:
        for manager in managers:
            await manager.stop()
        for extra in clients:
            extra.close()
    triggers = await plane.client.list(STORY_TRIGGER, "default")
    runs = await plane.client.list(STORY_RUN, "default")
    assert len(triggers) == 1 and len(runs) == 1
    assert {d.story_run for d in deliveries} == {runs[0]["metadata"]["name"]}
    assert {d.decision for d in deliveries} == {"Created"}
    assert triggers[0]["status"]["storyRunRef"]["uid"] == runs[0]["metadata"]["uid"]
