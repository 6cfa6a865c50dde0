"""Engine-side measurement: start the engine, then submit StoryRuns and await them all.

Run as a separate process by ``bench/run.py`` (so its peak RSS is the engine's)::

    python -m bench.driver --home H --story w1-chain-100 --runs 1

The home must already hold the Story and its Engrams (``bobrapet apply``). The driver opens
the embedded control plane, enters :class:`bobrapet.host.engine_host.EngineHost` (controllers
plus the warm worker pool, waiting until the workers are ready), and only then starts the
clock: ``runs`` StoryRuns are created back to back through the store client (admission
included), then awaited. It prints one JSON object on stdout: ``up_s`` (engine start-up),
``submit_s``, ``drive_s`` (first submit to last run terminal), the phase of every run and
their outputs, and its own and its workers' peak RSS (so the benchmark need not poll
``/proc`` while the engine runs: on a 2-core machine the polling slows the engine). Run ``i``
gets the inputs ``{"n": i}`` when ``--numbered`` is given.

With ``--submit-only`` the runs are only created (no engine), for ``bobrapet wait`` to drive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from bench.procmon import read_peak_kb

NAMESPACE = "default"


def storyrun(story: str, name: str, inputs: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StoryRun",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"storyRef": {"name": story}},
    }
    if inputs is not None:
        body["spec"]["inputs"] = inputs
    return body


def run_names(story: str, runs: int) -> list[str]:
    return [f"{story}-{i:04d}" for i in range(runs)]


async def submit(client: Any, story: str, runs: int, numbered: bool) -> list[str]:
    names = run_names(story, runs)
    for i, name in enumerate(names):
        await client.create(storyrun(story, name, {"n": i} if numbered else None))
    return names


def summary(finals: list[dict[str, Any]]) -> dict[str, Any]:
    phases: dict[str, int] = {}
    for run in finals:
        phase = str((run.get("status") or {}).get("phase"))
        phases[phase] = phases.get(phase, 0) + 1
    return {
        "phases": phases,
        "outputs": [(run.get("status") or {}).get("output") for run in finals],
        "timestamps": [
            [(run.get("status") or {}).get("startedAt"), (run.get("status") or {}).get("finishedAt")]
            for run in finals
        ],
    }


async def await_run(host: Any, name: str, timeout: float) -> dict[str, Any]:
    """``host.wait_for_run``, once the engine's cache has seen the run (it may lag a create)."""
    deadline = time.monotonic() + timeout
    while host.run(NAMESPACE, name) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    final: dict[str, Any] = await host.wait_for_run(NAMESPACE, name, timeout=timeout)
    return final


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    from bobrapet.host.embedded import ControlPlane

    home = Path(args.home)
    if args.submit_only:
        async with ControlPlane(home) as plane:
            start = time.perf_counter()
            names = await submit(plane.client, args.story, args.runs, args.numbered)
            return {"names": names, "submit_s": time.perf_counter() - start}

    from bobrapet.host.engine_host import EngineHost

    begin = time.perf_counter()
    async with ControlPlane(home) as plane, EngineHost(plane, workers=args.workers) as host:
        ready = getattr(host.executor, "wait_ready", None)
        if ready is not None:
            await ready()
        up = time.perf_counter()
        names = await submit(plane.client, args.story, args.runs, args.numbered)
        submitted = time.perf_counter()
        finals = [await await_run(host, name, args.timeout) for name in names]
        done = time.perf_counter()
        workers = list(getattr(host.executor, "pids", []) or [])
        worker_peaks = [read_peak_kb(pid) for pid in workers]  # read before the workers exit
    return {
        "up_s": up - begin,
        "submit_s": submitted - up,
        "drive_s": done - up,
        "worker_pids": workers,
        "engine_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "worker_peak_kb": [p for p in worker_peaks if p is not None],
        **summary(finals),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", required=True)
    parser.add_argument("--story", required=True)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--numbered", action="store_true", help="run i gets inputs {n: i}")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--submit-only", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(drive(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
