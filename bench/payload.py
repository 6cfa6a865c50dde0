"""The ``payload`` workload: a 50 MB step output passed to the next step, through the ``file``
storage and through S3 (a moto server on loopback).

Each backend is measured with ``bobrapet --home H run -f catalog -f payload-50mb -o json`` in a
fresh home (the files applied beforehand), under the /proc monitor of ``bench/run.py``: the
wall of the command, the peak RSS of the engine (the ``bobrapet run`` process) and of the
busiest worker, and the engine's peak as a multiple of the payload (target: at most 3x — the
engine passes references, the workers hold the data). The run's output must be the payload's
length.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.generate import CATALOG, PAYLOAD_BYTES
from bench.s3 import ACCESS_KEY, SECRET_KEY, moto_server, storage_env

if TYPE_CHECKING:
    from bench.run import Config

STORY = "payload-50mb"
#: The engine's peak RSS may be at most this multiple of the payload.
RSS_RATIO_LIMIT = 3.0
BACKENDS = ("file", "s3")


def _bucket(endpoint: str) -> str:
    import boto3

    name = f"bench-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client.create_bucket(Bucket=name)
    return name


def measure_backend(cfg: Config, backend: str, env: dict[str, str]) -> dict[str, Any]:
    """One ``bobrapet run`` of the payload Story with the storage of ``env``."""
    from bench import run as bench

    workload = [bench.WORKLOAD_DIR / CATALOG, bench.WORKLOAD_DIR / f"{STORY}.yaml"]
    with bench.fresh_home(cfg) as home:
        bench.apply(cfg, home, workload)
        argv = [str(cfg.bobrapet), "--home", str(home), "run", *bench._f_args(workload), "-o", "json"]
        argv += ["--timeout", f"{cfg.timeout:g}s"]
        done = bench.monitored(cfg, argv, home, env=env)
        engine_kb = bench.engine_peak_kb(done)
        workers = done.monitor.children(bench.WORKER_MARKER)
        row: dict[str, Any] = {
            "backend": backend,
            "payload_mb": round(PAYLOAD_BYTES / 1e6, 1),
            "wall_s": done.wall_s,
            "engine_rss_mb": bench._mb(engine_kb),
            "worker_rss_mb": bench._mb(max((w.peak_kb for w in workers), default=0)),
            "engine_rss_ratio": engine_kb * 1024 / PAYLOAD_BYTES,
            "error": None,
        }
        output = _output(done.out)
        if done.code != 0 or output != {"len": PAYLOAD_BYTES}:
            row["error"] = done.failure("run") if done.code != 0 else f"wrong output {output!r}"
        return row


def _output(path: Path) -> Any:
    import json

    try:
        return (json.loads(path.read_text()).get("status") or {}).get("output")
    except (OSError, ValueError, AttributeError):
        return None


def measure_payload(cfg: Config, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Both backends; a backend that cannot be set up is reported as an error row."""
    rows = [measure_backend(cfg, "file", {})]
    log(_line(rows[-1]))
    try:
        with moto_server() as endpoint:
            rows.append(measure_backend(cfg, "s3", storage_env(endpoint, _bucket(endpoint))))
    except (RuntimeError, OSError) as exc:
        rows.append({"backend": "s3", "error": f"S3 server: {exc}"})
    log(_line(rows[-1]))
    return rows


def _line(row: dict[str, Any]) -> str:
    if row.get("error") and "wall_s" not in row:
        return f"  payload   {row['backend']:<7} ERROR {row['error']}"
    text = (
        f"  payload   {row['backend']:<7} {row['wall_s']:8.3f} s  engine {row['engine_rss_mb']} MB "
        f"({row['engine_rss_ratio']:.2f}x)  worker {row['worker_rss_mb']} MB"
    )
    return text + (f"  ERROR {row['error']}" if row.get("error") else "")


def payload_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The engine's peak RSS per backend against 3x the payload; the walls are reported."""
    checks: list[dict[str, Any]] = []
    for row in rows:
        workload = f"payload-{row['backend']}"
        ratio = None if row.get("error") else row.get("engine_rss_ratio")
        checks.append(
            {
                "workload": workload,
                "what": "engine peak RSS / payload (x)",
                "value": ratio,
                "target": f"<= {RSS_RATIO_LIMIT:g}",
                "ok": None if ratio is None else ratio <= RSS_RATIO_LIMIT,
            }
        )
        for what, key in (("wall (s)", "wall_s"), ("worker peak RSS (MB)", "worker_rss_mb")):
            value = None if row.get("error") else row.get(key)
            checks.append(
                {"workload": workload, "what": what, "value": value, "target": "report", "ok": None}
            )
    return checks
