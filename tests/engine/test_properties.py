"""Property: any DAG whose engram steps all succeed ends Succeeded, each step run once, in order."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.engine.harness import World


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int]:
    n = draw(st.integers(min_value=1, max_value=14))
    steps: list[dict[str, Any]] = []
    for i in range(n):
        needs = draw(st.sets(st.integers(min_value=0, max_value=max(i - 1, 0)), max_size=3)) if i else set()
        step: dict[str, Any] = {"name": f"s{i}", "ref": {"name": "e"}}
        deps = sorted(f"s{j}" for j in needs)
        use_template: bool = draw(st.booleans())
        if deps and use_template:
            # express one dependency through a template instead of needs
            step["with"] = {"v": "{{ steps." + deps[0] + ".output }}"}
            deps = deps[1:]
        if deps:
            step["needs"] = deps
        steps.append(step)
    order = draw(st.permutations(steps))
    return list(order), draw(st.integers(min_value=0, max_value=2**16))


@settings(max_examples=60, deadline=None)
@given(dags())
def test_random_dags_succeed_in_dependency_order(case: tuple[list[dict[str, Any]], int]) -> None:
    steps, seed = case
    rng = random.Random(seed)
    world = World({"steps": steps})

    def behaviour(step_id: str) -> tuple[str, Any] | None:
        return ("Succeeded", {"id": step_id}) if rng.random() < 0.6 else None

    for _ in range(400):
        world.reconcile()
        if world.phase == "Succeeded":
            break
        for step_id, view in list(world.step_runs.items()):
            if view.phase is None and (outcome := behaviour(step_id)) is not None:
                world.succeed(step_id, outcome[1])
    assert world.phase == "Succeeded"
    assert sorted(world.creation_order) == sorted(s["name"] for s in steps)
    for step in steps:
        deps = list(step.get("needs", []))
        if "with" in step:
            deps.append(step["with"]["v"].split(".")[1])
        for dep in deps:
            assert world.finish_order.index(dep) < world.creation_order.index(step["name"])
    assert world.status["stepsComplete"] == len(steps)
