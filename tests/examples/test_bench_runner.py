"""The benchmark runner's measuring code (bench/run.py, procmon, store_stats) on fake processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from bench import procmon, run, store_stats
from bench.generate import WORKLOADS

# A fake engine: allocates ~40 MB, starts one child that allocates ~20 MB and looks like a worker.
FAKE_ENGINE = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c",
        "import time; b = bytearray(20 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.6)",
        "executors.local.worker"])
    blob = bytearray(40 * 2**20); blob[::4096] = b"x" * len(blob[::4096])
    child.wait()
    print('{"ok": true}')
    """
)


def cfg(**changes: Any) -> run.Config:
    base = run.Config(
        bobrapet=Path("bobrapet"),
        repeat=1,
        warmup=False,
        workers=None,
        timeout=30,
        stall=0,
        keep=False,
        w4_via="driver",
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_monitored_process_reports_wall_exit_and_peak_memory_of_engine_and_worker(tmp_path: Path) -> None:
    done = run.monitored(cfg(), [sys.executable, "-c", FAKE_ENGINE], tmp_path)
    assert done.code == 0
    assert json.loads(done.out.read_text()) == {"ok": True}
    assert done.killed is None
    assert done.wall_s > 0.5  # the worker sleeps 0.6 s (no upper bound: a loaded machine is slow)
    sample = run.Sample("command", done.wall_s)
    run._memory(sample, done)
    assert 40 <= sample.engine_rss_mb < 200
    assert sample.workers == 1
    assert 20 <= sample.worker_rss_mb < sample.engine_rss_mb


def test_a_process_without_progress_is_killed_after_the_stall_period(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    code, _, killed = procmon.wait_with_rusage(proc, timeout=60, progress=lambda: 1, stall=1.5)
    assert code != 0
    assert killed is not None and "no progress" in killed


def test_a_process_past_its_timeout_is_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    code, _, killed = procmon.wait_with_rusage(proc, timeout=1.0)
    assert code != 0
    assert killed is not None and "timeout" in killed


def _store(home: Path, compacted: int, events: list[tuple[int, str]]) -> None:
    """A store file in the current layout: the last resourceVersion is the newest event's."""
    home.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(home / store_stats.STATE_FILE) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        conn.execute(
            "CREATE TABLE events (rv INTEGER PRIMARY KEY, kind TEXT, namespace TEXT, type TEXT, data TEXT)"
        )
        conn.execute("INSERT INTO meta VALUES ('compacted', ?)", (compacted,))
        conn.executemany(
            "INSERT INTO events VALUES (?, ?, 'default', 'MODIFIED', ?)", [(r, k, "x" * r) for r, k in events]
        )


def test_store_writes_are_the_resource_version_delta_broken_down_by_kind(tmp_path: Path) -> None:
    events = [
        (1, "stories.bubustack.io"),
        (2, "stepruns.runs.bubustack.io"),
        (3, "storyruns.runs.bubustack.io"),
    ]
    _store(tmp_path, compacted=0, events=events)
    assert store_stats.resource_version(tmp_path) == 3
    writes = store_stats.writes_since(tmp_path, 1)
    assert writes.count == 2
    assert writes.by_kind == {"stepruns": 1, "storyruns": 1}
    assert writes.bytes == 2 + 3
    assert writes.complete


def test_pruned_change_log_marks_the_breakdown_incomplete(tmp_path: Path) -> None:
    _store(tmp_path, compacted=5, events=[(9, "stepruns.runs.bubustack.io"), (10, "stories.bubustack.io")])
    writes = store_stats.writes_since(tmp_path, 2)
    assert writes.count == 8
    assert not writes.complete
    assert store_stats.resource_version(tmp_path / "missing") == 0


def test_stamped_wall_spans_first_start_to_last_finish() -> None:
    pairs: list[list[str | None]] = [
        ["2026-01-01T00:00:00Z", "2026-01-01T00:00:02Z"],
        ["2026-01-01T00:00:01.5Z", "2026-01-01T00:00:03.25Z"],
    ]
    assert run.stamped_wall(pairs) == pytest.approx(3.25)
    assert run.stamped_wall([["2026-01-01T00:00:00Z", None]]) is None


def _row(
    wid: str, wall: float, steps: int, bytes_per_step: float, doubles: str | None = None
) -> dict[str, Any]:
    workload = next(w for w in WORKLOADS if w.id == wid)
    samples = [run.Sample("engine", wall, writes=6 * steps, write_bytes=int(bytes_per_step * steps))]
    row = run.aggregate(workload, samples)
    assert row["doubles"] == doubles
    return row


def test_aggregation_doubling_and_targets() -> None:
    rows = {
        "W1-100": _row("W1-100", 0.125, 100, 1000),
        "W1-200": _row("W1-200", 0.375, 200, 2000, doubles="W1-100"),
    }
    assert rows["W1-100"]["engine"]["ms_per_step"] == pytest.approx(1.25)
    assert rows["W1-100"]["engine"]["writes_per_step"] == pytest.approx(6)
    (entry,) = run.doubling(rows)
    assert entry["engine_time_ratio"] == pytest.approx(3.0)
    assert entry["bytes_per_step_ratio"] == pytest.approx(2.0)
    assert entry["flag"] is True
    checks = {(c["workload"], c["what"]): c for c in run.targets(rows, [entry])}
    assert checks[("W1-100", "overhead per step (ms)")]["ok"] is True
    assert checks[("W1-200", "time vs W1-100 (x)")]["ok"] is False
    assert checks[("W4-200", "runs/s")]["ok"] is None  # not measured


def test_failed_samples_are_reported_not_averaged() -> None:
    workload = next(w for w in WORKLOADS if w.id == "W2-202")
    row = run.aggregate(workload, [run.Sample("engine", float("nan"), error="driver: killed")])
    assert row["errors"] == ["driver: killed"]
    assert "engine" not in row


def test_expected_outputs_match_the_engram_arithmetic() -> None:
    by_id = {w.id: w for w in WORKLOADS}
    assert run.expected_output(by_id["W1-100"], 0) == {"n": 100}
    assert run.expected_output(by_id["W2-202"], 0) == {"n": 400, "count": 200}
    assert run.expected_output(by_id["W3-10x10"], 0) == {"n": 10}
    assert run.expected_output(by_id["W4-200"], 7) == {"n": 10}


def test_selection_by_id_and_family() -> None:
    assert [w.id for w in run.select("W1", doubling_too=True)] == ["W1-100", "W1-200"]
    assert [w.id for w in run.select("W1,hello", doubling_too=False)] == ["hello", "W1-100"]
    assert "W4-400" not in [w.id for w in run.select(None, doubling_too=False)]


def test_w5_is_compared_per_step_with_the_base_of_its_shape() -> None:
    rows = {
        "W1-100": _row("W1-100", 0.25, 100, 1000),
        "W5-1000": _row("W5-1000", 3.0, 1000, 1500),
    }
    rows["W5-1000"]["engine"]["engine_rss_mb"] = 180.0
    (entry,) = run.scaling(rows)
    assert entry["base"] == "W1-100"
    assert entry["ms_per_step"] == pytest.approx(3.0)
    assert entry["time_ratio"] == pytest.approx(1.2)
    assert entry["bytes_per_step_ratio"] == pytest.approx(1.5)
    checks = {(c["workload"], c["what"]): c for c in run.scaling_targets(rows, [entry])}
    assert checks[("W5-1000", "ms/step vs W1-100 (x)")]["ok"] is True  # 1.2 <= 1.2
    assert checks[("W5-1000", "engine peak RSS (MB)")]["ok"] is False
    assert checks[("W5-802", "ms/step vs W2-202 (x)")]["ok"] is None  # not measured: shown as "-"


def test_store_targets_bytes_when_doubling_and_worst_writes_per_step() -> None:
    rows = {
        "W1-100": _row("W1-100", 0.25, 100, 1000),
        "W1-200": _row("W1-200", 0.5, 200, 1050, doubles="W1-100"),
        "W2-202": _row("W2-202", 0.3, 202, 800),
    }
    rows["W2-202"]["engine"]["writes_per_step"] = 2.5
    rows["W1-200"]["engine"]["writes_per_step"] = 2.9
    checks = run.store_targets(rows, run.doubling(rows))
    bytes_check, writes_check = checks
    assert bytes_check["what"] == "bytes/step vs W1-100 (x)"
    assert bytes_check["value"] == pytest.approx(1.05) and bytes_check["ok"] is True
    assert writes_check["workload"] == "W1-100"  # 6 writes per step in _row: the worst
    assert writes_check["ok"] is False


def test_w5_runs_in_full_benches_and_brings_its_bases_when_named() -> None:
    assert "W5-1000" in [w.id for w in run.select(None, doubling_too=True)]
    quick = [w.id for w in run.select(None, doubling_too=True, scaled_too=False)]
    assert "W5-1000" not in quick and "W1-100" in quick
    named = [w.id for w in run.select("W5", doubling_too=True, scaled_too=False)]
    assert named == ["W1-100", "W2-202", "W5-1000", "W5-802"]
    by_id = {w.id: w for w in WORKLOADS}
    assert run.expected_output(by_id["W5-1000"], 0) == {"n": 1000}
    assert run.expected_output(by_id["W5-802"], 0) == {"n": 1600, "count": 800}
