"""Micro-benchmark of the embedded store's write and watch paths (one chain step's writes).

Each "step" does what the engine does for one step of a chain: ``create`` a StepRun (trusted,
through the embedded admission, already claimed: with its running status), one
``update_status`` of it (finished) and one ``patch_status`` of the StoryRun whose
``stepStates`` grows by one entry (``--unclaimed``: create, then claim with a second status
write, as engines before launch-at-creation did). With ``--watch`` two watches (StepRuns and
StoryRuns) drain the events as the informers would::

    python -m bench.store_micro --steps 300 --repeat 5 [--watch] [--profile out.prof]

Prints the median CPU time of the event loop's thread per step and per operation
(microseconds; ``loop_step_us``: all of a step's writes and watch events;
``wall_step_us``: wall time of the whole pass) as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bobrapet.host.embedded import ControlPlane

NS = "default"
RUN = "micro-0000"


def story_run() -> dict[str, Any]:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StoryRun",
        "metadata": {"name": RUN, "namespace": NS, "labels": {"bubustack.io/story-name": "micro"}},
        "spec": {"storyRef": {"name": "micro"}, "inputs": {"n": 0}},
    }


def step_run(i: int, owner_uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StepRun",
        "metadata": {
            "name": f"{RUN}-s{i}",
            "namespace": NS,
            "labels": {
                "bubustack.io/storyrun": RUN,
                "bubustack.io/story-name": "micro",
                "bubustack.io/queue": "default",
                "bubustack.io/queue-priority": "0",
            },
            "ownerReferences": [
                {
                    "apiVersion": "runs.bubustack.io/v1alpha1",
                    "kind": "StoryRun",
                    "name": RUN,
                    "uid": owner_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "annotations": {
                "bobrapet.bubustack.io/retry-policy": "default",
                "bobrapet.bubustack.io/story-snapshot": "sha256:" + "d5" * 32,
            },
        },
        "spec": {
            "storyRunRef": {"name": RUN},
            "stepId": f"s{i}",
            "engramRef": {"name": "step"},
            "templateGeneration": 1,
            "input": {"n": f"{{{{ steps.s{i - 1}.output.n }}}}"},
            "retry": {"maxRetries": 3, "delay": "1s", "backoff": "exponential"},
            "idempotencyKey": f"ns/default/storyrun/{RUN}/step/s{i}",
        },
    }


def conditions(reason: str) -> list[dict[str, Any]]:
    return [
        {
            "type": t,
            "status": s,
            "reason": reason,
            "message": "Step completed successfully.",
            "lastTransitionTime": "2026-12-07T16:16:04Z",
            "observedGeneration": 1,
        }
        for t, s in (("Ready", "True"), ("Progressing", "False"), ("Degraded", "False"))
    ]


async def drain(client: Any, kind: Any, counter: list[int]) -> None:
    async for _ in client.watch(kind):
        counter[0] += 1


async def one_pass(
    home: Path, steps: int, watch: bool, inline_checkpoints: bool, claimed: bool
) -> dict[str, float]:
    from bobrapet.api.kinds import STEP_RUN, STORY_RUN

    times = {"create": 0.0, "update_status": 0.0, "patch_status": 0.0}
    async with ControlPlane(home) as plane:
        client = plane.client
        admission, client.admission = client.admission, None  # the StoryRun needs no Story here
        run = await client.create(story_run())
        client.admission = admission
        if inline_checkpoints and getattr(client, "_checkpointer", None) is not None:
            # compare with SQLite's own checkpoints inside the commits
            client._checkpointer.close()
            client._checkpointer = None
            client._conn.execute("PRAGMA wal_autocheckpoint = 1000")
        counter = [0]
        tasks = []
        if watch:
            tasks = [asyncio.create_task(drain(client, k, counter)) for k in (STEP_RUN, STORY_RUN)]
            await asyncio.sleep(0)
        uid = run["metadata"]["uid"]
        status: dict[str, Any] = {"phase": "Running", "stepStates": {}, "active": []}
        run = await client.update_status({**run, "status": status})
        await client.create(step_run(-1, uid), trusted=True)  # warm-up: admission imports itself
        clock = time.thread_time  # this thread's CPU time: what the event loop pays (less noisy)
        began = clock()
        for i in range(steps):
            claim = {
                "phase": "Running",
                "startedAt": "2026-12-07T16:16:04.422342Z",
                "podName": "vm-8539-be36e00b",
                "conditions": conditions("Running"),
            }
            t0 = clock()
            if claimed:  # created already claimed (what the engine does)
                running = created = await client.create(step_run(i, uid), trusted=True, status=claim)
                t1 = clock()
            else:
                created = await client.create(step_run(i, uid), trusted=True)
                t1 = clock()
                running = await client.update_status({**created, "status": claim})
            done_status = {
                **running["status"],
                "phase": "Succeeded",
                "output": {"n": i + 1},
                "finishedAt": "2026-12-07T16:16:04.425688Z",
                "exitCode": 0,
                "conditions": conditions("Completed"),
            }
            await client.update_status({**running, "status": done_status})
            t2 = clock()
            base = run["status"]
            new_status = {**base, "stepStates": dict(base["stepStates"])}
            new_status["stepStates"][f"s{i}"] = {
                "phase": "Succeeded",
                "startedAt": "2026-12-07T16:16:03.488195Z",
                "finishedAt": "2026-12-07T16:16:03.592545Z",
                "stepRun": created["metadata"]["name"],
            }
            new_status["stepsComplete"] = i + 1
            t3 = clock()
            run = await client.patch_status({**run, "status": new_status}, base)
            t4 = clock()
            times["create"] += t1 - t0
            times["update_status"] += (t2 - t1) if claimed else (t2 - t1) / 2
            times["patch_status"] += t4 - t3
            if watch:
                await asyncio.sleep(0)
        if watch:
            while counter[0] < (3 if claimed else 4) * steps + 2:
                await asyncio.sleep(0)
        loop_cpu = clock() - began
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        total = sum(times.values()) + (0 if claimed else times["update_status"])
    result = {k: v / steps * 1e6 for k, v in times.items()}
    result["step_us"] = total / steps * 1e6
    result["loop_step_us"] = loop_cpu / steps * 1e6  # every write and event of a step
    return result


async def pass_with_watch(
    home: Path, steps: int, watch: bool, inline: bool, claimed: bool
) -> dict[str, float]:
    start = time.perf_counter()
    result = await one_pass(home, steps, watch, inline, claimed)
    result["wall_step_us"] = (time.perf_counter() - start) / steps * 1e6
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--watch", action="store_true")
    parser.add_argument("--profile", default=None)
    parser.add_argument(
        "--unclaimed", action="store_true", help="create, then claim with a status write (older engines)"
    )
    parser.add_argument("--inline-checkpoints", action="store_true", help="SQLite checkpoints in commits")
    args = parser.parse_args(argv)
    results: list[dict[str, float]] = []
    profiler = cProfile.Profile() if args.profile else None
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            if profiler:
                profiler.enable()
            results.append(
                asyncio.run(
                    pass_with_watch(
                        Path(tmp), args.steps, args.watch, args.inline_checkpoints, not args.unclaimed
                    )
                )
            )
            if profiler:
                profiler.disable()
    if profiler:
        profiler.dump_stats(args.profile)
    medians = {k: round(statistics.median(r[k] for r in results), 1) for k in results[0]}
    json.dump(medians, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
