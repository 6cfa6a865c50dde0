"""The working state of one ``plan`` call.

Invariants:

* ``status`` starts as a shallow copy of the stored status and ``states`` as a shallow copy
  of ``status.stepStates``: a step state that does not change stays the very same dict
  object, so the controller can tell cheaply what changed.
* :meth:`Context.set_state` never turns a terminal state back into a non-terminal one
  (redrive removes states instead).
* The template variables are built lazily, once, and then kept up to date as steps reach
  a terminal state during the plan; step outputs are referenced, never copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from bobrapet.api.expressions import iter_templates
from bobrapet.api.phases import StepReason, is_terminal_phase
from bobrapet.api.runmeta import CANCEL_REQUESTED
from bobrapet.api.types.story import Story
from bobrapet.engine.config import EngineConfig
from bobrapet.engine.dag import Graph, Node
from bobrapet.engine.plan import Event, NewChildRun, NewStepRun, Plan
from bobrapet.engine.run_index import RunIndex, recall
from bobrapet.engine.snapshot import Snapshot
from bobrapet.engine.timefmt import aware, format_time, parse_time
from bobrapet.engine.variables import build_steps, run_inputs, run_variables_from, step_var_entry
from bobrapet.templating import OffloadedData

SUCCEEDED: Final = "Succeeded"
SKIPPED: Final = "Skipped"


def is_terminal(state: Mapping[str, Any] | None) -> bool:
    return state is not None and is_terminal_phase(state.get("phase"))


def is_queued(state: Mapping[str, Any] | None) -> bool:
    """A ``Pending`` step held back by a limit (reason ``Queued``): not started."""
    return state is not None and state.get("phase") == "Pending" and state.get("reason") == StepReason.QUEUED


def is_started(state: Mapping[str, Any] | None) -> bool:
    return state is not None and not is_queued(state)


def _started_at(old: Mapping[str, Any] | None) -> str | None:
    """When the step of state ``old`` started (``None``: it has not: held back by a limit, or
    its StepRun waits for a free execution slot)."""
    if old is None or is_queued(old) or old.get("reason") == StepReason.WAITING_FOR_CAPACITY:
        return None
    started: str | None = old.get("startedAt")
    return started


class Context:
    """Everything one plan reads and the decisions it accumulates."""

    def __init__(self, snapshot: Snapshot, story: Story | None, graph: Graph) -> None:
        self.snap = snapshot
        self._story = story
        self.graph = graph
        self.config: EngineConfig = snapshot.config
        self.now = aware(snapshot.now)
        self.now_str = format_time(self.now)
        run = snapshot.run
        meta = run.get("metadata") or {}
        self.run_name: str = meta.get("name") or ""
        self.namespace: str = meta.get("namespace") or "default"
        self.annotations: Mapping[str, str] = meta.get("annotations") or {}
        self.old_status: Mapping[str, Any] = run.get("status") or {}
        self.status: dict[str, Any] = dict(self.old_status)
        self.old_states: Mapping[str, Any] = self.old_status.get("stepStates") or {}
        self.states: dict[str, dict[str, Any]] = dict(self.old_states)
        self.run_uid: str = str(meta.get("uid") or "")
        #: Some step state was stored or removed by this plan (``states`` differs from
        #: ``old_states``).
        self.touched = False
        #: Names of the step states this plan stored (``None``: a state was removed).
        self.changed_states: set[str] | None = set()
        self._index: RunIndex | None = None
        self.plan = Plan(status=self.status)
        #: Some step reached a terminal state during the current pass.
        self.progress = False
        self._deadline: datetime | None = None
        self._requeue: float | None = None
        self._vars: dict[str, Any] | None = None
        self._inputs: dict[str, Any] | None = None
        self.launched_step_runs = 0
        self._created: set[str] = set()
        #: Reason of the phase written by this plan (``None``: the phase was not written).
        self.phase_reason: str | None = None
        #: Reason for ``Degraded=True`` on a non-degraded phase (output too large).
        self.degraded_reason: str | None = None

    @property
    def offload(self) -> OffloadedData:
        """How templates of this plan treat offloaded data (policy and loaded blobs)."""
        return OffloadedData(self.config.offloaded_data_policy, self.snap.blobs)

    def need_blobs(self, keys: Iterable[str]) -> None:
        """A template needs these offloaded values: the controller loads them, plans again."""
        self.plan.load_blobs.update(keys)

    @property
    def story(self) -> Story:
        if self._story is None:
            raise RuntimeError("this plan has no Story")
        return self._story

    # ------------------------------------------------------------------ step states

    def state(self, name: str) -> dict[str, Any] | None:
        return self.states.get(name)

    def set_state(
        self,
        name: str,
        phase: str,
        message: str,
        *,
        reason: str | None = None,
        sub_run: str | None = None,
        finished_at: str | None = None,
        step_run: str | None = None,
        started_at: str | None = None,
    ) -> bool:
        """Record a step state; return whether it changed.

        A step that ``Succeeded`` with its detail on a StepRun (``step_run``) keeps only a
        summary: phase, times and the StepRun's name (message and reason live on the StepRun).
        ``startedAt`` is kept from when the step started; a step that had not started (held
        back, or waiting for a slot) takes ``started_at`` (its StepRun's) or now.
        """
        old = self.states.get(name)
        terminal = is_terminal_phase(phase)
        if old is not None and is_terminal_phase(old.get("phase")) and not terminal:
            return False
        if step_run and phase == SUCCEEDED:
            return self._summarize(name, old, step_run, finished_at, started_at)
        new: dict[str, Any] = {"phase": phase, "message": message}
        if reason:
            new["reason"] = reason
        if phase != "Pending" or reason != StepReason.QUEUED:
            new["startedAt"] = _started_at(old) or started_at or self.now_str
        if terminal:
            new["finishedAt"] = (old or {}).get("finishedAt") or finished_at or self.now_str
        sub = sub_run or (old or {}).get("subStoryRunName")
        if sub:
            new["subStoryRunName"] = sub
        return self._store(name, old, new)

    def _summarize(
        self,
        name: str,
        old: dict[str, Any] | None,
        step_run: str,
        finished_at: str | None,
        started_at: str | None,
    ) -> bool:
        finished = (old or {}).get("finishedAt") or finished_at or self.now_str
        new = {
            "phase": SUCCEEDED,
            "startedAt": _started_at(old) or started_at or self.now_str,
            "finishedAt": finished,
            "stepRun": step_run,
        }
        return self._store(name, old, new)

    def _store(self, name: str, old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
        if old == new:
            return False
        self.states[name] = new
        self.touched = True
        if self.changed_states is not None:
            self.changed_states.add(name)
        if self._index is not None and not self._index.update(name, old, new):
            self._index = None
        terminal = is_terminal_phase(new.get("phase"))
        if terminal and not is_terminal(old):
            self.progress = True
            if self._vars is not None:
                self._vars["steps"][name] = step_var_entry(self.snap, self.graph, name, new)
        return True

    def drop_state(self, name: str) -> None:
        if self.states.pop(name, None) is not None:
            self.touched = True
            self.changed_states = None
            self._index = None

    def clear_states(self) -> None:
        if self.states:
            self.states.clear()
            self.touched = True
            self.changed_states = None
            self._index = None

    @property
    def index(self) -> RunIndex | None:
        """The incremental view of ``states`` (``None`` when the graph is invalid)."""
        if self._index is None and self.graph.error is None:
            found = None if self.touched else recall(self.run_uid, self.graph, self.old_states)
            if found is not None:
                found.states = self.states
            self._index = found or RunIndex(self.graph, self.states)
        return self._index

    def held_index(self) -> RunIndex | None:
        """The index if this plan built or recalled one (without building it)."""
        return self._index

    # ------------------------------------------------------------------ variables

    def inputs(self) -> dict[str, Any]:
        if self._inputs is None:
            self._inputs = run_inputs(self.snap.run, self._story)
        return self._inputs

    def variables(self) -> dict[str, Any]:
        """Template variables of the run, reflecting every state decided so far."""
        if self._vars is None:
            steps = build_steps(self.snap, self.graph, self.states)
            self._vars = run_variables_from(self.snap, self._story, self.inputs(), steps)
        return self._vars

    def variables_for(self, value: Any, *, condition: bool = False) -> dict[str, Any]:
        """Variables to evaluate ``value`` (a condition with ``condition``) with.

        When its templates name the steps they read statically (no ``steps[expr]``, no
        ``steps`` as a whole), ``steps`` holds just those: evaluating an ``if`` costs the same
        in a run of 10 steps or 1000. Otherwise (or once built) the full :meth:`variables`.
        """
        if self._vars is not None:
            return self._vars
        names: set[str] = set()
        for _, analysis in iter_templates(value, condition=condition):
            if analysis.dynamic_steps or not analysis.ok:
                return self.variables()
            names.update(analysis.step_names)
        steps = build_steps(self.snap, self.graph, self.states, names)
        return run_variables_from(self.snap, self._story, self.inputs(), steps)

    def add_branch_entry(self, branch: str) -> None:
        """Expose a terminal parallel branch (keyed by its name) to later templates."""
        if self._vars is not None:
            view = self.snap.step_runs.get(branch)
            if view is not None:
                self._vars["steps"][branch] = step_var_entry(self.snap, self.graph, branch, None)

    # ------------------------------------------------------------------ requeue

    def wake_at(self, when: datetime | None) -> None:
        if when is not None and (self._deadline is None or when < self._deadline):
            self._deadline = when

    def wake_in(self, seconds: float) -> None:
        self.wake_at(self.now + timedelta(seconds=max(seconds, 0.0)))

    def requeue_after(self) -> float | None:
        if self._deadline is None:
            return None
        return max((self._deadline - self.now).total_seconds(), 0.0)

    # ------------------------------------------------------------------ actions

    def create_step_run(self, run: NewStepRun) -> None:
        """Queue the creation of ``run`` (once per plan)."""
        if run.name not in self._created:
            self._created.add(run.name)
            self.plan.create_step_runs.append(run)
            self.launched_step_runs += 1

    def create_child_run(self, run: NewChildRun) -> None:
        if run.name not in self._created:
            self._created.add(run.name)
            self.plan.create_child_runs.append(run)

    def uncreate(self, name: str) -> bool:
        """Withdraw a creation queued by this plan; return whether there was one."""
        if name not in self._created:
            return False
        self._created.discard(name)
        self.plan.create_step_runs = [r for r in self.plan.create_step_runs if r.name != name]
        self.plan.create_child_runs = [r for r in self.plan.create_child_runs if r.name != name]
        return True

    def created(self, name: str) -> bool:
        return name in self._created

    def annotate_cancel(self, step_run: str) -> None:
        self.plan.annotate_step_runs.setdefault(step_run, {})[CANCEL_REQUESTED] = "true"

    # ------------------------------------------------------------------ misc

    def started_at(self, state: Mapping[str, Any] | None) -> datetime:
        parsed = parse_time((state or {}).get("startedAt"))
        return parsed if parsed is not None else self.now

    def event(self, type_: str, reason: str, message: str) -> None:
        self.plan.events.append(Event("Warning" if type_ == "Warning" else "Normal", reason, message))

    def node(self, name: str) -> Node:
        return self.graph.nodes[name]
