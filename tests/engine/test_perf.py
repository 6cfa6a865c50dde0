"""plan() stays cheap on big runs (target: ≤ 2 ms for a 400-step fan-out with 200 done).

The figure is printed; the assertion is a CPU-time bound 20x the target (other processes on a
loaded machine do not add to this process's CPU time), so it only catches a blow-up, e.g. a
quadratic plan. Engine speed proper is measured by ``make bench``.
"""

from __future__ import annotations

import time
from dataclasses import replace

from tests.engine.harness import World

from bobrapet.engine import plan


def _fan_out_world() -> World:
    steps = [{"name": "root", "ref": {"name": "e"}}]
    steps += [{"name": f"s{i}", "ref": {"name": "e"}, "needs": ["root"]} for i in range(399)]
    world = World({"steps": steps})
    world.reconcile()
    world.succeed("root")
    world.reconcile()
    for i in range(199):
        world.succeed(f"s{i}", {"i": i})
    world.reconcile()  # records the 200 completions
    for i in range(199, 399):
        world.step_runs[f"s{i}"] = replace(world.step_runs[f"s{i}"], phase="Running")
    world.reconcile()
    return world


def test_plan_time_for_large_fan_out() -> None:
    world = _fan_out_world()
    snap = world.snapshot()
    plan(snap)
    runs = 50
    start = time.process_time()
    for _ in range(runs):
        result = plan(snap)
    per_plan = (time.process_time() - start) / runs
    assert result.status["stepsComplete"] == 200
    assert result.status["stepStates"] is snap.run["status"]["stepStates"]
    print(f"plan() for 400-step fan-out with 200 completed: {per_plan * 1000:.3f} ms")
    assert per_plan < 0.04  # 20x the 2 ms target, in CPU time
