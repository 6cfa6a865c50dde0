"""A tiny simulated world for the pure engine: apply plans, move StepRuns, advance time.

The world keeps the StoryRun as a wire dict (status round-tripped through JSON like a
store would), StepRuns as :class:`StepRunView` by ``stepId`` and child StoryRuns as
:class:`ChildRunView` by parent step. No I/O, no real clock.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from bobrapet.api.types.enums import TERMINAL_PHASES
from bobrapet.api.types.story import Story
from bobrapet.engine import (
    Capacity,
    ChildRunView,
    EngineConfig,
    NewStepRun,
    Plan,
    Snapshot,
    StepRunView,
    plan,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

Behaviour = Callable[[str], "tuple[str, Any] | None"]


def make_story(spec: Mapping[str, Any] | str, name: str = "story", namespace: str = "default") -> Story:
    if isinstance(spec, str):
        spec = yaml.safe_load(spec)
    return Story.model_validate(
        {
            "apiVersion": "bubustack.io/v1alpha1",
            "kind": "Story",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def engram_refs(story: Story) -> set[str]:
    names: set[str] = set()
    for block in (story.spec.steps, story.spec.compensations or [], story.spec.finally_ or []):
        for step in block:
            if step.ref is not None:
                names.add(step.ref.name)
            for branch in (step.with_ or {}).get("steps", []) if step.type == "parallel" else []:
                if isinstance(branch, dict) and isinstance(branch.get("ref"), dict):
                    names.add(branch["ref"]["name"])
    return names


def succeed_all(step_id: str) -> tuple[str, Any]:
    return "Succeeded", {"step": step_id}


class World:
    def __init__(
        self,
        story: Story | Mapping[str, Any] | str | None,
        *,
        inputs: Mapping[str, Any] | None = None,
        config: EngineConfig | None = None,
        engrams: Mapping[str, Mapping[str, Any] | None] | None = None,
        templates: Mapping[str, Mapping[str, Any] | None] | None = None,
        run_name: str = "run1",
        annotations: Mapping[str, str] | None = None,
        sub_stories: Mapping[str, Story | None] | None = None,
        depth: int = 0,
        capacity: Capacity | None = None,
    ) -> None:
        self.story = story if isinstance(story, Story) or story is None else make_story(story)
        self.config = config or EngineConfig()
        if engrams is None and self.story is not None:
            engrams = {
                n: {"metadata": {"name": n}, "spec": {"templateRef": {"name": "tpl"}}}
                for n in engram_refs(self.story)
            }
        self.engrams = dict(engrams or {})
        self.templates = dict(
            templates if templates is not None else {"tpl": {"metadata": {"name": "tpl", "generation": 2}}}
        )
        spec: dict[str, Any] = {"storyRef": {"name": "story"}}
        if inputs is not None:
            spec["inputs"] = dict(inputs)
        self.run: dict[str, Any] = {
            "metadata": {
                "name": run_name,
                "namespace": "default",
                "uid": "uid-1",
                "generation": 1,
                "annotations": dict(annotations or {}),
            },
            "spec": spec,
            "status": {},
        }
        self.step_runs: dict[str, StepRunView] = {}
        self.child_runs: dict[str, ChildRunView] = {}
        self.created: list[NewStepRun] = []
        self.creation_order: list[str] = []
        self.finish_order: list[str] = []
        self.sub_stories = dict(sub_stories or {})
        self.depth = depth
        self.capacity = capacity or Capacity()
        self.now = T0
        self.last: Plan | None = None
        self.deleted_run = False
        self.plans = 0

    # ------------------------------------------------------------------ engine

    def snapshot(self) -> Snapshot:
        return Snapshot(
            run=self.run,
            story=self.story,
            engrams=self.engrams,
            templates=self.templates,
            step_runs=dict(self.step_runs),
            child_runs=dict(self.child_runs),
            now=self.now,
            config=self.config,
            depth=self.depth,
            capacity=self.capacity,
            sub_stories=self.sub_stories,
        )

    def reconcile(self) -> Plan:
        before = copy.deepcopy(self.run)
        result = plan(self.snapshot())
        assert self.run == before, "plan() must not mutate the snapshot"
        old_states = (before.get("status") or {}).get("stepStates") or {}
        new_states = result.status.get("stepStates") or {}
        differing = {
            n for n in old_states.keys() | new_states.keys() if old_states.get(n) != new_states.get(n)
        }
        assert result.changed_steps is None or differing <= result.changed_steps, (
            "a plan's changed_steps must name every step state it changed"
        )
        self.plans += 1
        self.apply(result)
        return result

    def apply(self, p: Plan) -> None:
        self.last = p
        for name in p.delete_step_runs:
            for key, view in list(self.step_runs.items()):
                if view.name == name:
                    del self.step_runs[key]
        for name in p.delete_child_runs:
            for key, child in list(self.child_runs.items()):
                if child.name == name:
                    del self.child_runs[key]
        for new in p.create_step_runs:
            if new.step_id not in self.step_runs:
                self.step_runs[new.step_id] = StepRunView(
                    name=new.name, step_id=new.step_id, parent_step=new.parent_step
                )
                self.created.append(new)
                self.creation_order.append(new.step_id)
        for new_child in p.create_child_runs:
            if new_child.step not in self.child_runs:
                self.child_runs[new_child.step] = ChildRunView(name=new_child.name, step=new_child.step)
        ann = self.run["metadata"]["annotations"]
        for key, value in p.annotations.items():
            if value is None:
                ann.pop(key, None)
            else:
                ann[key] = value
        self.run["status"] = json.loads(json.dumps(p.status))
        self.deleted_run = self.deleted_run or p.delete_run

    # ------------------------------------------------------------------ world changes

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.run["status"]
        return status

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")

    def state(self, step: str) -> dict[str, Any]:
        states: dict[str, Any] = self.status.get("stepStates") or {}
        return states.get(step) or {}

    def set_step(self, step_id: str, phase: str, *, output: Any = None, message: str | None = None) -> None:
        view = self.step_runs[step_id]
        terminal = phase in TERMINAL_PHASES
        self.step_runs[step_id] = replace(
            view,
            phase=phase,
            output=output,
            message=message,
            started_at=view.started_at or self.now,
            finished_at=self.now if terminal else None,
        )
        if terminal:
            self.finish_order.append(step_id)

    def succeed(self, step_id: str, output: Any = None) -> None:
        self.set_step(step_id, "Succeeded", output=output if output is not None else {})

    def fail(self, step_id: str, message: str = "boom") -> None:
        self.set_step(step_id, "Failed", message=message)

    def set_child(self, step: str, phase: str, output: Any = None, message: str | None = None) -> None:
        self.child_runs[step] = replace(
            self.child_runs[step],
            phase=phase,
            output=output,
            message=message,
            finished_at=self.now if phase in TERMINAL_PHASES else None,
        )

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def approve(self, gate: str, state: str = "Approved", message: str | None = None) -> None:
        gates = dict(self.status.get("gates") or {})
        gates[gate] = {"state": state, **({"message": message} if message else {})}
        self.status["gates"] = gates

    # ------------------------------------------------------------------ driving

    def drive(self, behaviour: Behaviour = succeed_all, *, max_plans: int = 500) -> str | None:
        """Reconcile until the run is terminal: StepRuns end per ``behaviour``; time jumps to requeues."""
        for _ in range(max_plans):
            p = self.reconcile()
            if self.phase in TERMINAL_PHASES:
                return self.phase
            moved = False
            for step_id, view in list(self.step_runs.items()):
                if view.phase in TERMINAL_PHASES:
                    continue
                outcome = behaviour(step_id)
                if outcome is None:
                    continue
                phase, payload = outcome
                if phase == "Succeeded":
                    self.succeed(step_id, payload)
                else:
                    self.set_step(step_id, phase, message=str(payload))
                moved = True
            for step, child in list(self.child_runs.items()):
                if child.phase not in TERMINAL_PHASES:
                    self.set_child(step, "Succeeded", output={"child": step})
                    moved = True
            if not moved:
                if p.requeue_after is None:
                    return self.phase
                self.advance(max(p.requeue_after, 0.001))
        raise AssertionError("run did not finish")
