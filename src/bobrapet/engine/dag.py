"""The compiled dependency graph of one Story (reference §2.1, with Bobrapet's Jinja mining).

The graph itself — blocks, mined dependencies, name resolution, topological order, cycles —
is ``api/graph.py``'s :class:`StepGraph`, the one admission validates with; this module adds
what running steps needs (typed steps, parsed parallel branches, cached views).

Invariants:

* A step's dependencies are its ``needs`` plus every step its templates reference, mined
  from the parsed expressions (``if``, ``with`` — except ``wait.until`` —, parallel branch
  ``with``, executeStory ``with.with`` and ``idempotencyKeyTemplate``). A reference to a
  parallel branch is a dependency on the parallel step that owns it.
* ``order[block]`` lists the block's steps in a topological order (declaration order among
  independent steps), so one pass over it can advance a whole chain.
* A graph with an unknown dependency, a dependency on a later block, or a cycle compiles to
  a :class:`Graph` whose ``error`` says what is wrong (the run fails with it).
* Compiling is O(steps + edges + template text); the result is cached per Story object and
  shared read-only by every plan of every run of that Story generation.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, Final

from pydantic import ValidationError

from bobrapet.api.graph import (
    BLOCKS,
    COMPENSATIONS,
    FINALLY,
    MAIN,
    StepGraph,
    may_depend,
    mined_dependencies,
    resolve_name,
)
from bobrapet.api.types.story import Step, Story

__all__ = [
    "BLOCKS",
    "COMPENSATIONS",
    "EMPTY_GRAPH",
    "ENGRAM",
    "FINALLY",
    "MAIN",
    "Graph",
    "Node",
    "compile_graph",
]

ENGRAM: Final = "engram"


@dataclass(frozen=True, slots=True)
class Node:
    """One step of the Story with its resolved dependencies."""

    name: str
    block: str
    step: Step
    #: ``"engram"`` or the primitive type.
    kind: str
    deps: tuple[str, ...]
    #: Parsed branches of a ``parallel`` step.
    branches: tuple[Step, ...] = ()
    #: Why the branches could not be parsed (the step fails at launch).
    branch_error: str | None = None


@dataclass(frozen=True)
class Graph:
    nodes: dict[str, Node]
    order: dict[str, tuple[str, ...]]
    dependents: dict[str, tuple[str, ...]]
    #: Parallel branch name -> the parallel step owning it.
    branch_owner: dict[str, str]
    error: str | None = None
    #: The shared graph (``api/graph.py``) these views come from.
    shape: StepGraph = field(default_factory=lambda: StepGraph({}, {}), compare=False)

    @property
    def total(self) -> int:
        return len(self.nodes)

    @cached_property
    def may_fail_allowed(self) -> tuple[Node, ...]:
        """Nodes whose failure can be allowed: ``allowFailure`` steps and parallel steps."""
        return tuple(n for n in self.nodes.values() if n.step.allow_failure or n.kind == "parallel")

    @cached_property
    def engram_names(self) -> frozenset[str]:
        """Every Engram referenced by a step or a parallel branch."""
        names: set[str] = set()
        for node in self.nodes.values():
            if node.kind == ENGRAM and node.step.ref is not None:
                names.add(node.step.ref.name)
            names.update(b.ref.name for b in node.branches if b.ref is not None)
        return frozenset(names)

    @cached_property
    def sub_story_targets(self) -> dict[str, tuple[str, str | None]]:
        """executeStory step -> (target Story name, its namespace or ``None``)."""
        out: dict[str, tuple[str, str | None]] = {}
        for node in self.nodes.values():
            ref = (node.step.with_ or {}).get("storyRef") if node.kind == "executeStory" else None
            if isinstance(ref, dict) and ref.get("name"):
                out[node.name] = (str(ref["name"]), str(ref["namespace"]) if ref.get("namespace") else None)
        return out

    @cached_property
    def block_deps(self) -> dict[str, tuple[str, ...]]:
        """Step -> its dependencies in the same block (what gates its start)."""
        nodes = self.nodes
        return {
            name: tuple(d for d in node.deps if nodes[d].block == node.block) for name, node in nodes.items()
        }

    @cached_property
    def block_dependents(self) -> dict[str, tuple[str, ...]]:
        """Step -> the steps of its block whose start it gates (inverse of :attr:`block_deps`)."""
        out: dict[str, list[str]] = {name: [] for name in self.nodes}
        for name, deps in self.block_deps.items():
            for dep in deps:
                out[dep].append(name)
        return {name: tuple(names) for name, names in out.items()}

    @cached_property
    def rank(self) -> dict[str, int]:
        """Step -> its position in its block's topological order."""
        return {name: i for names in self.order.values() for i, name in enumerate(names)}

    @cached_property
    def stop_nodes(self) -> tuple[str, ...]:
        """Main ``stop`` steps, in order."""
        return tuple(n for n in self.order.get(MAIN, ()) if self.nodes[n].kind == "stop")

    def downstream(self, name: str) -> tuple[str, ...]:
        """``name`` and every step that (transitively) depends on it."""
        return self.shape.downstream(name)


def _template_fields(step: Step) -> dict[str, Any]:
    """The fields of ``step`` that :func:`mined_dependencies` reads, in wire form."""
    return {
        "type": step.type,
        "if": step.if_,
        "with": step.with_,
        "idempotencyKeyTemplate": step.idempotency_key_template,
    }


def _parse_branches(step: Step) -> tuple[tuple[Step, ...], str | None]:
    raw = (step.with_ or {}).get("steps")
    if not isinstance(raw, list) or not raw:
        return (), f"step '{step.name}' of type 'parallel' requires 'with.steps' to list its branches"
    branches: list[Step] = []
    for i, item in enumerate(raw):
        try:
            branch = Step.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            return (), f"branch {i} of parallel step '{step.name}' is invalid: {first.get('msg')}"
        if branch.ref is None:
            return (), f"branch '{branch.name}' of parallel step '{step.name}' must reference an Engram (ref)"
        branches.append(branch)
    return tuple(branches), None


def _blocks(story: Story) -> Iterable[tuple[str, list[Step]]]:
    spec = story.spec
    yield MAIN, spec.steps
    yield COMPENSATIONS, spec.compensations or []
    yield FINALLY, spec.finally_ or []


def _compile(story: Story) -> Graph:
    block_of: dict[str, str] = {}
    steps: list[tuple[str, Step]] = []
    branch_owner: dict[str, str] = {}
    parsed: dict[str, tuple[tuple[Step, ...], str | None]] = {}
    for block, block_steps in _blocks(story):
        for step in block_steps:
            block_of[step.name] = block
            steps.append((block, step))
            if step.type == "parallel":
                parsed[step.name] = _parse_branches(step)
                for branch in parsed[step.name][0]:
                    branch_owner.setdefault(branch.name, step.name)
    unknown: list[str] = []
    deps_of: dict[str, tuple[str, ...]] = {}
    for block, step in steps:
        deps: dict[str, None] = {}
        for name in list(step.needs or []) + sorted(mined_dependencies(_template_fields(step))):
            target = resolve_name(name, block_of, branch_owner)
            if target is None:
                unknown.append(f"{step.name}->{name}")
            elif not may_depend(block, block_of[target]):
                unknown.append(f"{step.name}->{name} (a later block)")
            else:
                deps[target] = None
        deps_of[step.name] = tuple(deps)
    shape = StepGraph(block_of, deps_of, branch_owner)
    nodes: dict[str, Node] = {}
    for block, step in steps:
        branches, branch_error = parsed.get(step.name, ((), None))
        kind = step.type or ENGRAM
        nodes[step.name] = Node(step.name, block, step, kind, deps_of[step.name], branches, branch_error)
    error = f"unknown step dependencies: {', '.join(unknown)}" if unknown else None
    if error is None and shape.cycles:
        cycle = next(iter(shape.cycles.values()))
        error = "dependency cycle: " + " -> ".join(reversed([*cycle, cycle[0]]))
    return Graph(nodes, shape.order, shape.dependents, branch_owner, error, shape)


EMPTY_GRAPH: Final = Graph({}, {b: () for b in BLOCKS}, {}, {}, None, StepGraph({}, {}))

_CACHE: dict[int, tuple[weakref.ref[Story], Graph]] = {}


def _forget(key: int, ref: weakref.ref[Story]) -> None:
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is ref:
        del _CACHE[key]


def compile_graph(story: Story) -> Graph:
    """The graph of ``story``, compiled once per Story object."""
    key = id(story)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is story:
        return hit[1]
    graph = _compile(story)
    try:
        ref: weakref.ref[Story] = weakref.ref(story, partial(_forget, key))
    except TypeError:  # pragma: no cover - models always support weak references
        return graph
    _CACHE[key] = (ref, graph)
    return graph
