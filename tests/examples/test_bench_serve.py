"""The measuring code of the payload, serve and soak workloads (bench/loadgen, serve_load, soak,
serving): statistics, the load generator against a small loopback server, the thirds check."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from bench import run, serve_load, soak
from bench.loadgen import LoadResult, Sample, Target, get_json, latency_stats, percentile, run_load
from bench.serving import impulse, json_bodies, storyrun_bodies, trigger_bodies


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0.5) == 1
    assert percentile([7.0], 99) == 7
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 0)
    stats = latency_stats([1.0, 2.0, 3.0, 10.0])
    assert stats == {"count": 4.0, "mean": 4.0, "p50": 2.0, "p90": 10.0, "p99": 10.0, "max": 10.0}
    assert latency_stats([])["p99"] is None


def test_summary_counts_accepted_and_failures() -> None:
    target = Target("127.0.0.1", 1, "/x", accepted=(201,))
    samples = [Sample(i, 0.0, 0.010, 201, 0.0) for i in range(8)]
    samples += [Sample(8, 0.0, 0.5, 409, 0.0), Sample(9, 0.0, 0.5, 0, 0.0, "ConnectionResetError")]
    summary = LoadResult(samples, wall=2.0, concurrency=4).summary(target)
    assert summary["accepted"] == 8 and summary["requests"] == 10
    assert summary["accepted_per_s"] == 4.0
    assert summary["failed"] == {"409": 1, "ConnectionResetError": 1}
    assert summary["latency_ms"]["p99"] == pytest.approx(10.0)


async def _server(seen: list[tuple[str, bytes]], connections: list[int]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                line = await reader.readuntil(b"\r\n")
                length = 0
                while (header := await reader.readuntil(b"\r\n")) != b"\r\n":
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":")[1])
                body = await reader.readexactly(length)
                seen.append((line.decode().split()[0], body))
                if line.startswith(b"GET"):  # a chunked reply
                    payload = json.dumps({"items": [1, 2]}).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload))
                else:
                    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_the_load_generator_keeps_connections_and_follows_the_rate() -> None:
    seen: list[tuple[str, bytes]] = []
    connections: list[int] = []
    server = await _server(seen, connections)
    port = server.sockets[0].getsockname()[1]
    target = Target("127.0.0.1", port, "/apis/x")
    async with server:
        burst = await run_load(target, lambda i: json.dumps({"i": i}).encode(), total=50, concurrency=4)
        paced = await run_load(target, lambda i: b"{}", duration=0.5, rate=20, concurrency=2)
        assert await get_json(Target("127.0.0.1", port, "/"), "/list") == {"items": [1, 2]}
    assert [s.index for s in burst.samples] == list(range(50))
    assert all(s.status == 201 for s in burst.samples)
    assert sorted(json.loads(body)["i"] for method, body in seen[:50]) == list(range(50))
    assert len(connections) == 4 + 2 + 1  # one per worker, kept alive
    # 20/s for 0.5 s, open loop: requests 0..9 are due in the window, each at index / rate
    assert [round(s.due, 6) for s in paced.samples] == [i / 20 for i in range(10)]


def test_delivery_to_start_is_measured_from_sending() -> None:
    created = json.dumps({"kind": "StoryTrigger", "metadata": {"name": "t0"}}).encode()
    webhook = json.dumps({"storyTrigger": "t2", "decision": "Pending"}).encode()
    result = LoadResult(
        [
            Sample(0, 0, 0.004, 201, 100.004, body=created),  # the resource API answers the object
            Sample(1, 0, 0.004, 500, 100.5, body=b'{"metadata": {"name": "t1"}}'),  # refused
            Sample(2, 0, 0.002, 202, 101.002, body=webhook),  # a webhook names its trigger
            Sample(3, 0, 0.002, 202, 101.5, body=b"not json"),
        ]
    )
    starts = {"t0": 100.010, "t1": 100.6, "t2": 101.020}
    assert serve_load.delivery_to_start(result, starts) == [pytest.approx(10.0), pytest.approx(20.0)]


def test_request_bodies_are_storytriggers_storyruns_and_json() -> None:
    body_of = trigger_bodies("serve-1", lambda i: {"n": i})
    first, second = json.loads(body_of(0)), json.loads(body_of(1))
    assert first["kind"] == "StoryTrigger" and first["spec"]["inputs"] == {"n": 0}
    assert first["spec"]["deliveryIdentity"]["mode"] == "none"
    assert first["metadata"]["name"] != second["metadata"]["name"]
    run_body = json.loads(storyrun_bodies("soak-mixed", "cron", lambda i: {"size": 3})(7))
    assert run_body["metadata"]["name"] == "cron-7" and run_body["spec"]["inputs"] == {"size": 3}
    assert json_bodies(lambda i: {"n": i})(4) == b'{"n":4}'
    hook = impulse("bench-hook", "webhook", "serve-1")
    assert hook["spec"] == {"templateRef": {"name": "webhook"}, "storyRef": {"name": "serve-1"}}


def point(t: float, state: float, rss: float) -> soak.Point:
    return soak.Point(t, state, state, 0, 0, 0, 0, rss, 0, 0, 0, 0, 0, 0)


def _checks(points: list[soak.Point], duration: float = 90.0, window: float = 20.0) -> list[dict[str, Any]]:
    return soak.flatness(points, duration, 0.15, window)


def test_the_soak_check_compares_the_last_third_with_the_middle_third() -> None:
    flat = [point(t, 10 + (t % 20) / 10, 100) for t in range(0, 91, 10)]
    middle, last = soak.thirds(flat, 90)
    assert [p.t_s for p in middle] == [30, 40, 50] and [p.t_s for p in last] == [60, 70, 80, 90]
    assert [c["ok"] for c in _checks(flat)] == [True, True]
    growing = [point(t, 10 + t, 100 + t) for t in range(0, 91, 10)]
    state, rss = _checks(growing)
    assert state["ok"] is False and rss["ok"] is False and rss["value"] > 1.15
    assert [c["ok"] for c in _checks(flat, window=60)] == [None, None]  # thirds not past the window
    assert soak.soak_targets({"checks": _checks(flat)})[0].keys() == {
        "workload",
        "what",
        "value",
        "target",
        "ok",
    }


def test_which_extra_workloads_run() -> None:
    assert run.wanted_extras(None, None) == ["payload", "serve"]
    assert run.wanted_extras(None, 30) == []  # --soak alone runs the soak only
    assert run.wanted_extras("W1,serve", None) == ["serve"]
    assert run.wanted_extras("W1", 5) == []


def test_serve_targets_per_way_in() -> None:
    phases = {
        "start": {"delivery_to_start_ms": {"p50": 4.0}},
        "burst": {"accepted_per_s": 400.0, "latency_ms": {"p99": 120.0}},
    }
    checks = serve_load.serve_targets({"triggers": phases, "webhook": phases})
    assert [(c["workload"], c["ok"]) for c in checks] == [
        ("serve-webhook", False), ("serve-webhook", False), ("serve-webhook", True),
        ("serve-triggers", False), ("serve-triggers", False), ("serve-triggers", True),
    ]  # fmt: skip
    assert [c["workload"] for c in serve_load.serve_targets({"triggers": phases})] == ["serve-triggers"] * 3
    assert [c["value"] for c in serve_load.serve_targets(None)] == [None] * 3  # failed: no figures
