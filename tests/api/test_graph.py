"""The shared Story graph (``api/graph.py``): one graph for admission and the engine."""

from __future__ import annotations

from typing import Any

from tests.engine.harness import make_story

from bobrapet.api.graph import (
    BLOCKS,
    COMPENSATIONS,
    FINALLY,
    MAIN,
    StepGraph,
    allowed_blocks,
    may_depend,
    mined_dependencies,
    step_templates,
)
from bobrapet.engine.dag import compile_graph


def graph(
    blocks: dict[str, str], deps: dict[str, tuple[str, ...]], owner: dict[str, str] | None = None
) -> StepGraph:
    return StepGraph(blocks, deps, owner or {})


def test_blocks_and_what_they_may_depend_on() -> None:
    assert BLOCKS == (MAIN, COMPENSATIONS, FINALLY) == ("steps", "compensations", "finally")
    assert allowed_blocks(COMPENSATIONS) == (MAIN, COMPENSATIONS)
    assert may_depend(FINALLY, MAIN) and may_depend(MAIN, MAIN) and not may_depend(MAIN, FINALLY)


def test_topological_order_keeps_declaration_order_among_independent_steps() -> None:
    g = graph(
        {"c": MAIN, "a": MAIN, "b": MAIN, "undo": COMPENSATIONS, "bye": FINALLY},
        {"c": ("b",), "a": (), "b": ("a",), "undo": ("c",), "bye": ()},
    )
    assert g.topological == ("a", "bye", "b", "c", "undo")
    assert g.order == {MAIN: ("a", "b", "c"), COMPENSATIONS: ("undo",), FINALLY: ("bye",)}
    assert g.dependents == {"c": ("undo",), "a": ("b",), "b": ("c",), "undo": (), "bye": ()}
    assert g.downstream("a") == ("a", "b", "c", "undo")
    assert g.cycles == {}


def test_cycles_are_found_per_block_and_listed_in_dependency_order() -> None:
    g = graph(
        {"a": MAIN, "b": MAIN, "c": MAIN, "d": MAIN, "x": FINALLY, "y": FINALLY},
        {"a": ("c",), "b": ("a",), "c": ("b",), "d": ("a",), "x": ("y",), "y": ("x",)},
    )
    # a needs c, c needs b, b needs a
    assert g.cycles == {MAIN: ("a", "c", "b"), FINALLY: ("x", "y")}
    assert "d" not in g.topological  # behind a cycle


def test_upstream_is_transitive_and_tolerates_cycles() -> None:
    g = graph(
        {"a": MAIN, "b": MAIN, "c": MAIN, "z": FINALLY}, {"a": (), "b": ("a",), "c": ("b",), "z": ("c",)}
    )
    assert g.is_upstream("c", "a") and g.is_upstream("z", "a")
    assert not g.is_upstream("a", "c") and not g.is_upstream("a", "a")
    loop = graph({"a": MAIN, "b": MAIN}, {"a": ("b",), "b": ("a",)})
    assert loop.is_upstream("a", "b") and loop.is_upstream("b", "a")


def test_a_branch_name_resolves_to_its_parallel_step_and_a_step_name_wins() -> None:
    g = graph({"p": MAIN, "left": MAIN}, {"p": (), "left": ()}, {"left": "p", "right": "p"})
    assert g.resolve("right") == "p"
    assert g.resolve("left") == "left"
    assert g.resolve("nope") is None


def test_mined_dependencies_skip_runtime_and_a_wait_steps_until() -> None:
    step: dict[str, Any] = {
        "name": "w",
        "type": "wait",
        "if": "steps.a.output.ok",
        "with": {"until": "steps.b.output.done", "x": "{{ steps.c.output }}"},
        "runtime": {"r": "{{ steps.d.output }}"},
        "idempotencyKeyTemplate": "{{ steps.e.output.id }}",
    }
    assert mined_dependencies(step) == {"a", "c", "e"}
    fields = [(f.where, f.path, f.dependency) for f in step_templates(step, "spec.steps[0]")]
    assert fields == [
        ("if", "spec.steps[0].if", True),
        ("with.until", "spec.steps[0].with.until", False),
        ("with", "spec.steps[0].with.x", True),
        ("runtime", "spec.steps[0].runtime.r", False),
        ("idempotencyKeyTemplate", "spec.steps[0].idempotencyKeyTemplate", True),
    ]
    vetoed = list(step_templates(step, fits=lambda path, _value: path != "with"))
    assert [f.where for f in vetoed] == ["if", "runtime", "idempotencyKeyTemplate"]


def test_the_engine_compiles_the_shared_graph() -> None:
    story = make_story(
        {
            "steps": [
                {"name": "p", "type": "parallel", "with": {"steps": [{"name": "br", "ref": {"name": "e"}}]}},
                {"name": "use", "ref": {"name": "e"}, "with": {"v": "{{ steps.br.output }}"}},
                {"name": "w", "type": "wait", "with": {"until": "steps.use.output.ok"}},
            ],
            "finally": [{"name": "bye", "ref": {"name": "e"}, "needs": ["use"]}],
        }
    )
    compiled = compile_graph(story)
    shape = compiled.shape
    assert shape.deps == {"p": (), "use": ("p",), "w": (), "bye": ("use",)}
    assert compiled.order == shape.order
    assert compiled.nodes["use"].deps == ("p",)
    assert compiled.branch_owner == {"br": "p"}
    assert compiled.downstream("p") == ("p", "use", "bye")


def test_the_engine_reports_the_cycle_admission_reports() -> None:
    story = make_story(
        {
            "steps": [
                {"name": "a", "ref": {"name": "e"}, "needs": ["c"]},
                {"name": "b", "ref": {"name": "e"}, "needs": ["a"]},
                {"name": "c", "ref": {"name": "e"}, "needs": ["b"]},
            ]
        }
    )
    compiled = compile_graph(story)
    assert compiled.shape.cycles == {MAIN: ("a", "c", "b")}
    # admission says "a -> c -> b -> a" (each step depends on the next); the engine shows
    # the same cycle in execution order
    assert compiled.error == "dependency cycle: a -> b -> c -> a"
