"""The dependency graph of a Story's steps, shared by admission and the engine (reference §2.1).

Pure: no I/O, no clock. Admission builds it from the raw object (to report errors with
field paths), the engine from the typed Story (``engine/dag.py`` adds what it needs to run
steps); both read the same templates, resolve names the same way and find the same order
and the same cycles.

Invariants:

* A step belongs to one block: ``steps`` (main), ``compensations`` or ``finally``; a step may
  depend on steps of its own block and of earlier blocks only (:func:`may_depend`).
* A step's dependencies are its ``needs`` plus the steps its templates reference, mined from
  the parsed expressions (:func:`step_templates` with ``dependency=True``: ``if``, ``with``
  except a wait step's ``until``, and ``idempotencyKeyTemplate``).
* Parallel branch names are addressable like steps; a reference to a branch is a dependency
  on the parallel step that owns it (:meth:`StepGraph.resolve`). A step name wins over a
  branch of the same name, and the first parallel step declaring a branch owns it.
* :attr:`StepGraph.topological` is a topological order of the acyclic part of the graph,
  declaration order among independent steps (Kahn's algorithm, FIFO); a step on or behind a
  cycle is missing from it.
* :attr:`StepGraph.cycles` holds, per block that has one, one dependency cycle: found from the
  first (in declaration order) step of the block left over by Kahn's algorithm, following
  each step's first left-over same-block dependency; ``[a, b, c]`` means a needs b, b needs c,
  c needs a.
* Everything is computed once, lazily, in time linear in steps + edges (upstream sets use
  integer bitsets).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

from bobrapet.api.expressions import Analysis, analyze, iter_templates

MAIN: Final = "steps"
COMPENSATIONS: Final = "compensations"
FINALLY: Final = "finally"
#: The blocks in execution order.
BLOCKS: Final = (MAIN, COMPENSATIONS, FINALLY)
BLOCK_RANK: Final[Mapping[str, int]] = {block: rank for rank, block in enumerate(BLOCKS)}


def allowed_blocks(block: str) -> tuple[str, ...]:
    """The blocks a step of ``block`` may depend on (its own and the earlier ones)."""
    return BLOCKS[: BLOCK_RANK[block] + 1]


def may_depend(block: str, target_block: str) -> bool:
    """Whether a step of ``block`` may depend on a step of ``target_block``."""
    return BLOCK_RANK[target_block] <= BLOCK_RANK[block]


# ------------------------------------------------------------------------------ templates

#: Template fields of a step, as :attr:`TemplateField.where` names them.
IF: Final = "if"
UNTIL: Final = "with.until"
WITH: Final = "with"
RUNTIME: Final = "runtime"
IDEMPOTENCY_KEY: Final = "idempotencyKeyTemplate"


@dataclass(frozen=True, slots=True)
class TemplateField:
    """One template of a step: where it is and what it references."""

    #: Field path (``<base>.with.items[0]``).
    path: str
    #: Which field: :data:`IF`, :data:`UNTIL`, :data:`WITH`, :data:`RUNTIME` or :data:`IDEMPOTENCY_KEY`.
    where: str
    analysis: Analysis
    #: Whether the steps it references are dependencies of the step (not for ``until`` or
    #: ``runtime``, which are evaluated while the step runs).
    dependency: bool


def step_templates(
    step: Mapping[str, Any], base: str = "", *, fits: Callable[[str, Any], bool] | None = None
) -> Iterator[TemplateField]:
    """The templates of one step (raw wire form), in field order: ``if``, ``with.until``,
    ``with``, ``runtime``, ``idempotencyKeyTemplate``.

    ``fits(path, value)`` may veto walking a large ``with`` / ``runtime`` object.
    """
    prefix = f"{base}." if base else ""
    cond = step.get("if")
    if isinstance(cond, str) and cond:
        yield TemplateField(f"{prefix}if", IF, analyze(cond, condition=True), True)
    body = step.get("with")
    if isinstance(body, dict) and body and (fits is None or fits(f"{prefix}with", body)):
        until = body.get("until")
        if step.get("type") == "wait" and isinstance(until, str):
            yield TemplateField(f"{prefix}with.until", UNTIL, analyze(until, condition=True), False)
            body = {k: v for k, v in body.items() if k != "until"}
        for path, analysis in iter_templates(body, f"{prefix}with"):
            yield TemplateField(path, WITH, analysis, True)
    runtime = step.get("runtime")
    if isinstance(runtime, dict) and runtime and (fits is None or fits(f"{prefix}runtime", runtime)):
        for path, analysis in iter_templates(runtime, f"{prefix}runtime"):
            yield TemplateField(path, RUNTIME, analysis, False)
    key = step.get("idempotencyKeyTemplate")
    if isinstance(key, str) and key:
        yield TemplateField(f"{prefix}idempotencyKeyTemplate", IDEMPOTENCY_KEY, analyze(key), True)


def mined_dependencies(step: Mapping[str, Any]) -> set[str]:
    """Names (steps or parallel branches) that the templates of ``step`` make it depend on."""
    names: set[str] = set()
    for template in step_templates(step):
        if template.dependency:
            names |= template.analysis.step_names
    return names


# ------------------------------------------------------------------------------ graph


def resolve_name(name: str, steps: Container[str], branch_owner: Mapping[str, str]) -> str | None:
    """The step a name denotes: the step itself, or the parallel step owning a branch."""
    if name in steps:
        return name
    return branch_owner.get(name)


@dataclass(frozen=True)
class StepGraph:
    """Steps (by block) and their resolved dependencies; every other view is derived lazily."""

    #: Step name -> its block, in declaration order (main, then compensations, then finally).
    block_of: Mapping[str, str]
    #: Step name -> its dependencies (existing steps of the same or an earlier block).
    deps: Mapping[str, tuple[str, ...]]
    #: Parallel branch name -> the parallel step owning it.
    branch_owner: Mapping[str, str] = field(default_factory=dict)
    _closure_cache: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def resolve(self, name: str) -> str | None:
        return resolve_name(name, self.block_of, self.branch_owner)

    @cached_property
    def dependents(self) -> dict[str, tuple[str, ...]]:
        """Step -> the steps that depend on it (declaration order)."""
        out: dict[str, list[str]] = {name: [] for name in self.block_of}
        for name in self.block_of:
            for dep in self.deps.get(name, ()):
                out[dep].append(name)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def topological(self) -> tuple[str, ...]:
        """Kahn's order of the whole graph (steps on or behind a cycle are left out)."""
        dependents = self.dependents
        missing = {name: len(self.deps.get(name, ())) for name in self.block_of}
        queue = deque(name for name, count in missing.items() if count == 0)
        out: list[str] = []
        while queue:
            name = queue.popleft()
            out.append(name)
            for nxt in dependents[name]:
                missing[nxt] -= 1
                if missing[nxt] == 0:
                    queue.append(nxt)
        return tuple(out)

    @cached_property
    def order(self) -> dict[str, tuple[str, ...]]:
        """Block -> its steps in :attr:`topological` order."""
        block_of = self.block_of
        return {b: tuple(n for n in self.topological if block_of[n] == b) for b in BLOCKS}

    @cached_property
    def cycles(self) -> dict[str, tuple[str, ...]]:
        """Block -> one dependency cycle of that block (only blocks that have one)."""
        if len(self.topological) == len(self.block_of):
            return {}
        out: dict[str, tuple[str, ...]] = {}
        for block in BLOCKS:
            cycle = self._block_cycle(block)
            if cycle:
                out[block] = cycle
        return out

    def _block_cycle(self, block: str) -> tuple[str, ...]:
        members = [n for n, b in self.block_of.items() if b == block]
        same = {n: [d for d in self.deps.get(n, ()) if self.block_of[d] == block] for n in members}
        indegree = {n: len(ds) for n, ds in same.items()}
        dependents: dict[str, list[str]] = {n: [] for n in members}
        for n, ds in same.items():
            for d in ds:
                dependents[d].append(n)
        queue = deque(n for n, d in indegree.items() if d == 0)
        while queue:
            n = queue.popleft()
            for m in dependents[n]:
                indegree[m] -= 1
                if indegree[m] == 0:
                    queue.append(m)
        remaining = {n for n, d in indegree.items() if d > 0}
        start = next((n for n in members if n in remaining), None)
        if start is None:
            return ()
        path: list[str] = []
        index: dict[str, int] = {}
        cur = start
        while cur not in index:
            index[cur] = len(path)
            path.append(cur)
            cur = next(d for d in same[cur] if d in remaining)
        return tuple(path[index[cur] :])

    def downstream(self, name: str) -> tuple[str, ...]:
        """``name`` and every step that (transitively) depends on it (breadth first)."""
        hit = self._closure_cache.get(name)
        if hit is not None:
            return hit
        dependents = self.dependents
        seen = {name}
        out = [name]
        queue = deque([name])
        while queue:
            for nxt in dependents.get(queue.popleft(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    out.append(nxt)
                    queue.append(nxt)
        result = tuple(out)
        self._closure_cache[name] = result
        return result

    @cached_property
    def _bits(self) -> dict[str, int]:
        return {name: 1 << i for i, name in enumerate(self.block_of)}

    @cached_property
    def upstream(self) -> dict[str, int]:
        """Step -> bitset of its transitive dependencies (cycles tolerated)."""
        bits, deps_of = self._bits, self.deps
        upstream: dict[str, int] = {}
        state: dict[str, int] = {}  # 1 = visiting, 2 = done
        for root in self.block_of:
            if root in state:
                continue
            # (name, its dependencies, next index): each step costs O(its dependencies)
            stack: list[tuple[str, tuple[str, ...], int]] = [(root, deps_of.get(root, ()), 0)]
            state[root] = 1
            while stack:
                name, deps, idx = stack[-1]
                if idx < len(deps):
                    stack[-1] = (name, deps, idx + 1)
                    dep = deps[idx]
                    if dep in bits and dep not in state:
                        state[dep] = 1
                        stack.append((dep, deps_of.get(dep, ()), 0))
                    continue
                acc = 0
                for dep in deps:
                    if dep in bits:
                        acc |= bits[dep] | upstream.get(dep, 0)
                upstream[name] = acc
                state[name] = 2
                stack.pop()
        return upstream

    def is_upstream(self, step: str, other: str) -> bool:
        """Whether ``step`` (transitively) depends on ``other``."""
        return bool(self.upstream.get(step, 0) & self._bits.get(other, 0))
