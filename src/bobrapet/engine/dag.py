"""The compiled dependency graph of one Story (reference §2.1, with Bobrapet's Jinja mining).

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
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, Final

from pydantic import ValidationError

from bobrapet.api.expressions import analyze, iter_templates
from bobrapet.api.types.story import Step, Story

MAIN: Final = "steps"
COMPENSATIONS: Final = "compensations"
FINALLY: Final = "finally"
BLOCKS: Final = (MAIN, COMPENSATIONS, FINALLY)
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
    _closure_cache: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

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
    def stop_nodes(self) -> tuple[str, ...]:
        """Main ``stop`` steps, in order."""
        return tuple(n for n in self.order.get(MAIN, ()) if self.nodes[n].kind == "stop")

    def downstream(self, name: str) -> tuple[str, ...]:
        """``name`` and every step that (transitively) depends on it."""
        hit = self._closure_cache.get(name)
        if hit is not None:
            return hit
        seen = {name}
        out = [name]
        queue = deque([name])
        while queue:
            for nxt in self.dependents.get(queue.popleft(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    out.append(nxt)
                    queue.append(nxt)
        result = tuple(out)
        self._closure_cache[name] = result
        return result


def _mined_names(step: Step) -> set[str]:
    names: set[str] = set()
    if step.if_:
        names |= analyze(step.if_, condition=True).step_names
    body: Any = step.with_
    if isinstance(body, dict) and body:
        if step.type == "wait":
            body = {k: v for k, v in body.items() if k != "until"}
        for _path, analysis in iter_templates(body):
            names |= analysis.step_names
    if step.idempotency_key_template:
        names |= analyze(step.idempotency_key_template).step_names
    return names


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
    rank = {b: i for i, b in enumerate(BLOCKS)}
    unknown: list[str] = []
    nodes: dict[str, Node] = {}
    for block, step in steps:
        deps: dict[str, None] = {}
        for name in list(step.needs or []) + sorted(_mined_names(step)):
            target = name if name in block_of else branch_owner.get(name)
            if target is None:
                unknown.append(f"{step.name}->{name}")
            elif rank[block_of[target]] > rank[block]:
                unknown.append(f"{step.name}->{name} (a later block)")
            else:
                deps[target] = None
        branches, branch_error = parsed.get(step.name, ((), None))
        kind = step.type or ENGRAM
        nodes[step.name] = Node(step.name, block, step, kind, tuple(deps), branches, branch_error)
    dependents: dict[str, list[str]] = {name: [] for name in nodes}
    for node in nodes.values():
        for dep in node.deps:
            dependents[dep].append(node.name)
    error = f"unknown step dependencies: {', '.join(unknown)}" if unknown else None
    topo = _topological(nodes, dependents)
    if error is None and len(topo) < len(nodes):
        error = _cycle_text(nodes, set(nodes) - set(topo))
    order = {b: tuple(n for n in topo if nodes[n].block == b) for b in BLOCKS}
    frozen_dependents = {k: tuple(v) for k, v in dependents.items()}
    return Graph(nodes, order, frozen_dependents, branch_owner, error)


def _topological(nodes: dict[str, Node], dependents: dict[str, list[str]]) -> list[str]:
    missing = {name: len(node.deps) for name, node in nodes.items()}
    queue = deque(name for name, count in missing.items() if count == 0)
    out: list[str] = []
    while queue:
        name = queue.popleft()
        out.append(name)
        for nxt in dependents[name]:
            missing[nxt] -= 1
            if missing[nxt] == 0:
                queue.append(nxt)
    return out


def _cycle_text(nodes: dict[str, Node], remaining: set[str]) -> str:
    start = next(n for n in nodes if n in remaining)
    path: list[str] = []
    index: dict[str, int] = {}
    cur = start
    while cur not in index:
        index[cur] = len(path)
        path.append(cur)
        cur = next(d for d in nodes[cur].deps if d in remaining)
    cycle = [*path[index[cur] :], cur]
    cycle.reverse()
    return "dependency cycle: " + " -> ".join(cycle)


EMPTY_GRAPH: Final = Graph({}, {b: () for b in BLOCKS}, {}, {})

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
