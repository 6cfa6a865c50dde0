"""The impulse supervisor in process, over a real SQLite home: which Impulses run, their
status, the delivery glue (mapping, dedupe, refusals, throttle) and cron on a fake clock."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.impulses.harness import Home, condition, home, impulse, secret, story

from bobrapet.api.errors import StatusError
from bobrapet.api.kinds import IMPULSE, IMPULSE_TEMPLATE, SECRET, STORY_TRIGGER
from bobrapet.impulses.http import HttpRequest
from bobrapet.impulses.signature import sign
from bobrapet.impulses.sink import Refused
from bobrapet.impulses.state import STATE_ANNOTATION
from bobrapet.runtime.clock import FakeClock


async def post(
    h: Home, name: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    endpoint = await h.until(lambda: _endpoint(h, name), f"impulse {name} running")
    try:
        answer = await endpoint.impulse.handle(HttpRequest(raw, headers or {}), endpoint.sink)
    except Refused as refused:
        return refused.code, {"message": refused.message}
    return answer.status, answer.body


async def _endpoint(h: Home, name: str) -> Any:
    try:
        return h.supervisor.endpoint("default", name)
    except StatusError:
        return None


def running(status: dict[str, Any]) -> bool:
    return status.get("phase") == "Running" and status.get("readyReplicas") == 1


async def test_a_webhook_impulse_runs_and_its_deliveries_become_runs(tmp_path: Path) -> None:
    async with home(tmp_path) as h:
        await h.client.create(story(inputsSchema={"type": "object", "required": ["order"]}))
        await h.client.create(
            impulse(
                "hook",
                "webhook",
                mapping={"order": "{{ body.id }}", "via": "{{ query.via | default('direct') }}"},
            )
        )
        status = await h.status_of("hook", running)
        assert condition(status, "Ready")["reason"] == "DeploymentReady"
        assert condition(status, "Listening")["status"] == "True"

        code, body = await post(h, "hook", {"id": 7})
        assert code == 202
        assert body["decision"] in ("Pending", "Created")
        runs = await h.until(h.runs, "the run")
        assert [r["metadata"]["name"] for r in runs] == [body["storyRun"]], "the answer names the run to come"
        run = runs[0]
        assert run["spec"]["inputs"] == {"order": 7, "via": "direct"}
        assert run["spec"]["impulseRef"] == {"name": "hook", "namespace": "default"}
        trigger = await h.client.get(STORY_TRIGGER, body["storyTrigger"], "default")
        assert trigger["spec"]["deliveryIdentity"]["mode"] == "none"


async def test_dedupe_by_key_template_and_by_token(tmp_path: Path) -> None:
    async with home(tmp_path) as h:
        await h.client.create(story())
        await h.client.create(
            impulse(
                "keyed",
                "webhook",
                deliveryPolicy={"dedupe": {"mode": "key", "keyTemplate": "{{ inputs.id }}"}},
            )
        )
        await h.client.create(impulse("tokened", "webhook", deliveryPolicy={"dedupe": {"mode": "token"}}))
        first = await post(h, "keyed", {"id": 1})
        again = await post(h, "keyed", {"id": 1})
        assert first[0] == again[0] == 202 and first[1]["storyTrigger"] == again[1]["storyTrigger"]
        conflict = await post(h, "tokened", {"v": 1}, {"idempotency-key": "k"})
        assert conflict[0] == 202
        changed = await post(h, "tokened", {"v": 2}, {"idempotency-key": "k"})
        assert changed[0] == 409 and "already exists" in changed[1]["message"]
        missing = await post(h, "tokened", {"v": 3})
        assert missing == (
            400,
            {
                "message": "this Impulse deduplicates by delivery token (deliveryPolicy.dedupe.mode: token) "
                "but the delivery has no key; send an Idempotency-Key header"
            },
        )
        await h.until(lambda: _count(h, 2), "two runs")
        status = await h.status_of("tokened", lambda s: s.get("refusedDeliveries") == 2)
        assert status["lastRefused"]


async def _count(h: Home, n: int) -> bool:
    return len(await h.runs()) == n


async def test_refused_deliveries_store_nothing(tmp_path: Path) -> None:
    async with home(tmp_path) as h:
        await h.client.create(story())
        await h.client.create(impulse("hook", "webhook"))
        assert (await post(h, "hook", [1, 2]))[0] == 400
        assert (await post(h, "hook", b"{bad"))[0] == 400
        assert (await post(h, "hook", b"<x/>", {"content-type": "text/xml"}))[0] == 415
        assert await h.client.list(STORY_TRIGGER, "default") == []


async def test_a_bound_signing_secret_is_required_and_followed(tmp_path: Path) -> None:
    async with home(tmp_path) as h:
        await h.client.create(story())
        await h.client.create(impulse("signed", "webhook", secrets={"signing": "hook-key"}))
        status = await h.status_of(
            "signed", lambda s: "ReferenceNotFound" in {c["reason"] for c in s.get("conditions") or []}
        )
        assert status["phase"] == "Pending"
        assert (
            "Secret 'default/hook-key' bound to secret 'signing' not found"
            in condition(status, "Listening")["message"]
        )
        with pytest.raises(StatusError) as info:
            h.supervisor.endpoint("default", "signed")
        assert info.value.code == 503 and "not running" in info.value.message
        await h.client.create(secret("hook-key", key="first"))
        await h.status_of("signed", running)
        body = b'{"a": 1}'
        assert (await post(h, "signed", body))[0] == 401
        assert (await post(h, "signed", body, {"x-signature-256": sign(body, "first")}))[0] == 202
        fresh = await h.client.get(SECRET, "hook-key", "default")
        fresh["stringData"] = {"key": "second"}
        fresh.pop("data", None)
        await h.client.update(fresh)

        async def rotated() -> bool:
            code, _ = await post(h, "signed", body, {"x-signature-256": sign(body, "second")})
            return code == 202

        await h.until(rotated, "the new key is used")
        assert (await post(h, "signed", body, {"x-signature-256": sign(body, "first")}))[0] == 401


async def test_a_bad_config_fails_the_impulse_until_its_spec_is_fixed(tmp_path: Path) -> None:
    async with home(tmp_path) as h:
        await h.client.create(story())
        await h.client.create(impulse("tick", "cron", **{"with": {"schedule": "61 * * * *"}}))
        status = await h.status_of("tick", lambda s: s.get("phase") == "Failed")
        ready = condition(status, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "ExecutionFailed")
        assert ready["message"].startswith("cron impulse: invalid spec.with: spec.with.schedule:")
        assert condition(status, "Listening")["reason"] == "InvalidConfiguration"
        fixed = await h.impulse("tick")
        fixed["spec"]["with"] = {"schedule": "@daily"}
        await h.client.update(fixed)
        await h.status_of("tick", running)


async def test_missing_template_or_story_keeps_it_pending_and_delete_stops_it(tmp_path: Path) -> None:
    async with home(tmp_path) as h:
        await h.client.create(impulse("hook", "webhook"))
        status = await h.status_of(
            "hook", lambda s: any(c["type"] == "Listening" for c in s.get("conditions") or [])
        )
        assert status["phase"] == "Pending"
        assert condition(status, "Listening")["reason"] == "StoryNotFound"
        await h.client.create(story())
        await h.status_of("hook", running)
        await h.client.delete(IMPULSE, "hook", "default")
        await h.until(lambda: _not_running(h, "hook"), "stopped")
        with pytest.raises(StatusError) as info:
            h.supervisor.endpoint("default", "hook")
        assert info.value.code == 404
        await h.client.create(impulse("orphan", "amqp", **{"with": {"queue": "q"}}))
        await h.client.delete(IMPULSE_TEMPLATE, "amqp")
        status = await h.status_of(
            "orphan",
            lambda s: any(
                c["type"] == "Listening" and c["reason"] == "TemplateNotFound"
                for c in s.get("conditions") or []
            ),
        )
        assert status["readyReplicas"] == 0


async def _not_running(h: Home, name: str) -> bool:
    return ("default", name) not in h.supervisor.running


async def test_a_spec_change_replaces_the_runtime(tmp_path: Path) -> None:
    async with home(tmp_path) as h:
        await h.client.create(story())
        await h.client.create(impulse("hook", "webhook", **{"with": {"maxBodyBytes": 100}}))
        first = await h.until(lambda: _endpoint(h, "hook"), "running")
        assert first.max_body_bytes == 100
        changed = await h.impulse("hook")
        changed["spec"]["with"] = {"maxBodyBytes": 200}
        await h.client.update(changed)

        async def replaced() -> Any:
            endpoint = await _endpoint(h, "hook")
            return endpoint if endpoint is not None and endpoint.max_body_bytes == 200 else None

        await h.until(replaced, "a new runtime")


async def test_the_throttle_delays_and_is_counted(tmp_path: Path) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with home(tmp_path, clock=clock) as h:
        await h.client.create(story())
        await h.client.create(impulse("hook", "webhook", throttle={"ratePerSecond": 1, "burst": 1}))
        assert (await post(h, "hook", {"n": 1}))[0] == 202
        second = asyncio.create_task(post(h, "hook", {"n": 2}))
        await asyncio.sleep(0.2)
        assert not second.done(), "the second delivery waits for a token"
        clock.advance(1.0)
        assert (await asyncio.wait_for(second, 30))[0] == 202
        await h.supervisor.status.flush()
        status = (await h.impulse("hook"))["status"]
        assert status["throttledTriggers"] == 1 and status["lastThrottled"]


async def test_cron_ticks_on_a_fake_clock_start_one_run_each_across_restarts(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC))
    mapping = {"at": "{{ body.scheduledTime }}", "kind": "report"}
    async with home(tmp_path, clock=clock) as h:
        await h.client.create(story())
        await h.client.create(
            impulse("tick", "cron", mapping=mapping, **{"with": {"schedule": "*/5 * * * *"}})
        )
        await h.status_of("tick", running)
        await h.until(lambda: _state_saved(h), "the start is remembered")
        for _ in range(2):
            await _advance(clock, 300)
        runs = await h.until(lambda: _runs_at_least(h, 2), "two ticks")
        assert sorted(r["spec"]["inputs"]["at"] for r in runs) == [
            "2026-03-01T12:05:00Z",
            "2026-03-01T12:10:00Z",
        ]
    async with home(tmp_path, clock=clock) as h:
        await h.status_of("tick", running)
        await _advance(clock, 300)
        runs = await h.until(lambda: _runs_at_least(h, 3), "the third tick")
        assert len(runs) == 3, "ticks already started are not started again after a restart"
        state = (await h.impulse("tick"))["metadata"]["annotations"][STATE_ANNOTATION]
        assert state == '{"lastScheduleTime":"2026-03-01T12:15:00Z"}'


async def _advance(clock: FakeClock, seconds: float) -> None:
    for _ in range(int(seconds)):
        clock.advance(1)
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)


async def _state_saved(h: Home) -> bool:
    annotations = (await h.impulse("tick"))["metadata"].get("annotations") or {}
    return STATE_ANNOTATION in annotations


async def _runs_at_least(h: Home, n: int) -> Any:
    runs = await h.runs()
    return runs if len(runs) >= n else None
