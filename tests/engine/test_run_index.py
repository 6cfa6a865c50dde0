"""The incremental run index (engine/run_index.py) changes no decision.

Three worlds drive the same random story with the same step outcomes:

* ``kept``: the status a plan returns is what the next plan sees (the very objects, as the
  controller's cache holds them after the write), so each plan continues from the index the
  previous one remembered;
* ``copied``: the status is round-tripped through JSON (the harness default), so each plan
  builds its index afresh;
* ``walked``: no index at all, every pass walks every step (the reference algorithm).

After every reconcile the three statuses and StepRun creations must be identical.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.engine.harness import World

from bobrapet.api.types.enums import TERMINAL_PHASES
from bobrapet.engine import plan as engine_plan
from bobrapet.engine import run_index
from bobrapet.engine.context import Context
from bobrapet.engine.plan import Plan


class KeptWorld(World):
    """A world whose run keeps the plan's status objects (no JSON round trip)."""

    def reconcile(self) -> Plan:
        result = engine_plan(self.snapshot())
        self.plans += 1
        status = result.status
        self.apply(result)
        self.run["status"] = status
        return result


class WalkedWorld(World):
    """A world whose plans use no index (every pass walks every step) and evaluate every
    template with the variables of every step."""

    def reconcile(self) -> Plan:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Context, "index", property(lambda self: None))
            mp.setattr(Context, "variables_for", lambda self, value, condition=False: self.variables())
            return super().reconcile()


@st.composite
def stories(draw: st.DrawFn) -> dict[str, Any]:
    def block(prefix: str, size: int, earlier: list[str]) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = []
        for i in range(size):
            name = f"{prefix}{i}"
            step: dict[str, Any] = {"name": name, "ref": {"name": "e"}}
            own = [s["name"] for s in steps]
            kind = draw(st.sampled_from(["engram"] * 6 + ["condition", "stop", "if", "if-step"]))
            if kind == "condition":
                step = {"name": name, "type": "condition", "if": "{{ inputs.go }}"}
            elif kind == "stop" and prefix == "s":
                phase = draw(st.sampled_from(["Succeeded", "Failed"]))
                step = {"name": name, "type": "stop", "with": {"phase": phase}}
            elif kind == "if":
                step["if"] = "{{ not inputs.go }}"
            elif kind == "if-step" and own:
                dep = draw(st.sampled_from(own))
                step["if"] = draw(
                    st.sampled_from(
                        [
                            f"steps.{dep}.phase == 'Succeeded'",
                            f"{{{{ steps.{dep}.output.id == '{dep}' }}}}",
                            "{{ steps | length > 1 }}",
                        ]
                    )
                )
            if draw(st.booleans()) and kind != "stop":
                step["allowFailure"] = True
            if own:
                needs = draw(st.sets(st.sampled_from(own), max_size=3))
                if needs:
                    step["needs"] = sorted(needs)
            if earlier and draw(st.booleans()):
                step.setdefault("needs", []).append(draw(st.sampled_from(earlier)))
            steps.append(step)
        return steps

    main = block("s", draw(st.integers(min_value=1, max_value=12)), [])
    spec: dict[str, Any] = {"steps": main}
    names = [s["name"] for s in main]
    if draw(st.booleans()):
        spec["compensations"] = block("c", draw(st.integers(min_value=1, max_value=3)), names)
    if draw(st.booleans()):
        spec["finally"] = block("f", draw(st.integers(min_value=1, max_value=3)), names)
    if draw(st.booleans()):
        spec["policy"] = {"retries": {"continueOnStepFailure": True}}
    if draw(st.booleans()):
        spec["output"] = {"last": "{{ steps." + names[-1] + ".phase }}", "n": "{{ steps | length }}"}
    return spec


def _same(worlds: list[World]) -> None:
    first = json.loads(json.dumps(worlds[0].status, sort_keys=True))
    for other in worlds[1:]:
        assert json.loads(json.dumps(other.status, sort_keys=True)) == first
        assert other.creation_order == worlds[0].creation_order


@settings(max_examples=120, deadline=None)
@given(stories(), st.booleans(), st.integers(min_value=0, max_value=2**16))
def test_index_changes_no_decision(spec: dict[str, Any], go: bool, seed: int) -> None:
    worlds: list[World] = [
        KeptWorld(spec, inputs={"go": go}),
        World(spec, inputs={"go": go}),
        WalkedWorld(spec, inputs={"go": go}),
    ]
    for i, world in enumerate(worlds):
        world.run["metadata"]["uid"] = f"uid-{i}-{seed}"
    rng = random.Random(seed)
    for _ in range(200):
        for world in worlds:
            world.reconcile()
        _same(worlds)
        if worlds[0].phase in TERMINAL_PHASES:
            break
        pending = [s for s, v in worlds[0].step_runs.items() if v.phase not in TERMINAL_PHASES]
        for step_id in pending:
            roll = rng.random()
            if roll < 0.5:
                continue
            for world in worlds:
                if roll < 0.85:
                    world.succeed(step_id, {"id": step_id})
                else:
                    world.fail(step_id)
    assert worlds[0].phase in TERMINAL_PHASES


def test_index_is_recalled_for_the_status_the_previous_plan_wrote() -> None:
    steps = [{"name": "s0", "ref": {"name": "e"}}]
    steps += [{"name": f"s{i}", "ref": {"name": "e"}, "needs": [f"s{i - 1}"]} for i in range(1, 50)]
    world = KeptWorld({"steps": steps})
    world.reconcile()
    built: list[int] = []
    original = run_index.RunIndex.__init__

    def counting(self: run_index.RunIndex, *args: Any) -> None:
        built.append(1)
        original(self, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_index.RunIndex, "__init__", counting)
        for i in range(49):
            world.succeed(f"s{i}")
            world.reconcile()
        assert built == []  # every plan continued from the previous one's index
        world.run["status"] = json.loads(json.dumps(world.status))
        world.succeed("s49")
        world.reconcile()
        assert built == [1]  # a status that is not the one written: rebuilt
    assert world.phase == "Succeeded"
    assert world.status["stepsComplete"] == 50


def test_memo_forgets_finished_runs_and_the_oldest() -> None:
    world = KeptWorld({"steps": [{"name": "a", "ref": {"name": "e"}}]})
    world.run["metadata"]["uid"] = "memo-finished"
    world.reconcile()
    assert "memo-finished" in run_index._MEMO.indexes
    world.succeed("a")
    world.reconcile()
    assert world.phase == "Succeeded"
    assert "memo-finished" not in run_index._MEMO.indexes
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_index, "MEMO_RUNS", 2)
        for i in range(3):
            other = KeptWorld({"steps": [{"name": "a", "ref": {"name": "e"}}]})
            other.run["metadata"]["uid"] = f"memo-{i}"
            other.reconcile()
        assert "memo-0" not in run_index._MEMO.indexes
        assert {"memo-1", "memo-2"} <= set(run_index._MEMO.indexes)
