"""Run the benchmark workloads of ``../shared/bench/WORKLOADS.md`` and report the table it asks for.

    python bench/run.py               # every workload, warm-up + median of 3
    python bench/run.py --quick       # one repetition, no warm-up
    python bench/run.py --only W1-100,W4-200 --repeat 5

Each workload (``bench/workloads/``, see ``bench/generate.py``) is measured two ways, each in a
fresh home directory that already holds the catalog and the Story (``bobrapet apply``):

* **command**: ``bobrapet --home H run -f catalog -f story -o json``, what a user types; its wall
  time includes interpreter start-up, imports, re-applying the files and the worker pool start.
* **engine**: ``python -m bench.driver`` starts the engine in-process (EngineHost, workers
  ready) and only then submits the StoryRun(s) through the store client and awaits them; its
  wall is the cost of the runs themselves, "after the engine is up". W4 (many runs) is measured
  this way only: 200 (and 400) StoryRuns submitted back to back, all awaited.

Reported per workload: medians of the walls, per-step overhead (engine wall / steps), runs/s
(W4), peak RSS of the engine process and of its workers (``/proc`` VmHWM, polled), store
writes per step (resourceVersion delta / steps; every store write allocates one) and bytes
written per step, then the doubling ratios (W1 200 vs 100, W2 402 vs 202, W3 20x10 vs 10x10,
W4 400 vs 200 runs; a time ratio above 2.2 is flagged) and the issue's targets. Results go to
``bench/results.json``.

Then the workloads measured apart from the W table: ``payload`` (a 50 MB output through the
file storage and S3, :mod:`bench.payload`) and ``serve`` (deliveries accepted per second by
``bobrapet serve`` and delivery-to-start latency, :mod:`bench.serve_load`); ``--soak MINUTES``
runs the soak of a long-lived serve (:mod:`bench.soak`; alone unless ``--only`` names more).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.generate import CATALOG, WORKLOADS, Workload  # noqa: E402
from bench.payload import measure_payload, payload_targets  # noqa: E402
from bench.procmon import TreeMonitor, wait_with_rusage  # noqa: E402
from bench.serve_load import ServeSettings, measure_serve, serve_targets  # noqa: E402
from bench.soak import SoakSettings, measure_soak, soak_targets  # noqa: E402
from bench.store_stats import resource_version, writes_since  # noqa: E402

WORKLOAD_DIR = REPO / "bench" / "workloads"
RESULTS = REPO / "bench" / "results.json"
WORKER_MARKER = "executors.local.worker"
DOUBLING_LIMIT = 2.2
HELLO = Workload("hello", "hello", "hello", 1, lambda: [])
HELLO_FILES = [REPO / "examples" / "catalog.yaml", REPO / "examples" / "hello.yaml"]


# --------------------------------------------------------------------------- samples


@dataclass
class Sample:
    """One measured execution of a workload."""

    mode: str  # "command" or "engine"
    wall_s: float  # command: the process wall; engine: first submit -> last run terminal
    up_s: float | None = None  # engine: start-up until workers are ready
    submit_s: float | None = None  # engine: creating the StoryRuns
    stamped_s: float | None = None  # last finishedAt - first startedAt of the run(s)
    engine_rss_mb: float = 0.0
    worker_rss_mb: float = 0.0
    workers: int = 0
    writes: int = 0
    write_bytes: int = 0
    writes_by_kind: dict[str, int] = field(default_factory=dict)
    writes_complete: bool = True
    note: str | None = None
    error: str | None = None
    workers_rss_total_mb: float = 0.0  # the sum of the workers' peaks (W6: engine + workers)


@dataclass
class Config:
    bobrapet: Path
    repeat: int
    warmup: bool
    workers: int | None
    timeout: float
    stall: float
    keep: bool
    w4_via: str


def expected_output(workload: Workload, index: int) -> dict[str, Any]:
    """The Story output a correct run of ``workload`` produces (run ``index`` for W4)."""
    if workload.kind == "W1":
        return {"n": workload.steps}
    if workload.kind == "W2":
        width = workload.steps - 2
        return {"n": 2 * width, "count": width}
    if workload.kind == "W3":
        return {"n": workload.steps // 10}
    if workload.family == "W4":
        return {"n": index + 3}
    if workload.family == "W6":
        return {"n": workload.steps}
    return {"greeting": "Hello, world!"}


def files_of(workload: Workload) -> list[Path]:
    if workload is HELLO:
        return HELLO_FILES
    return [WORKLOAD_DIR / CATALOG, WORKLOAD_DIR / workload.file]


def _f_args(paths: list[Path]) -> list[str]:
    return [arg for path in paths for arg in ("-f", str(path))]


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


def _seconds(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def stamped_wall(pairs: list[list[str | None]]) -> float | None:
    """Last finishedAt - first startedAt over the runs (None when a stamp is missing)."""
    starts = [_seconds(p[0]) for p in pairs]
    ends = [_seconds(p[1]) for p in pairs]
    if not starts or any(s is None for s in starts) or any(e is None for e in ends):
        return None
    return max(e for e in ends if e is not None) - min(s for s in starts if s is not None)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def fresh_home(cfg: Config) -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="bobrapet-bench-"))
    try:
        yield home
    finally:
        if not cfg.keep:
            shutil.rmtree(home, ignore_errors=True)


def apply(cfg: Config, home: Path, paths: list[Path]) -> None:
    done = subprocess.run(
        [str(cfg.bobrapet), "--home", str(home), "apply", *_f_args(paths)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=cfg.timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"apply failed (exit {done.returncode}): {done.stderr.strip()}")


@dataclass
class Finished:
    """A monitored process after its exit."""

    code: int
    wall_s: float
    monitor: TreeMonitor
    maxrss_kb: int  # wait4: the maximum over the process and the children it reaped
    out: Path
    err: Path
    killed: str | None = None

    def failure(self, what: str) -> str:
        """Why the process failed, for the report: the kill reason or the end of its stderr."""
        return f"{what}: {self.killed}" if self.killed else f"{what} exit {self.code}: {_tail(self.err, 3)}"


def monitored(
    cfg: Config, argv: list[str], home: Path, *, interval: float = 0.05, env: dict[str, str] | None = None
) -> Finished:
    """Run ``argv`` from the repository root under a /proc monitor; stdout/stderr go to files
    (``env``: variables added to the environment)."""
    out, err = home / "bench.stdout", home / "bench.stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        start = time.perf_counter()
        environ = {**os.environ, **env} if env else None
        proc = subprocess.Popen(argv, cwd=REPO, stdout=stdout, stderr=stderr, env=environ)
        monitor = TreeMonitor(proc.pid, interval=interval).start()
        code, maxrss, killed = -1, 0, None
        try:
            code, maxrss, killed = wait_with_rusage(
                proc, cfg.timeout + 30, progress=lambda: resource_version(home), stall=cfg.stall
            )
        finally:
            wall = time.perf_counter() - start
            monitor.stop()
    return Finished(code, wall, monitor, maxrss, out, err, killed)


def engine_peak_kb(done: Finished) -> int:
    """The engine's own peak: its polled ``VmHWM`` (a kernel high-water mark, so one late
    sample is exact); wait4's figure only when the root was never sampled, because that one
    is the maximum over the root and every descendant it reaped."""
    return done.monitor.root_peak_kb or done.maxrss_kb


def _memory(sample: Sample, done: Finished) -> None:
    sample.engine_rss_mb = _mb(engine_peak_kb(done))
    workers = done.monitor.children(WORKER_MARKER)
    sample.workers = len(workers)
    sample.worker_rss_mb = _mb(max((w.peak_kb for w in workers), default=0))
    sample.workers_rss_total_mb = _mb(sum(w.peak_kb for w in workers))


def _store(sample: Sample, home: Path, rv_before: int) -> None:
    writes = writes_since(home, rv_before)
    sample.writes, sample.write_bytes = writes.count, writes.bytes
    sample.writes_by_kind, sample.writes_complete = writes.by_kind, writes.complete


def measure_command(cfg: Config, workload: Workload) -> Sample:
    """``bobrapet run -f ... -o json`` in a fresh home (the files applied beforehand)."""
    with fresh_home(cfg) as home:
        paths = files_of(workload)
        apply(cfg, home, paths)
        rv_before = resource_version(home)
        argv = [str(cfg.bobrapet), "--home", str(home), "run", *_f_args(paths), "-o", "json"]
        argv += ["--timeout", f"{cfg.timeout:g}s"]
        if cfg.workers:
            argv += ["--workers", str(cfg.workers)]
        done = monitored(cfg, argv, home)
        code = done.code
        sample = Sample("command", done.wall_s)
        _memory(sample, done)
        _store(sample, home, rv_before)
        try:
            run = json.loads(done.out.read_text())
        except ValueError:
            sample.error = done.failure("run")
            return sample
        status = run.get("status") or {}
        sample.stamped_s = stamped_wall([[status.get("startedAt"), status.get("finishedAt")]])
        if code != 0 or status.get("phase") != "Succeeded":
            sample.error = f"exit {code}, phase {status.get('phase')}: {status.get('message')}"
        elif status.get("output") != expected_output(workload, 0):
            sample.error = f"wrong output {status.get('output')!r}"
        return sample


def _driver(cfg: Config, home: Path, workload: Workload, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "bench.driver", "--home", str(home), "--story", workload.story]
    argv += ["--runs", str(workload.runs), "--timeout", str(cfg.timeout), *extra]
    if workload.family == "W4":
        argv.append("--numbered")
    if cfg.workers:
        argv += ["--workers", str(cfg.workers)]
    return argv


def _check_runs(sample: Sample, workload: Workload, result: dict[str, Any]) -> None:
    phases = result.get("phases") or {}
    if phases != {"Succeeded": workload.runs}:
        sample.error = f"run phases {phases}"
        return
    outputs = result.get("outputs") or []
    wrong = [i for i, o in enumerate(outputs) if o != expected_output(workload, i)]
    if wrong:
        sample.error = f"{len(wrong)} wrong outputs, first: run {wrong[0]} -> {outputs[wrong[0]]!r}"


def measure_engine(cfg: Config, workload: Workload) -> Sample:
    """The runs alone, submitted to an engine that is already up (``bench.driver``)."""
    with fresh_home(cfg) as home:
        apply(cfg, home, files_of(workload))
        rv_before = resource_version(home)
        # The driver reports its own and its workers' peak RSS: poll /proc only rarely.
        done = monitored(cfg, _driver(cfg, home, workload), home, interval=1.0)
        try:
            result = json.loads(done.out.read_text())
        except ValueError:
            sample = Sample("engine", float("nan"), error=done.failure("driver"))
            _memory(sample, done)
            return sample
        sample = Sample("engine", result["drive_s"], up_s=result["up_s"], submit_s=result["submit_s"])
        sample.stamped_s = stamped_wall(result.get("timestamps") or [])
        _memory(sample, done)
        if result.get("engine_peak_kb"):
            sample.engine_rss_mb = _mb(int(result["engine_peak_kb"]))
        if result.get("worker_peak_kb"):
            sample.workers = len(result["worker_peak_kb"])
            sample.worker_rss_mb = _mb(max(int(k) for k in result["worker_peak_kb"]))
            sample.workers_rss_total_mb = _mb(sum(int(k) for k in result["worker_peak_kb"]))
        _store(sample, home, rv_before)
        _check_runs(sample, workload, result)
        return sample


def measure_w4_wait(cfg: Config, workload: Workload) -> Sample:
    """W4 through the CLI: submit every run (no engine), then ``bobrapet wait`` the last one."""
    with fresh_home(cfg) as home:
        apply(cfg, home, files_of(workload))
        rv_before = resource_version(home)
        submitted = subprocess.run(
            _driver(cfg, home, workload, "--submit-only"),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=cfg.timeout,
            check=False,
        )
        if submitted.returncode != 0:
            return Sample("engine", float("nan"), error=f"submit failed: {submitted.stderr[-2000:]}")
        names = json.loads(submitted.stdout)["names"]
        total, extra_waits, engine_kb, worker_kb, workers = 0.0, 0, 0, 0, 0
        pending = [names[-1]]
        finals: dict[str, dict[str, Any]] = {}
        while pending:
            name = pending.pop()
            argv = [str(cfg.bobrapet), "--home", str(home), "wait", name, "-o", "json"]
            argv += ["--timeout", f"{cfg.timeout:g}s"]
            done = monitored(cfg, argv, home)
            total += done.wall_s
            engine_kb = max(engine_kb, engine_peak_kb(done))
            peaks = [w.peak_kb for w in done.monitor.children(WORKER_MARKER)]
            worker_kb, workers = max([worker_kb, *peaks]), max(workers, len(peaks))
            if done.code not in (0, 1):
                return Sample("engine", total, error=done.failure(f"wait {name}"))
            finals = _stored_runs(home, names)
            pending = [n for n in names if (finals.get(n) or {}).get("status", {}).get("finishedAt") is None]
            extra_waits += 1 if pending else 0
        sample = Sample("engine", total, engine_rss_mb=_mb(engine_kb), worker_rss_mb=_mb(worker_kb))
        sample.workers = workers
        _store(sample, home, rv_before)
        runs = [finals[n] for n in names]
        statuses = [r.get("status") or {} for r in runs]
        sample.stamped_s = stamped_wall([[s.get("startedAt"), s.get("finishedAt")] for s in statuses])
        result = {
            "phases": _count(str(s.get("phase")) for s in statuses),
            "outputs": [s.get("output") for s in statuses],
        }
        _check_runs(sample, workload, result)
        if extra_waits:
            sample.note = f"{extra_waits} more `bobrapet wait` needed after the last run finished"
        return sample


def _count(values: Iterator[str] | Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _stored_runs(home: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    import sqlite3

    wanted = set(names)
    with sqlite3.connect(f"file:{home / 'state.db'}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute("SELECT name, data FROM objects WHERE kind LIKE 'storyruns.%'").fetchall()
    return {name: json.loads(data) for name, data in rows if name in wanted}


# --------------------------------------------------------------------------- aggregation


def _median(values: list[float]) -> float | None:
    clean = [v for v in values if v == v]  # drop NaN
    return statistics.median(clean) if clean else None


def _max(values: list[float]) -> float | None:
    return max(values) if values else None


def aggregate(workload: Workload, samples: list[Sample]) -> dict[str, Any]:
    """Medians per mode; per-step and per-run figures from the median walls."""
    row: dict[str, Any] = {
        "id": workload.id,
        "family": workload.family,
        "story": workload.story,
        "steps": workload.steps,
        "runs": workload.runs,
        "total_steps": workload.total_steps,
        "doubles": workload.doubles,
        "errors": sorted({s.error for s in samples if s.error}),
        "samples": [asdict(s) for s in samples],
    }
    for mode in ("command", "engine"):
        good = [s for s in samples if s.mode == mode and s.error is None]
        if not good:
            continue
        wall = _median([s.wall_s for s in good])
        steps = workload.total_steps
        row[mode] = {
            "repetitions": len(good),
            "wall_s": wall,
            "walls_s": [round(s.wall_s, 4) for s in good],
            "up_s": _median([s.up_s for s in good if s.up_s is not None]),
            "submit_s": _median([s.submit_s for s in good if s.submit_s is not None]),
            "stamped_s": _median([s.stamped_s for s in good if s.stamped_s is not None]),
            "ms_per_step": None if wall is None else 1000 * wall / steps,
            "runs_per_s": None if not wall else workload.runs / wall,
            "engine_rss_mb": _max([s.engine_rss_mb for s in good]),
            "worker_rss_mb": _max([s.worker_rss_mb for s in good]),
            "workers": _max([float(s.workers) for s in good]),
            "total_rss_mb": _max([s.engine_rss_mb + s.workers_rss_total_mb for s in good]),
            "writes_per_step": _median([s.writes / steps for s in good]),
            "bytes_per_step": _median([s.write_bytes / steps for s in good if s.writes_complete]),
            "writes_by_kind": good[-1].writes_by_kind,
        }
    return row


def doubling(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Ratios of each doubled workload to its base: time, writes per step, bytes per step."""
    out: list[dict[str, Any]] = []
    for row in rows.values():
        base = rows.get(row["doubles"] or "")
        if base is None:
            continue
        entry: dict[str, Any] = {"workload": row["id"], "base": base["id"]}
        for mode in ("engine", "command"):
            a, b = (base.get(mode) or {}), (row.get(mode) or {})
            if a.get("wall_s") and b.get("wall_s"):
                entry[f"{mode}_time_ratio"] = b["wall_s"] / a["wall_s"]
        eng_a, eng_b = base.get("engine") or {}, row.get("engine") or {}
        for key in ("writes_per_step", "bytes_per_step"):
            if eng_a.get(key) and eng_b.get(key):
                entry[f"{key}_ratio"] = eng_b[key] / eng_a[key]
        ratio = entry.get("engine_time_ratio")
        entry["flag"] = ratio is not None and ratio > DOUBLING_LIMIT
        out.append(entry)
    return out


Check = tuple[str, str, Callable[[dict[str, Any]], float | None], str, float]

#: Issue 8's targets ("Engine v2, part 2"); issue 3's (W1 ≤ 3 ms, W2/W3 ≤ 2 ms, W4 ≥ 50 runs/s,
#: hello ≤ 1.5 s) were met before and are implied.
TARGETS: list[Check] = [
    (
        "hello",
        "`bobrapet run` wall, start-up included (s)",
        lambda r: _get(r, "command", "wall_s"),
        "<=",
        0.35,
    ),
    ("W1-100", "overhead per step (ms)", lambda r: _get(r, "engine", "ms_per_step"), "<=", 1.5),
    ("W2-202", "overhead per step (ms)", lambda r: _get(r, "engine", "ms_per_step"), "<=", 1.0),
    ("W3-10x10", "overhead per step (ms)", lambda r: _get(r, "engine", "ms_per_step"), "<=", 1.0),
    ("W4-200", "runs/s", lambda r: _get(r, "engine", "runs_per_s"), ">=", 300.0),
    ("W2-202", "engine peak RSS (MB)", lambda r: _get(r, "engine", "engine_rss_mb"), "<=", 150.0),
]
WORKER_RSS_LIMIT = 60.0

#: W6 (issue 7): I/O-bound steps overlap by default (engine wall, like the other targets); the
#: ``bobrapet run`` wall (start-up included) and the peak RSS of engine + workers are reported.
W6_TARGETS: list[Check] = [
    (wid, "engine wall (s)", lambda r: _get(r, "engine", "wall_s"), "<=", 2.5)
    for wid in ("W6-sync", "W6-async")
]


def _get(row: dict[str, Any], mode: str, key: str) -> float | None:
    value = (row.get(mode) or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def targets(rows: dict[str, dict[str, Any]], doubled: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for wid, what, pick, op, limit in [*TARGETS, *W6_TARGETS]:
        value = pick(rows[wid]) if wid in rows else None
        ok = None if value is None else (value <= limit if op == "<=" else value >= limit)
        checks.append({"workload": wid, "what": what, "value": value, "target": f"{op} {limit:g}", "ok": ok})
    checks += w6_memory(rows)
    worker = [_get(r, m, "worker_rss_mb") for r in rows.values() for m in ("engine", "command")]
    worst = max((w for w in worker if w), default=None)
    checks.append(
        {
            "workload": "all",
            "what": "peak RSS of a warm worker (MB)",
            "value": worst,
            "target": f"<= {WORKER_RSS_LIMIT:g}",
            "ok": None if worst is None else worst <= WORKER_RSS_LIMIT,
        }
    )
    for entry in doubled:
        ratio = entry.get("engine_time_ratio")
        checks.append(
            {
                "workload": entry["workload"],
                "what": f"time vs {entry['base']} (x)",
                "value": ratio,
                "target": f"<= {DOUBLING_LIMIT:g}",
                "ok": None if ratio is None else ratio <= DOUBLING_LIMIT,
            }
        )
    return checks


# --------------------------------------------------------------------------- W5 and store targets

SCALING_LIMIT = 1.2  # W5 per-step time / the per-step time of its base (issue 8)
W5_RSS_LIMIT = 150.0  # engine peak RSS on W5, MB
BYTES_DOUBLING_LIMIT = 1.1  # bytes written per step, doubled workload / base
WRITES_PER_STEP_LIMIT = 3.0  # store writes per engram step
BY_ID: dict[str, Workload] = {w.id: w for w in WORKLOADS}


def with_scaling_bases(chosen: list[Workload]) -> list[Workload]:
    """``chosen`` plus the base of every W5 workload in it, in table order."""
    ids = {w.id for w in chosen} | {w.scales for w in chosen if w.scales}
    return [w for w in [HELLO, *WORKLOADS] if w.id in ids]


def scaling(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each W5 workload against the small workload of its shape (engine figures): the ratios of
    ms/step, writes/step and bytes/step (1.0 = per-step cost independent of the run's size)."""
    out: list[dict[str, Any]] = []
    for row in rows.values():
        workload = BY_ID.get(row["id"])
        if workload is None or not workload.scales:
            continue
        big, base = row.get("engine") or {}, (rows.get(workload.scales) or {}).get("engine") or {}
        entry: dict[str, Any] = {
            "workload": row["id"],
            "base": workload.scales,
            "ms_per_step": big.get("ms_per_step"),
            "base_ms_per_step": base.get("ms_per_step"),
            "engine_rss_mb": big.get("engine_rss_mb"),
        }
        for key, name in (
            ("ms_per_step", "time_ratio"),
            ("writes_per_step", "writes_per_step_ratio"),
            ("bytes_per_step", "bytes_per_step_ratio"),
        ):
            if big.get(key) and base.get(key):
                entry[name] = big[key] / base[key]
        out.append(entry)
    return out


def _check(workload: str, what: str, value: float | None, op: str, limit: float) -> dict[str, Any]:
    ok = None if value is None else (value <= limit if op == "<=" else value >= limit)
    return {"workload": workload, "what": what, "value": value, "target": f"{op} {limit:g}", "ok": ok}


def scaling_targets(rows: dict[str, dict[str, Any]], scaled: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """W5: ms/step against its base, and the engine's peak RSS (rows with no value when W5
    was not run, e.g. with --quick)."""
    by_workload = {entry["workload"]: entry for entry in scaled}
    checks: list[dict[str, Any]] = []
    for workload in (w for w in WORKLOADS if w.scales):
        entry = by_workload.get(workload.id) or {}
        ratio = entry.get("time_ratio")
        checks.append(_check(workload.id, f"ms/step vs {workload.scales} (x)", ratio, "<=", SCALING_LIMIT))
        rss = _get(rows.get(workload.id) or {}, "engine", "engine_rss_mb")
        checks.append(_check(workload.id, "engine peak RSS (MB)", rss, "<=", W5_RSS_LIMIT))
    return checks


def store_targets(rows: dict[str, dict[str, Any]], doubled: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bytes written per step when a workload doubles, and the worst store writes per engram
    step over the workloads (every step of the benchmark Stories is an engram step)."""
    checks = [
        _check(
            entry["workload"],
            f"bytes/step vs {entry['base']} (x)",
            entry.get("bytes_per_step_ratio"),
            "<=",
            BYTES_DOUBLING_LIMIT,
        )
        for entry in doubled
    ]
    per_step = {
        wid: value
        for wid, row in rows.items()
        if row["id"] != HELLO.id and (value := _get(row, "engine", "writes_per_step")) is not None
    }
    worst = max(per_step, key=lambda wid: per_step[wid], default=None)
    checks.append(
        _check(
            worst or "all",
            "store writes per engram step (worst workload)",
            per_step.get(worst or ""),
            "<=",
            WRITES_PER_STEP_LIMIT,
        )
    )
    return checks


def print_scaling(scaled: list[dict[str, Any]]) -> None:
    """The W5 table: per-step figures against the 100/200-step base of the same shape."""
    if not scaled:
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(shutil.get_terminal_size().columns, 160))
    title = f"W5 scaling: per-step cost vs the same shape at 100/200 steps (target <= {SCALING_LIMIT}x)"
    table = Table(title=title)
    for header in (
        "workload",
        "vs",
        "ms/step",
        "base ms/step",
        "time/step x",
        "writes/step x",
        "bytes/step x",
        "engine RSS MB",
    ):
        table.add_column(header, justify="left" if header in ("workload", "vs") else "right")
    for entry in scaled:
        table.add_row(
            entry["workload"],
            entry["base"],
            _fmt(entry.get("ms_per_step")),
            _fmt(entry.get("base_ms_per_step")),
            _fmt(entry.get("time_ratio")),
            _fmt(entry.get("writes_per_step_ratio")),
            _fmt(entry.get("bytes_per_step_ratio")),
            _fmt(entry.get("engine_rss_mb"), 1),
        )
    console.print(table)


def w6_memory(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """W6: the ``bobrapet run`` wall and the peak RSS of the engine plus all its workers
    (reported; the issue sets no limit on them)."""
    out: list[dict[str, Any]] = []
    for wid in ("W6-sync", "W6-async"):
        if wid in rows:
            wall = _get(rows[wid], "command", "wall_s")
            out.append(
                {
                    "workload": wid,
                    "what": "`bobrapet run` wall, start-up included (s)",
                    "value": wall,
                    "target": "report",
                    "ok": None,
                }
            )
            value = _get(rows[wid], "engine", "total_rss_mb") or _get(rows[wid], "command", "total_rss_mb")
            out.append(
                {
                    "workload": wid,
                    "what": "peak RSS engine + workers (MB)",
                    "value": value,
                    "target": "report",
                    "ok": None,
                }
            )
    return out


# --------------------------------------------------------------------------- output


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_report(
    rows: dict[str, dict[str, Any]], doubled: list[dict[str, Any]], checks: list[dict[str, Any]]
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(shutil.get_terminal_size().columns, 160))
    if rows:
        print_workloads(console, rows, doubled)
    goals = Table(title="Targets (issues 3, 8 and 9)")
    for header in ("workload", "measure", "value", "target", "ok"):
        goals.add_column(header)
    for check in checks:
        ok = {True: "yes", False: "MISSED", None: "-"}[check["ok"]]
        goals.add_row(check["workload"], check["what"], _fmt(check["value"]), check["target"], ok)
    console.print(goals)


def print_workloads(console: Any, rows: dict[str, dict[str, Any]], doubled: list[dict[str, Any]]) -> None:
    """The W table and the doubling table."""
    from rich.table import Table

    table = Table(title="Bobrapet engine benchmark (medians; engine = after the engine is up)")
    for header in (
        "workload",
        "steps",
        "runs",
        "cmd wall s",
        "run wall s",
        "engine wall s",
        "ms/step",
        "runs/s",
        "engine RSS MB",
        "worker RSS MB (n)",
        "writes/step",
        "KB/step",
        "errors",
    ):
        table.add_column(header, justify="left" if header in ("workload", "errors") else "right")
    for row in rows.values():
        eng, cmd = row.get("engine") or {}, row.get("command") or {}
        main = eng or cmd
        table.add_row(
            row["id"],
            str(row["steps"]),
            str(row["runs"]),
            _fmt(cmd.get("wall_s"), 3),
            _fmt(cmd.get("stamped_s"), 3),
            _fmt(eng.get("wall_s"), 3),
            _fmt(main.get("ms_per_step")),
            _fmt(eng.get("runs_per_s"), 1) if row["family"] == "W4" else "-",
            _fmt(main.get("engine_rss_mb"), 1),
            f"{_fmt(main.get('worker_rss_mb'), 1)} ({_fmt(main.get('workers'), 0)})",
            _fmt(main.get("writes_per_step")),
            _fmt(None if main.get("bytes_per_step") is None else main["bytes_per_step"] / 1024, 1),
            "yes (below)" if row["errors"] else "",
        )
    console.print(table)
    for row in rows.values():
        for error in row["errors"]:
            console.print(f"{row['id']}: {error}", markup=False, highlight=False)

    grow = Table(title=f"Doubling (time ratio above {DOUBLING_LIMIT} is flagged)")
    for header in ("workload", "vs", "engine time x", "cmd time x", "writes/step x", "bytes/step x", "flag"):
        grow.add_column(header, justify="left" if header in ("workload", "vs") else "right")
    for entry in doubled:
        grow.add_row(
            entry["workload"],
            entry["base"],
            _fmt(entry.get("engine_time_ratio")),
            _fmt(entry.get("command_time_ratio")),
            _fmt(entry.get("writes_per_step_ratio")),
            _fmt(entry.get("bytes_per_step_ratio")),
            "QUADRATIC?" if entry["flag"] else "",
        )
    console.print(grow)


def machine(cfg: Config) -> dict[str, Any]:
    def out(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
        except OSError:
            return ""
        return done.stdout.strip()

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "bobrapet": out([str(cfg.bobrapet), "--version"]),
        "commit": out(["git", "rev-parse", "--short", "HEAD"]),
    }


# --------------------------------------------------------------------------- main


def measure(cfg: Config, workload: Workload, log: Callable[[str], None]) -> dict[str, Any]:
    modes: list[Callable[[Config, Workload], Sample]]
    if workload.family == "W4":
        modes = [measure_w4_wait if cfg.w4_via == "wait" else measure_engine]
    elif workload.scales:  # W5: its targets are engine figures; `bobrapet run` adds nothing
        modes = [measure_engine]
    elif workload is HELLO:
        modes = [measure_command]
    else:
        modes = [measure_command, measure_engine]
    samples: list[Sample] = []
    for fn in modes:
        if cfg.warmup:
            warm = fn(cfg, workload)
            if warm.error:  # a failing workload fails again: report it once
                samples.append(warm)
                log(f"  {workload.id:<9} {warm.mode:<7} warm-up ERROR {warm.error}")
                continue
        for _ in range(cfg.repeat):
            sample = fn(cfg, workload)
            samples.append(sample)
            log(
                f"  {workload.id:<9} {sample.mode:<7} {sample.wall_s:8.3f} s"
                + (f"  ERROR {sample.error}" if sample.error else "")
            )
            if sample.error:
                break
    return aggregate(workload, samples)


def select(only: str | None, doubling_too: bool, scaled_too: bool = True) -> list[Workload]:
    """The workloads to run, in table order. ``only`` names ids or families; a W5 workload
    brings the base it is compared with. ``scaled_too=False`` drops W5 unless ``only`` names it."""
    chosen = [HELLO, *WORKLOADS]
    if not doubling_too:
        chosen = [w for w in chosen if not w.doubles]
    if only:
        wanted = [part.strip() for part in only.split(",") if part.strip()]
        chosen = [w for w in chosen if any(w.id == x or w.family == x for x in wanted)]
        return with_scaling_bases(chosen)
    if not scaled_too:
        chosen = [w for w in chosen if not w.scales]
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="one repetition, no warm-up, no W5 (unless --only names it)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="measured repetitions per mode (default 3)")
    parser.add_argument("--only", help="comma-separated workload ids or families (hello, W1, W2-402, ...)")
    parser.add_argument("--no-doubling", action="store_true", help="skip the doubled workloads")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (engine default)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a run is given up")
    parser.add_argument(
        "--stall", type=float, default=30.0, help="kill a run after this many seconds without a store write"
    )
    parser.add_argument("--w4-via", choices=("driver", "wait"), default="driver", help="how W4 is awaited")
    parser.add_argument("--bobrapet", type=Path, default=Path(sys.executable).parent / "bobrapet")
    parser.add_argument(
        "--json", type=Path, default=RESULTS, help="results file (default bench/results.json)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary home directories")
    parser.add_argument("--serve-requests", type=int, default=3000, help="deliveries of the serve burst")
    parser.add_argument("--serve-concurrency", type=int, default=32, help="connections of the serve burst")
    parser.add_argument(
        "--soak", type=float, metavar="MINUTES", help="run the soak of a long-lived serve for MINUTES"
    )
    parser.add_argument("--soak-rate", type=float, default=20.0, help="soak deliveries per second")
    return parser.parse_args(argv)


EXTRAS = ("payload", "serve")


def wanted_extras(only: str | None, soak: float | None) -> list[str]:
    """The workloads outside the W table to run: all of them by default, those ``--only``
    names, none when only ``--soak`` is given."""
    if only is None:
        return [] if soak else list(EXTRAS)
    names = {part.strip() for part in only.split(",")}
    return [name for name in EXTRAS if name in names]


def measure_extras(
    args: argparse.Namespace, cfg: Config, log: Callable[[str], None]
) -> tuple[dict[str, Any], list[dict[str, Any]], bool]:
    """payload, serve and the soak: (results, target rows, whether one failed)."""
    results: dict[str, Any] = {}
    checks: list[dict[str, Any]] = []
    failed = False
    extras = wanted_extras(args.only, args.soak)
    if "payload" in extras:
        log("payload: a 50 MB output through the file storage and S3")
        rows = measure_payload(cfg, log)
        results["payload"] = rows
        checks += payload_targets(rows)
        failed = failed or any(row.get("error") for row in rows)
    if "serve" in extras:
        log(f"serve: {args.serve_requests} StoryTriggers, {args.serve_concurrency} connections")
        settings = ServeSettings(requests=args.serve_requests, concurrency=args.serve_concurrency)
        try:
            results["serve"] = measure_serve(cfg, settings, log)
        except (RuntimeError, OSError) as exc:
            log(f"  serve: {exc}")
            results["serve"], failed = {"error": str(exc)}, True
        checks += serve_targets(results["serve"])
    if args.soak:
        log(f"soak: {args.soak:g} min of mixed load at {args.soak_rate:g}/s against serve")
        soak = SoakSettings(minutes=args.soak, rate=args.soak_rate)
        try:
            results["soak"] = measure_soak(cfg, soak, args.json.with_name("soak.csv"), log)
        except (RuntimeError, OSError) as exc:
            log(f"  soak: {exc}")
            results["soak"], failed = {"error": str(exc)}, True
        checks += soak_targets(results["soak"])
    return results, checks, failed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = Config(
        bobrapet=args.bobrapet,
        repeat=1 if args.quick else max(1, args.repeat),
        warmup=not args.quick,
        workers=args.workers,
        timeout=args.timeout,
        stall=args.stall,
        keep=args.keep,
        w4_via=args.w4_via,
    )

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    rows: dict[str, dict[str, Any]] = {}
    chosen = [] if args.soak and not args.only else select(args.only, not args.no_doubling, not args.quick)
    for workload in chosen:
        log(f"{workload.id}: {workload.total_steps} steps ({workload.runs} run(s))")
        try:
            rows[workload.id] = measure(cfg, workload, log)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            log(f"  {workload.id}: {exc}")
            rows[workload.id] = aggregate(workload, [Sample("command", float("nan"), error=str(exc))])
    extras, extra_checks, extras_failed = measure_extras(args, cfg, log)
    doubled = doubling(rows)
    scaled = scaling(rows)
    checks = (
        targets(rows, doubled) + scaling_targets(rows, scaled) + store_targets(rows, doubled) if rows else []
    )
    checks += extra_checks
    print_report(rows, doubled, checks)
    print_scaling(scaled)
    results = {
        "machine": machine(cfg),
        "settings": {
            "repeat": cfg.repeat,
            "warmup": cfg.warmup,
            "workers": cfg.workers,
            "w4_via": cfg.w4_via,
        },
        "workloads": list(rows.values()),
        "doubling": doubled,
        "scaling": scaled,
        "targets": checks,
        **extras,
    }
    args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results written to {args.json}", file=sys.stderr)
    return 1 if extras_failed or any(row["errors"] for row in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
