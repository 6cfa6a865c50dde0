"""The blocks of a batch run: main → compensations → finally (reference §2.3, DESIGN).

Invariants:

* A block starts only when every earlier block is terminal; compensations run only when
  main failed (and no ``stop`` ended it), otherwise they are Skipped; ``finally`` always runs.
* Main is fail-fast unless ``policy.retries.continueOnStepFailure``: once a main step has
  failed, every not-started main step is Skipped; running ones finish. In compensations
  and finally, and in main with continueOnStepFailure, only dependents of a failure are
  Skipped.
* A ``stop`` step that took effect ends main: not-started main steps are Skipped, running
  ones are canceled.
* Each pass walks the blocks in topological order; passes repeat (at most steps+1 times)
  while some step reached a terminal state, so chains of instant steps finish in one plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from heapq import heapify, heappop, heappush
from itertools import compress, repeat
from operator import methodcaller, not_
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from bobrapet.api.phases import OK_PHASES, TERMINAL_PHASES, StepReason
from bobrapet.engine import engram
from bobrapet.engine.children import request_stop
from bobrapet.engine.context import SKIPPED, is_started, is_terminal
from bobrapet.engine.dag import COMPENSATIONS, ENGRAM, FINALLY, MAIN
from bobrapet.engine.primitives import LAUNCH, REFRESH
from bobrapet.engine.primitives.stop import stopped_by
from bobrapet.engine.readiness import failed, ready
from bobrapet.engine.scheduling import Budget

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node

_NOT_FAILED: Final = frozenset({None, "Succeeded", "Skipped"})
_FAILED_PHASES: Final = TERMINAL_PHASES - OK_PHASES
_PHASE: Final = methodcaller("get", "phase")
_NO_STATE: Final[Mapping[str, Any]] = MappingProxyType({})
_IS_TERMINAL: Final = TERMINAL_PHASES.__contains__
FAIL_FAST: Final = "Skipped due to fail-fast policy"
STORY_SUCCEEDED: Final = "Skipped because story succeeded"


def stop_step(ctx: Context) -> str | None:
    """The main ``stop`` step that ended main, if any."""
    for name in ctx.graph.stop_nodes:
        if stopped_by(ctx, ctx.graph.nodes[name]):
            return name
    return None


def main_failed(ctx: Context) -> list[str]:
    """Main steps that failed (and do not allow failure), in order."""
    nodes, states = ctx.graph.nodes, ctx.states
    return [n for n in ctx.graph.order[MAIN] if failed(nodes[n], states.get(n))]


def _phases_of(states: Iterable[Mapping[str, Any]]) -> Iterator[Any]:
    """The phase of each state, computed without a Python call per state."""
    return map(_PHASE, states)


def any_main_failed(ctx: Context) -> bool:
    """Whether a main step failed (and does not allow failure)."""
    index = ctx.index
    if index is not None:
        return index.main_failed > 0
    nodes, states = ctx.graph.nodes, ctx.states
    if not any(map(_FAILED_PHASES.__contains__, _phases_of(states.values()))):
        return False  # the common case, decided at C speed: no step failed at all
    for name in ctx.graph.order[MAIN]:
        state = states.get(name)
        if state is not None and state.get("phase") not in _NOT_FAILED and failed(nodes[name], state):
            return True
    return False


def _continue_on_failure(ctx: Context) -> bool:
    policy = ctx.story.spec.policy
    return bool(policy is not None and policy.retries is not None and policy.retries.continue_on_step_failure)


def _end_for_stop(ctx: Context, node: Node, stopper: str) -> None:
    state = ctx.states.get(node.name)
    if not is_started(state):
        ctx.set_state(node.name, SKIPPED, _stopped_message(stopper), reason=StepReason.STORY_STOPPED)
        return
    request_stop(ctx, node)
    ctx.set_state(
        node.name,
        "Canceled",
        f"Canceled because the story was stopped by step '{stopper}'",
        reason=StepReason.STORY_STOPPED,
    )


def _advance(ctx: Context, node: Node, budget: Budget) -> None:
    state = ctx.states.get(node.name)
    if is_started(state):
        assert state is not None
        if node.kind == ENGRAM:
            engram.refresh(ctx, node, state)
        else:
            REFRESH[node.kind](ctx, node, state)
        return
    if not ready(ctx, node):
        return
    if node.kind == ENGRAM:
        engram.launch(ctx, node, budget)
    else:
        LAUNCH[node.kind](ctx, node)


def advance_block(ctx: Context, block: str, budget: Budget) -> bool:
    """One pass over ``block``; return whether every step of it is terminal.

    Normally only the block's frontier is visited (see :mod:`~bobrapet.engine.run_index`),
    in topological order, steps joining it during the pass included: the cost of a pass
    follows the steps that can move, not the size of the run. Once a failure (fail-fast)
    or a stop ends main, the rest of the pass walks every step (:func:`_walk_block`).
    """
    is_main = block == MAIN
    if not is_main and not ctx.graph.order[block]:
        return True  # an empty block (usually finally): nothing to visit, nothing to wait for
    stopper = stop_step(ctx) if is_main else None
    fail_fast = is_main and not _continue_on_failure(ctx)
    failing = fail_fast and any_main_failed(ctx)
    index = ctx.index
    if index is None or stopper is not None or failing:
        return _walk_block(ctx, block, budget, 0, stopper, fail_fast, failing, True)
    nodes, states = ctx.graph.nodes, ctx.states
    order, rank = ctx.graph.order[block], ctx.graph.rank
    frontier = index.frontier[block]
    fresh = index.fresh
    fresh.clear()
    heap = [rank[name] for name in frontier]
    heapify(heap)
    done = True
    last = -1
    while heap:
        position = heappop(heap)
        if position == last:
            continue
        last = position
        name = order[position]
        if name not in frontier:
            continue  # became terminal meanwhile
        node = nodes[name]
        _advance(ctx, node, budget)
        state = states.get(name)
        if not is_terminal(state):
            done = False
        elif is_main:
            if stopped_by(ctx, node):
                stopper = name
            if fail_fast and failed(node, state):
                failing = True
            if stopper is not None or failing:
                return _walk_block(ctx, block, budget, position + 1, stopper, fail_fast, failing, done)
        if ctx.held_index() is not index:  # a state change the index could not follow
            return _walk_block(ctx, block, budget, position + 1, stopper, fail_fast, failing, done)
        for joined in fresh:
            if nodes[joined].block != block:
                continue
            other = rank[joined]
            if other > position:
                heappush(heap, other)
            else:
                done = False  # the walk would only see it on the next pass
        fresh.clear()
    return done and index.waiting(block) == 0


def _walk_block(
    ctx: Context,
    block: str,
    budget: Budget,
    start: int,
    stopper: str | None,
    fail_fast: bool,
    failing: bool,
    done: bool,
) -> bool:
    """The rest of a pass over ``block`` from position ``start``, visiting every open step.

    The two cases that are most of a long run — a terminal step, and a not-started step
    whose dependencies are still going — are decided inline, without a call per step.
    """
    nodes, states = ctx.graph.nodes, ctx.states
    is_main = block == MAIN
    block_deps = ctx.graph.block_deps
    terminal_phases = TERMINAL_PHASES
    order = ctx.graph.order[block][start:]
    # Terminal steps need nothing: leave them out at C speed (most of a long run's steps).
    phases = _phases_of(map(states.get, order, repeat(_NO_STATE, len(order))))
    open_steps = compress(order, map(not_, map(_IS_TERMINAL, phases)))
    for name in open_steps:
        current = states.get(name)
        if current is None:
            if stopper is None and not failing:
                waiting = False
                for dep in block_deps[name]:
                    dep_state = states.get(dep)
                    if dep_state is None or dep_state.get("phase") not in terminal_phases:
                        waiting = True
                        break
                if waiting:
                    done = False  # not started and a dependency is still going: nothing to decide
                    continue
        elif current.get("phase") in terminal_phases:
            continue
        node = nodes[name]
        if stopper is not None:
            _end_for_stop(ctx, node, stopper)
        elif failing and not is_started(current):
            ctx.set_state(name, SKIPPED, FAIL_FAST)
        else:
            _advance(ctx, node, budget)
        state = states.get(name)
        if not is_terminal(state):
            done = False
        elif is_main:
            if stopper is None and stopped_by(ctx, node):
                stopper = name
            if fail_fast and failed(node, state):
                failing = True
    return done


def _skip_all(ctx: Context, block: str, message: str, reason: str | None = None) -> None:
    for name in ctx.graph.order[block]:
        if not is_terminal(ctx.states.get(name)):
            ctx.set_state(name, SKIPPED, message, reason=reason)


def _stopped_message(stopper: str) -> str:
    return f"Skipped because the story was stopped by step '{stopper}'"


def _pass(ctx: Context, budget: Budget) -> bool:
    if not advance_block(ctx, MAIN, budget):
        return False
    stopper = stop_step(ctx)
    if ctx.graph.order[COMPENSATIONS]:
        if stopper is not None:
            _skip_all(ctx, COMPENSATIONS, _stopped_message(stopper), StepReason.STORY_STOPPED)
        elif main_failed(ctx):
            if not advance_block(ctx, COMPENSATIONS, budget):
                return False
        else:
            _skip_all(ctx, COMPENSATIONS, STORY_SUCCEEDED)
    return advance_block(ctx, FINALLY, budget)


def run_blocks(ctx: Context) -> bool:
    """Advance the run as far as possible now; return whether every step is terminal."""
    budget = Budget(ctx)
    for _ in range(ctx.graph.total + 1):
        ctx.progress = False
        if _pass(ctx, budget):
            return True
        if not ctx.progress:
            return False
    return False
