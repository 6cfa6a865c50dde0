"""The ``serve`` workloads: deliveries accepted per second by ``bobrapet serve``, and the time
from a delivery to the start of its StoryRun.

In a fresh home holding the benchmark catalog and the one-step Story ``serve-1``,
``bobrapet serve`` is started on a free loopback port, then:

1. **delivery → start**: once every earlier run has finished, StoryTriggers are sent at a
   low steady rate (20/s for 5 s) to the idle engine; for each, the time from sending the
   request to its StoryRun's ``status.startedAt`` (same machine, same clock), p50/p99;
2. **burst**: ``--serve-requests`` StoryTriggers (3000) sent by ``--serve-concurrency``
   connections (32) as fast as they are answered; each ``201`` means the trigger is committed
   to the store. Reported: accepted/s over the whole burst, latency percentiles, and how long
   the engine then took to start every run (rows ``serve-triggers``);
3. **webhook** (``serve-webhook``, when serve runs Impulses): the same two phases against the
   webhook endpoint ``POST /impulses/default/bench-hook`` of a ``webhook`` Impulse starting
   ``serve-1`` (the JSON body is the run's inputs; each ``202`` means the StoryTrigger is
   stored).

The load generator is :mod:`bench.loadgen` (target and body builder are parameters).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.generate import CATALOG
from bench.loadgen import BodyOf, LoadResult, Target, get_json, latency_stats, run_load
from bench.serving import (
    STORYRUNS_PATH,
    TRIGGERS_PATH,
    ServeProcess,
    await_impulse,
    impulse,
    impulses_available,
    install_impulses,
    json_bodies,
    start_serve,
    trigger_bodies,
    trigger_name,
    webhook_target,
)

if TYPE_CHECKING:
    from bench.run import Config

STORY = "serve-1"
ACCEPTED_PER_S = 1000.0
P99_MS = 50.0
START_P50_MS = 20.0
TRIGGER_ANNOTATION = "storyrun.bubustack.io/trigger-request-name"
HOOK = "bench-hook"


@dataclass(frozen=True)
class ServeSettings:
    requests: int = 3000
    concurrency: int = 32
    start_rate: float = 20.0
    start_seconds: float = 5.0
    #: How long to wait for the runs of a phase to start.
    drain_timeout: float = 180.0


def _epoch(text: str | None) -> float | None:
    from bobrapet.api.timestamps import parse_timestamp

    moment = parse_timestamp(text)
    return None if moment is None else moment.timestamp()


async def started_runs(target: Target) -> dict[str, float]:
    """trigger name -> ``startedAt`` (epoch seconds) of every started StoryRun made by a trigger."""
    listed = await get_json(target, STORYRUNS_PATH)
    out: dict[str, float] = {}
    for run in listed.get("items") or ():
        trigger = ((run.get("metadata") or {}).get("annotations") or {}).get(TRIGGER_ANNOTATION)
        started = _epoch((run.get("status") or {}).get("startedAt"))
        if trigger and started is not None:
            out[str(trigger)] = started
    return out


async def await_starts(target: Target, names: set[str], timeout: float) -> dict[str, float]:
    """Poll until the runs of the triggers ``names`` have started (or ``timeout`` passed);
    their start times (epoch seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        started = await started_runs(target)
        if names <= started.keys() or time.monotonic() > deadline:
            return {n: started[n] for n in names if n in started}
        await asyncio.sleep(0.5)


async def await_idle(target: Target, timeout: float) -> None:
    """Poll until every StoryRun has finished (or ``timeout`` passed): the next phase then
    measures an idle engine, not the tail of the previous burst."""
    from bobrapet.api.phases import is_terminal_phase

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = (await get_json(target, STORYRUNS_PATH)).get("items") or ()
        if all(is_terminal_phase((run.get("status") or {}).get("phase")) for run in runs):
            return
        await asyncio.sleep(0.5)


def delivery_to_start(result: LoadResult, starts: dict[str, float]) -> list[float]:
    """Milliseconds from sending each accepted delivery to its run's ``startedAt`` (the
    delivery's StoryTrigger is read from its reply)."""
    out: list[float] = []
    for sample in result.samples:
        name = trigger_name(sample.body) if 200 <= sample.status < 300 else None
        if name is not None and name in starts:
            sent_at = sample.done_at - sample.latency
            out.append(1000 * (starts[name] - sent_at))
    return out


def _names(result: LoadResult) -> set[str]:
    return {name for s in result.samples if 200 <= s.status < 300 and (name := trigger_name(s.body))}


async def _phases(
    serve: ServeProcess, target: Target, body_of: BodyOf, settings: ServeSettings, log: Callable[[str], None]
) -> dict[str, Any]:
    """Delivery -> start at a low rate, then the burst, against ``target``."""
    label = "webhook" if target.path.startswith("/impulses/") else "triggers"
    reader = serve.target("", method="GET")
    await await_idle(reader, settings.drain_timeout)
    slow = await run_load(
        target,
        body_of,
        duration=settings.start_seconds,
        rate=settings.start_rate,
        concurrency=4,
        keep_bodies=True,
    )
    starts = await await_starts(reader, _names(slow), settings.drain_timeout)
    start_row = {
        **slow.summary(target),
        "rate": settings.start_rate,
        "started": len(starts),
        "delivery_to_start_ms": latency_stats(delivery_to_start(slow, starts)),
    }
    p50 = _ms(start_row["delivery_to_start_ms"]["p50"])
    log(f"  serve     {label:<8} start p50 {p50} (delivery -> startedAt)")
    offset = 1_000_000
    began = time.time()
    fast = await run_load(
        target,
        lambda i: body_of(i + offset),
        total=settings.requests,
        concurrency=settings.concurrency,
        keep_bodies=True,
    )
    fast_row = fast.summary(target)
    starts = await await_starts(reader, _names(fast), settings.drain_timeout)
    fast_row["started"] = len(starts)
    fast_row["all_started_after_s"] = (max(starts.values()) - began) if starts else None
    fast_row["engine_rss_mb"] = round(serve.peak_kb() / 1024, 1)
    log(
        f"  serve     {label:<8} {fast_row['accepted_per_s'] or 0:8.1f}/s  p99 "
        f"{_ms(fast_row['latency_ms']['p99'])}  ({fast_row['accepted']}/{fast_row['requests']} accepted)"
    )
    return {"start": start_row, "burst": fast_row}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


async def _all_phases(
    serve: ServeProcess, settings: ServeSettings, log: Callable[[str], None]
) -> dict[str, Any]:
    numbered = trigger_bodies(STORY, lambda i: {"n": i})
    result: dict[str, Any] = {
        "triggers": await _phases(serve, serve.target(TRIGGERS_PATH), numbered, settings, log)
    }
    if impulses_available():
        await await_impulse(serve, HOOK)
        hook = webhook_target(serve, HOOK)
        result["webhook"] = await _phases(serve, hook, json_bodies(lambda i: {"n": i}), settings, log)
    return result


def measure_serve(cfg: Config, settings: ServeSettings, log: Callable[[str], None]) -> dict[str, Any]:
    """The serve workloads in a fresh home (see the module docstring)."""
    from bench import run as bench

    home = Path(tempfile.mkdtemp(prefix="bobrapet-bench-serve-"))
    try:
        bench.apply(cfg, home, [bench.WORKLOAD_DIR / CATALOG, bench.WORKLOAD_DIR / f"{STORY}.yaml"])
        if impulses_available():
            install_impulses(cfg.bobrapet, home, [impulse(HOOK, "webhook", STORY)])
        serve = start_serve(cfg.bobrapet, home, workers=cfg.workers)
        try:
            result = asyncio.run(_all_phases(serve, settings, log))
        finally:
            serve.stop()
        result["settings"] = {
            "requests": settings.requests,
            "concurrency": settings.concurrency,
            "start_rate": settings.start_rate,
            "start_seconds": settings.start_seconds,
        }
        return result
    finally:
        if not cfg.keep:
            shutil.rmtree(home, ignore_errors=True)


def serve_targets(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per way in (the webhook, StoryTriggers through the API): accepted/s >= 1000, p99 <= 50 ms
    and delivery -> StoryRun start p50 <= 20 ms."""
    checks: list[dict[str, Any]] = []
    for way in ("webhook", "triggers"):
        phases = (result or {}).get(way)
        if phases is None and way == "webhook":
            continue  # serve runs no Impulses in this build
        burst = (phases or {}).get("burst") or {}
        start = (phases or {}).get("start") or {}
        rate = burst.get("accepted_per_s")
        accept_p99 = (burst.get("latency_ms") or {}).get("p99")
        start_p50 = (start.get("delivery_to_start_ms") or {}).get("p50")
        checks += [
            check(f"serve-{way}", "deliveries accepted/s", rate, ">=", ACCEPTED_PER_S),
            check(f"serve-{way}", "accept latency p99 (ms)", accept_p99, "<=", P99_MS),
            check(f"serve-{way}", "delivery -> StoryRun start p50 (ms)", start_p50, "<=", START_P50_MS),
        ]
    return checks


def check(workload: str, what: str, value: float | None, op: str, limit: float) -> dict[str, Any]:
    """One row of the targets table (``ok`` is None when there is no value)."""
    ok = None if value is None else (value >= limit if op == ">=" else value <= limit)
    return {"workload": workload, "what": what, "value": value, "target": f"{op} {limit:g}", "ok": ok}
