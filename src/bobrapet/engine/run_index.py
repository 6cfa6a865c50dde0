"""What one reconcile needs to know about a run's step states, kept up to date incrementally.

A step event changes one or two step states, so a reconcile should not cost more in a run of
1000 steps than in one of 100 (issue 8). :class:`RunIndex` holds the facts the engine used to
recompute from every step state on every pass: the counters and active steps of the summary,
whether a main step failed, and per block the *frontier* — the non-terminal steps that have a
state (started, queued) or whose same-block dependencies are all terminal: the only steps a
pass can do anything for (unless a failure or a stop ends main: those passes walk every step).

Invariants:

* An index describes exactly one ``stepStates`` mapping (:attr:`RunIndex.states`) of one
  compiled graph; :meth:`RunIndex.update` is told of every change of a step state while a plan
  runs (``Context``), in O(dependents of the step). A state that goes back to non-terminal
  (redrive) or disappears drops the index: it is rebuilt in one walk.
* Between plans an index is remembered per run uid (:func:`remember` / :func:`recall`) and used
  again only for the very ``stepStates`` object it was left describing (identity, held
  strongly so it cannot be recycled) and the same graph: the status the previous plan
  produced, as the controller's cache holds it after writing it. Any other (another writer,
  a conflict retry, a restart) rebuilds it. The memo is a cache: the plan is the same with or
  without it, and the engine still performs no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from threading import Lock
from typing import Any, Final

from bobrapet.api.phases import OK_PHASES, StepReason, is_terminal_phase
from bobrapet.engine.dag import MAIN, Graph

_SUCCEEDED: Final = "Succeeded"
_SKIPPED: Final = "Skipped"
#: At most this many runs, and steps in all, are remembered between plans (the oldest are
#: forgotten, and rebuilt if they plan again).
MEMO_RUNS: Final = 1024
MEMO_STEPS: Final = 100_000


def _terminal(state: Mapping[str, Any] | None) -> bool:
    return state is not None and is_terminal_phase(state.get("phase"))


def _started(state: Mapping[str, Any]) -> bool:
    return not (state.get("phase") == "Pending" and state.get("reason") == StepReason.QUEUED)


class RunIndex:
    """Counters, active steps and per-block frontiers of one ``stepStates`` mapping."""

    __slots__ = (
        "active",
        "complete",
        "failed",
        "fresh",
        "frontier",
        "graph",
        "main_failed",
        "next_pos",
        "open",
        "pending",
        "pos",
        "settled",
        "skipped",
        "states",
    )

    def __init__(self, graph: Graph, states: Mapping[str, Mapping[str, Any]]) -> None:
        self.graph = graph
        self.states = states
        self.complete = self.failed = self.skipped = self.main_failed = 0
        #: Started, non-terminal steps (keys of ``states``).
        self.active: set[str] = set()
        #: Key -> its insertion position in ``states`` (the order summaries list steps in).
        self.pos: dict[str, int] = {}
        #: Non-terminal graph step -> how many of its same-block dependencies are not terminal.
        self.pending: dict[str, int] = {}
        #: Block -> its frontier (see the module docstring).
        self.frontier: dict[str, set[str]] = {block: set() for block in graph.order}
        #: Block -> how many of its steps are not terminal.
        self.open: dict[str, int] = dict.fromkeys(graph.order, 0)
        #: Steps that joined a frontier since the caller last emptied this list.
        self.fresh: list[str] = []
        #: Engram step -> (StepRun view, step state) last mirrored without change: while
        #: both are still the same objects, mirroring again would change nothing either.
        self.settled: dict[str, tuple[object, object]] = {}
        for i, (name, state) in enumerate(states.items()):
            self.pos[name] = i
            self._count(name, state, 1)
        self.next_pos = len(states)
        block_deps = graph.block_deps
        for block, order in graph.order.items():
            frontier = self.frontier[block]
            for name in order:
                current = states.get(name)
                if _terminal(current):
                    continue
                self.open[block] += 1
                waiting = sum(1 for dep in block_deps[name] if not _terminal(states.get(dep)))
                self.pending[name] = waiting
                if current is not None or waiting == 0:
                    frontier.add(name)

    def _count(self, name: str, state: Mapping[str, Any], sign: int) -> None:
        phase = state.get("phase")
        if is_terminal_phase(phase):
            if phase == _SUCCEEDED:
                self.complete += sign
            elif phase == _SKIPPED:
                self.skipped += sign
            else:
                self.failed += sign
            if phase not in OK_PHASES:
                node = self.graph.nodes.get(name)
                if node is not None and node.block == MAIN and not node.step.allow_failure:
                    self.main_failed += sign
        elif _started(state):
            if sign > 0:
                self.active.add(name)
            else:
                self.active.discard(name)

    def update(self, name: str, old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
        """``states[name]`` went from ``old`` to ``new``; return False if the index cannot follow."""
        was = _terminal(old)
        now = _terminal(new)
        if was and not now:
            return False
        if old is None:
            self.pos[name] = self.next_pos
            self.next_pos += 1
        else:
            self._count(name, old, -1)
        self._count(name, new, 1)
        node = self.graph.nodes.get(name)
        if node is None or was or name not in self.pending:
            return True
        frontier = self.frontier[node.block]
        if not now:
            if name not in frontier:
                frontier.add(name)
                self.fresh.append(name)
            return True
        self.open[node.block] -= 1
        self.settled.pop(name, None)
        frontier.discard(name)
        pending = self.pending
        del pending[name]
        for dependent in self.graph.block_dependents[name]:
            left = pending.get(dependent)
            if left is None:
                continue
            pending[dependent] = left - 1
            if left == 1 and dependent not in frontier:
                frontier.add(dependent)
                self.fresh.append(dependent)
        return True

    def waiting(self, block: str) -> int:
        """Non-terminal steps of ``block`` outside its frontier (a dependency is still going)."""
        return self.open[block] - len(self.frontier[block])

    def active_names(self) -> list[str]:
        """The started, non-terminal steps, in ``stepStates`` order."""
        return sorted(self.active, key=self.pos.__getitem__)


class _Memo:
    """Indexes by run uid, oldest first, within :data:`MEMO_RUNS` and :data:`MEMO_STEPS`."""

    def __init__(self) -> None:
        self.lock = Lock()
        self.indexes: dict[str, RunIndex] = {}
        self.steps = 0

    def pop(self, uid: str) -> RunIndex | None:
        index = self.indexes.pop(uid, None)
        if index is not None:
            self.steps -= index.graph.total
        return index

    def put(self, uid: str, index: RunIndex) -> None:
        self.indexes[uid] = index
        self.steps += index.graph.total
        while (self.steps > MEMO_STEPS or len(self.indexes) > MEMO_RUNS) and len(self.indexes) > 1:
            self.pop(next(iter(self.indexes)))


_MEMO: Final = _Memo()


def recall(uid: str, graph: Graph, states: Mapping[str, Any]) -> RunIndex | None:
    """The remembered index of run ``uid`` if it describes exactly ``states`` of ``graph``."""
    with _MEMO.lock:
        index = _MEMO.pop(uid)
    if index is None or index.states is not states or index.graph is not graph:
        return None
    return index


def remember(uid: str, index: RunIndex | None, states: Mapping[str, Any] | None) -> None:
    """Keep ``index`` (now describing ``states``) for the next plan of run ``uid``; with
    ``index`` or ``states`` ``None``, forget the run."""
    with _MEMO.lock:
        _MEMO.pop(uid)
        if index is None or states is None or not uid:
            return
        index.states = states
        index.fresh.clear()
        _MEMO.put(uid, index)
