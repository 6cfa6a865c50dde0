"""The soak (``bench/run.py --soak MINUTES``): a long-lived ``bobrapet serve`` under steady mixed
load with a short retention must stay bounded.

In a fresh home (benchmark catalog, Story ``soak-mixed``; ``storyrun.retention-seconds``
30, ``job.ttl-seconds-after-finished`` 15, ``controller.cleanup-interval`` 1m), ``bobrapet
serve`` gets for ``MINUTES``:

* deliveries at ``--soak-rate`` per second (20) to the webhook of a ``webhook`` Impulse
  (``POST /impulses/default/soak-hook``; StoryTriggers through the resource API when serve runs
  no Impulses), every ``offload_every``-th (5th) with a 20 KB value that goes through storage,
  the others a few bytes;
* a ``cron`` Impulse firing every minute, and one StoryRun created directly every
  ``cron_every`` seconds (10), each with a 20 KB value.

Every ``sample_every`` seconds (10) it records the state directory (``state.db`` with its
``-wal``/``-shm``, ``logs/``, ``storage/``: bytes and files), serve's resident set (VmRSS) and
its workers', and the store's content (objects per kind, change-log rows). The check: once the
retention window is over, the state size and serve's RSS of the last third of the soak stay
within ``tolerance`` (15 %) of the middle third's (means; the size also gets a 4 MB slack for
SQLite's page reuse and the WAL's checkpoint cycle).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.generate import CATALOG
from bench.loadgen import Connection, LoadResult, get_json, run_load
from bench.serving import (
    IMPULSES_PATH,
    STORYRUNS_PATH,
    TRIGGERS_PATH,
    ServeProcess,
    await_impulse,
    impulse,
    impulses_available,
    install_impulses,
    json_bodies,
    start_serve,
    storyrun_bodies,
    trigger_bodies,
    webhook_target,
)

if TYPE_CHECKING:
    from bench.run import Config

STORY = "soak-mixed"
HOOK = "soak-hook"
CRON = "soak-cron"
BIG = 20_000
SMALL = 10
SIZE_SLACK_BYTES = 4 << 20


@dataclass(frozen=True)
class SoakSettings:
    minutes: float
    rate: float = 20.0
    offload_every: int = 5
    cron_every: float = 10.0
    retention: int = 30
    child_ttl: int = 15
    cleanup_interval: str = "1m"
    sample_every: float = 10.0
    tolerance: float = 0.15


@dataclass
class Point:
    """One sample of the soak."""

    t_s: float
    state_mb: float
    db_mb: float
    logs_mb: float
    storage_mb: float
    log_files: int
    blobs: int
    serve_rss_mb: float
    workers_rss_mb: float
    storyruns: int
    stepruns: int
    storytriggers: int
    events: int
    accepted: int


def _tree(path: Path) -> tuple[int, int]:
    """(bytes, files) under ``path``."""
    size = files = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.stat(os.path.join(root, name)).st_size
                files += 1
    return size, files


def _store_counts(home: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{home / 'state.db'}?mode=ro", uri=True, timeout=30)
        ) as db:
            for kind, count in db.execute("SELECT kind, count(*) FROM objects GROUP BY kind"):
                counts[str(kind).split(".")[0]] = int(count)
            counts["events"] = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        pass
    return counts


def sample(serve: ServeProcess, began: float, accepted: int) -> Point:
    home = serve.home
    db = sum(
        (home / name).stat().st_size
        for name in ("state.db", "state.db-wal", "state.db-shm")
        if (home / name).exists()
    )
    logs, log_files = _tree(home / "logs")
    storage, blobs = _tree(home / "storage")
    counts = _store_counts(home)
    mb = 1 << 20
    return Point(
        t_s=round(time.monotonic() - began, 1),
        state_mb=round((db + logs + storage) / mb, 3),
        db_mb=round(db / mb, 3),
        logs_mb=round(logs / mb, 3),
        storage_mb=round(storage / mb, 3),
        log_files=log_files,
        blobs=blobs,
        serve_rss_mb=round(serve.rss_kb() / 1024, 1),
        workers_rss_mb=round(serve.workers_rss_kb() / 1024, 1),
        storyruns=counts.get("storyruns", 0),
        stepruns=counts.get("stepruns", 0),
        storytriggers=counts.get("storytriggers", 0),
        events=counts.get("events", 0),
        accepted=accepted,
    )


def thirds(points: list[Point], duration: float) -> tuple[list[Point], list[Point]]:
    """The samples of the middle and of the last third of ``duration`` seconds."""
    middle = [p for p in points if duration / 3 <= p.t_s < 2 * duration / 3]
    last = [p for p in points if p.t_s >= 2 * duration / 3]
    return middle, last


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def flatness(points: list[Point], duration: float, tolerance: float, window: float) -> list[dict[str, Any]]:
    """State size and serve RSS: last third's mean within ``tolerance`` of the middle third's
    (``None`` when the soak is too short for its thirds to be past the retention ``window``)."""
    middle, last = thirds(points, duration)
    checks: list[dict[str, Any]] = []
    for what, key, slack in (
        ("state dir (MB), last/middle third", "state_mb", SIZE_SLACK_BYTES / (1 << 20)),
        ("serve RSS (MB), last/middle third", "serve_rss_mb", 0.0),
    ):
        a = _mean([getattr(p, key) for p in middle])
        b = _mean([getattr(p, key) for p in last])
        usable = a is not None and b is not None and duration / 3 >= window
        ratio = b / a if usable and a else None
        ok = None if not usable else b <= a * (1 + tolerance) + slack  # type: ignore[operator]
        checks.append(
            {
                "workload": "soak",
                "what": what,
                "value": ratio,
                "target": f"<= {1 + tolerance:g}" + (f" (+{slack:g} MB)" if slack else ""),
                "ok": ok,
                "middle": a,
                "last": b,
            }
        )
    return checks


def _configure(cfg: Config, home: Path, settings: SoakSettings) -> None:
    for key, value in (
        ("storyrun.retention-seconds", str(settings.retention)),
        ("job.ttl-seconds-after-finished", str(settings.child_ttl)),
        ("controller.cleanup-interval", settings.cleanup_interval),
    ):
        done = subprocess.run(
            [str(cfg.bobrapet), "--home", str(home), "config", "set", key, value],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"config set {key} failed: {done.stderr.strip()}")


async def _drive(serve: ServeProcess, settings: SoakSettings, log: Callable[[str], None]) -> dict[str, Any]:
    duration = settings.minutes * 60
    began = time.monotonic()
    points: list[Point] = []

    def inputs_of(index: int) -> dict[str, Any]:
        return {"size": BIG if index % settings.offload_every == 0 else SMALL}

    if impulses_available():
        await await_impulse(serve, HOOK)
        target, body_of = webhook_target(serve, HOOK), json_bodies(inputs_of)
    else:
        target, body_of = serve.target(TRIGGERS_PATH), trigger_bodies(STORY, inputs_of)
    progress = LoadResult()
    load = asyncio.create_task(
        run_load(target, body_of, duration=duration, rate=settings.rate, concurrency=8, result=progress)
    )
    cron_bodies = storyrun_bodies(STORY, "cron", lambda i: {"size": BIG})
    cron_runs = 0

    async def cron() -> None:
        nonlocal cron_runs
        connection = Connection(serve.target(STORYRUNS_PATH, accepted=(201,)))
        try:
            while time.monotonic() - began < duration:
                reply = await connection.request(cron_bodies(cron_runs))
                cron_runs += 1 if reply.status == 201 else 0
                await asyncio.sleep(settings.cron_every)
        finally:
            await connection.close()

    cron_task = asyncio.create_task(cron())
    while not load.done():
        accepted = sum(1 for s in progress.samples if s.status in target.accepted)
        point = await asyncio.to_thread(sample, serve, began, accepted)
        points.append(point)
        log(
            f"  soak      t={point.t_s:6.0f}s state {point.state_mb:7.2f} MB (db {point.db_mb:.2f}, "
            f"logs {point.log_files} files, {point.blobs} blobs) serve RSS {point.serve_rss_mb} MB, "
            f"runs {point.storyruns}, triggers {point.storytriggers}"
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(load), settings.sample_every)
    result = load.result()
    await cron_task
    points.append(await asyncio.to_thread(sample, serve, began, len(result.accepted(target))))
    summary = result.summary(target)
    summary["cron_runs"] = cron_runs
    summary["way_in"] = target.path
    if impulses_available():  # what the Impulses counted (the cron one fires every minute)
        reader = serve.target("", method="GET")
        summary["impulses"] = {
            name: (await get_json(reader, f"{IMPULSES_PATH}/{name}")).get("status") for name in (HOOK, CRON)
        }
    return {"load": summary, "points": points}


def write_curve(points: list[Point], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(points[0])))
        writer.writeheader()
        for point in points:
            writer.writerow(asdict(point))


def measure_soak(
    cfg: Config, settings: SoakSettings, curve: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Run the soak (see the module docstring); the curve also goes to ``curve`` (CSV)."""
    from bench import run as bench

    home = Path(tempfile.mkdtemp(prefix="bobrapet-bench-soak-"))
    try:
        bench.apply(cfg, home, [bench.WORKLOAD_DIR / CATALOG, bench.WORKLOAD_DIR / f"{STORY}.yaml"])
        _configure(cfg, home, settings)
        if impulses_available():
            hooks = [impulse(HOOK, "webhook", STORY), impulse(CRON, "cron", STORY, schedule="* * * * *")]
            install_impulses(cfg.bobrapet, home, hooks)
        serve = start_serve(cfg.bobrapet, home, workers=cfg.workers)
        try:
            driven = asyncio.run(_drive(serve, settings, log))
        finally:
            serve.stop()
        points: list[Point] = driven["points"]
        write_curve(points, curve)
        window = settings.retention + settings.child_ttl
        checks = flatness(points, settings.minutes * 60, settings.tolerance, window)
        return {
            "settings": asdict(settings),
            "load": driven["load"],
            "curve_csv": str(curve),
            "points": [asdict(p) for p in points],
            "checks": checks,
        }
    finally:
        if not cfg.keep:
            shutil.rmtree(home, ignore_errors=True)


def soak_targets(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in c.items() if k not in ("middle", "last")}
        for c in (result or {}).get("checks") or ()
    ]
