"""Impulses under a real ``bobrapet serve`` on 127.0.0.1: webhook and GitHub deliveries over HTTP,
refusals that store nothing, concurrency with duplicate keys, a SIGKILL in the middle of a
burst, a redis-stream Impulse, and a user-written impulse stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from tests.server.serving import REPO, Serve, start_serve

from bobrapet.api.builtin_catalog import builtin_documents
from bobrapet.api.kinds import STORY_RUN, STORY_TRIGGER
from bobrapet.api.manifest import parse_text
from bobrapet.host.embedded import ControlPlane
from bobrapet.impulses.signature import sign

WAIT = 120.0
SECRET = "whsec-0123456789"
HELLO = REPO / "examples" / "hello.yaml"
CATALOG = REPO / "examples" / "catalog.yaml"


def impulse(name: str, template: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Impulse",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"templateRef": {"name": template}, "storyRef": {"name": "hello"}, **spec},
    }


def secret(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        "stringData": {"key": SECRET},
    }


def prepare(home: Path, *objects: dict[str, Any]) -> None:
    """The built-in templates, the hello example and ``objects``, stored before serve starts."""

    async def apply() -> None:
        async with ControlPlane(home) as plane:
            docs = [d.obj for d in builtin_documents()]
            for path in (CATALOG, HELLO):
                docs += [d.obj for d in parse_text(path.read_text(), str(path))]
            for obj in [*docs, *objects]:
                await plane.client.create(obj)

    asyncio.run(apply())


def stored(home: Path, kind: Any) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with ControlPlane(home) as plane:
            return list(await plane.client.list(kind, "default"))

    return asyncio.run(read())


def phases(home: Path) -> dict[str, str]:
    return {r["metadata"]["name"]: (r.get("status") or {}).get("phase", "") for r in stored(home, STORY_RUN)}


def wait_until(check: Any, what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def serving(home: Path) -> Iterator[Serve]:
    serve = start_serve(home)
    try:
        yield serve
    finally:
        serve.stop()


def post(
    serve: Serve, name: str, body: Any = None, *, raw: bytes | None = None, **headers: str
) -> tuple[int, Any]:
    data = raw if raw is not None else json.dumps(body).encode()
    sent = {k.replace("_", "-"): v for k, v in headers.items()}
    media = sent.pop("Content-Type", "application/json")
    reply = serve.request("POST", f"/impulses/default/{name}", raw=data, headers=sent, content_type=media)
    return reply.status, reply.body


def running(serve: Serve, name: str) -> None:
    def ready() -> bool:
        status, _ = post(serve, name, raw=b"")
        return status != 503

    wait_until(ready, f"impulse {name} running")


def test_webhook_deliveries_and_refusals(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prepare(
        home,
        impulse("plain", "webhook", **{"with": {"maxBodyBytes": 4096}}),
        impulse(
            "mapped",
            "webhook",
            mapping={"name": "{{ body.who }}"},
            deliveryPolicy={"dedupe": {"mode": "key", "keyTemplate": "{{ inputs.name }}"}},
        ),
        impulse("signed", "webhook", secrets={"signing": "hook-key"}),
        secret("hook-key"),
    )
    with serving(home) as serve:
        for name in ("plain", "mapped", "signed"):
            running(serve, name)
        accepted: list[dict[str, Any]] = []

        status, body = post(serve, "plain", {"name": "Ada"})
        assert status == 202, body
        assert set(body) == {"storyTrigger", "namespace", "decision", "storyRun"}
        accepted.append(body)

        first = post(serve, "mapped", {"who": "Grace"})
        again = post(serve, "mapped", {"who": "Grace", "extra": "ignored by the mapping"})
        assert first[0] == again[0] == 202
        assert first[1]["storyRun"] == again[1]["storyRun"], "the same key starts the Story once"
        accepted.append(first[1])

        body_bytes = json.dumps({"name": "Linus"}).encode()
        status, body = post(serve, "signed", raw=body_bytes, X_Signature_256=sign(body_bytes, SECRET))
        assert status == 202, body
        accepted.append(body)
        for headers in ({}, {"X_Signature_256": sign(body_bytes, "wrong")}):
            status, body = post(serve, "signed", raw=body_bytes, **headers)
            assert (status, body["kind"], body["reason"]) == (401, "Status", "Unauthorized")

        status, body = post(serve, "plain", raw=b"{not json")
        assert (status, body["reason"]) == (400, "BadRequest") and body["message"].startswith(
            "the body is not JSON"
        )
        status, body = post(serve, "plain", raw=b"<a/>", Content_Type="application/xml")
        assert (status, body["reason"]) == (415, "UnsupportedMediaType")
        status, body = post(serve, "plain", raw=b"x" * 5000)
        assert (status, body["reason"]) == (413, "RequestEntityTooLarge")
        chunked = httpx.post(
            f"{serve.url}/impulses/default/plain", content=iter([b"[" + b"1," * 3000, b"1]"]), timeout=30
        )
        assert chunked.status_code == 413, "a body without Content-Length is cut at the limit too"
        status, body = post(serve, "ghost", {"name": "x"})
        assert (status, body["reason"]) == (404, "NotFound")
        for method, path, code, reason in (
            ("GET", "/impulses/default/plain", 405, "MethodNotAllowed"),
            ("POST", "/impulses/default", 404, "NotFound"),
            ("POST", "/impulses/default/plain/extra", 404, "NotFound"),
        ):
            reply = httpx.request(method, f"{serve.url}{path}", content=b"{}", timeout=30)
            answer = reply.json()
            assert (reply.status_code, answer["kind"], answer["reason"]) == (code, "Status", reason)

        runs = {b["storyRun"] for b in accepted}
        wait_until(lambda: all(phases(home).get(r) == "Succeeded" for r in runs), "the accepted runs")
        assert set(phases(home)) == runs, "refused requests stored nothing"
        assert len(stored(home, STORY_TRIGGER)) == len(runs)
        greeting = {r["metadata"]["name"]: r for r in stored(home, STORY_RUN)}[first[1]["storyRun"]]
        assert greeting["status"]["output"] == {"greeting": "Hello, Grace!"}


def test_a_large_delivery_is_offloaded_and_its_run_gets_the_data(tmp_path: Path) -> None:
    """Run inputs over storyrun.max-inline-inputs-size (1 KiB) go to the home's storage."""
    home = tmp_path / "home"
    prepare(home, impulse("big", "webhook"))
    name = "A" * 100_000
    with serving(home) as serve:
        running(serve, "big")
        status, body = post(serve, "big", {"name": name})
        assert status == 202, body
        wait_until(lambda: phases(home).get(body["storyRun"]) == "Succeeded", "the large delivery's run")
    run = {r["metadata"]["name"]: r for r in stored(home, STORY_RUN)}[body["storyRun"]]
    assert "$bubuStorageRef" in json.dumps(run["spec"]["inputs"]), "the inputs are a reference"
    assert len(json.dumps(run).encode()) < 20_000
    output = run["status"]["output"]["greeting"]  # offloaded in turn (over 4 KiB): a reference
    assert "$bubuStorageRef" in json.dumps(output)


def test_github_deliveries(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prepare(
        home,
        impulse(
            "gh",
            "github",
            secrets={"signing": "gh-key"},
            mapping={"name": "{{ body.pull_request.user.login }}"},
            **{"with": {"events": ["pull_request"], "actions": ["opened", "synchronize"]}},
        ),
        secret("gh-key"),
    )
    payload = {
        "action": "opened",
        "number": 42,
        "pull_request": {"number": 42, "title": "Fix the flux capacitor", "user": {"login": "octocat"}},
        "repository": {"full_name": "octo-org/hello-world"},
        "sender": {"login": "octocat"},
    }

    def deliver(event: str, body: dict[str, Any], delivery: str) -> tuple[int, Any]:
        raw = json.dumps(body).encode()
        headers = {
            "X_GitHub_Event": event,
            "X_GitHub_Delivery": delivery,
            "X_GitHub_Hook_ID": "123456",
            "X_Hub_Signature_256": sign(raw, SECRET),
            "User_Agent": "GitHub-Hookshot/044aadd",
        }
        return post(serve, "gh", raw=raw, **headers)

    with serving(home) as serve:
        running(serve, "gh")
        delivery = str(uuid.uuid4())
        status, first = deliver("pull_request", payload, delivery)
        assert status == 202, first
        status, again = deliver("pull_request", payload, delivery)
        assert status == 202 and again["storyRun"] == first["storyRun"], "a redelivery starts no second run"
        assert deliver("ping", {"zen": "Keep it logically awesome.", "hook_id": 1}, str(uuid.uuid4())) == (
            200,
            {"ignored": True, "reason": "ping: GitHub checks the webhook; no run is started"},
        )
        status, body = deliver("pull_request", {**payload, "action": "closed"}, str(uuid.uuid4()))
        assert (status, body["ignored"]) == (200, True)
        wait_until(lambda: phases(home).get(first["storyRun"]) == "Succeeded", "the pull request's run")
        assert list(phases(home)) == [first["storyRun"]]
        run = stored(home, STORY_RUN)[0]
        assert run["status"]["output"] == {"greeting": "Hello, octocat!"}


async def _burst(url: str, keys: list[str], results: list[tuple[str, int, Any]]) -> None:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one(key: str) -> None:
            try:
                reply = await client.post(
                    "/impulses/default/burst", json={"name": key}, headers={"Idempotency-Key": key}
                )
            except httpx.HTTPError as exc:
                results.append((key, 0, repr(exc)))
                return
            results.append((key, reply.status_code, reply.json()))

        await asyncio.gather(*(one(key) for key in keys))


def burst_impulse() -> dict[str, Any]:
    return impulse("burst", "webhook", deliveryPolicy={"dedupe": {"mode": "token"}})


@pytest.mark.slow
def test_500_concurrent_deliveries_with_20_percent_duplicates(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prepare(home, burst_impulse())
    distinct = [f"order-{n}" for n in range(400)]
    keys = distinct + distinct[:100]
    results: list[tuple[str, int, Any]] = []
    with serving(home) as serve:
        running(serve, "burst")
        asyncio.run(_burst(serve.url, keys, results))
        codes = sorted({code for _, code, _ in results})
        assert codes == [202], [r for r in results if r[1] != 202][:5]
        by_key: dict[str, set[str]] = {}
        for key, _, body in results:
            by_key.setdefault(key, set()).add(body["storyRun"])
        assert all(len(runs) == 1 for runs in by_key.values()), "one run per key"
        expected = {run for runs in by_key.values() for run in runs}
        assert len(expected) == 400
        wait_until(lambda: expected <= set(phases(home)), "every answered delivery has its run")
        assert len(phases(home)) == 400, "exactly one StoryRun per distinct key"


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_burst_loses_no_accepted_delivery(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prepare(home, burst_impulse())
    keys = [f"k-{n}" for n in range(600)]
    results: list[tuple[str, int, Any]] = []
    serve = start_serve(home)
    try:
        running(serve, "burst")

        async def burst_then_kill() -> None:
            sending = asyncio.create_task(_burst(serve.url, keys, results))
            while sum(1 for r in results if r[1] == 202) < 100:
                await asyncio.sleep(0.005)
            serve.process.send_signal(signal.SIGKILL)
            await sending

        asyncio.run(burst_then_kill())
    finally:
        serve.stop(signal.SIGKILL)
    accepted = {body["storyRun"] for _, code, body in results if code == 202}
    assert 100 <= len(accepted) < len(keys), "the kill came in the middle of the burst"
    assert all(code in (202, 0) for _, code, _ in results), "no 5xx before the kill"
    (home / "serve.json").unlink(missing_ok=True)  # the killed serve's record (start_serve reads it)
    with serving(home):
        wait_until(
            lambda: all(phases(home).get(run) == "Succeeded" for run in accepted),
            "every delivery answered 202 has its run, finished",
            timeout=240,
        )


def test_redis_stream_impulse_under_serve(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stream = f"bobrapet-test-{uuid.uuid4().hex[:10]}"
    prepare(
        home,
        impulse(
            "orders", "redis-stream", mapping={"name": "{{ body.customer }}"}, **{"with": {"stream": stream}}
        ),
    )
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        with serving(home):

            def group_exists() -> bool:
                try:
                    return bool(redis.xinfo_groups(stream))
                except Exception:
                    return False

            wait_until(group_exists, "the consumer group")
            entry = redis.xadd(stream, {"data": json.dumps({"customer": "Hedy"})})
            wait_until(lambda: "Succeeded" in phases(home).values(), "the entry's run")
            run = stored(home, STORY_RUN)[0]
            assert run["status"]["output"] == {"greeting": "Hello, Hedy!"}
            trigger = stored(home, STORY_TRIGGER)[0]
            assert trigger["spec"]["deliveryIdentity"]["key"] == entry.decode()
            wait_until(lambda: redis.xpending(stream, "bobrapet.default.orders")["pending"] == 0, "the ack")
    finally:
        redis.delete(stream)
        redis.close()


USER_IMPULSE = """
import os
import pathlib


def beat(ctx):
    pathlib.Path(ctx.config["pidfile"]).write_text(str(os.getpid()))
    ctx.trigger_story({"name": "pulse"}, key="first-beat")
    while not ctx.sleep(0.1):
        pass
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_user_impulse_runs_under_serve_and_stops_with_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    module_dir = tmp_path / "code"
    module_dir.mkdir()
    (module_dir / "beats.py").write_text(textwrap.dedent(USER_IMPULSE))
    pidfile = tmp_path / "impulse.pid"
    template = {
        "apiVersion": "catalog.bubustack.io/v1alpha1",
        "kind": "ImpulseTemplate",
        "metadata": {"name": "beats"},
        "spec": {"version": "1.0.0", "supportedModes": ["deployment"], "entrypoint": "beats:beat"},
    }
    prepare(home, template, impulse("heart", "beats", **{"with": {"pidfile": str(pidfile)}}))
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(module_dir), previous) if p)
    try:
        serve = start_serve(home)
    finally:
        if previous is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = previous
    try:
        pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text(), "the impulse process"))
        wait_until(lambda: "Succeeded" in phases(home).values(), "its run")
        assert _alive(pid)
    finally:
        assert serve.stop() == 0
    assert not _alive(pid), "SIGTERM to serve stops the impulse process"
