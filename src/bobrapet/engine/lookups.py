"""What a controller must look up before planning a run of a Story.

Invariant: derived from the compiled (cached) graph, so calling these per reconcile costs
no template analysis.
"""

from __future__ import annotations

from bobrapet.api.types.story import Story
from bobrapet.engine.dag import ENGRAM, compile_graph


def required_engrams(story: Story) -> frozenset[str]:
    """Names of every Engram referenced by a step or parallel branch (``Snapshot.engrams`` keys)."""
    names: set[str] = set()
    for node in compile_graph(story).nodes.values():
        if node.kind == ENGRAM and node.step.ref is not None:
            names.add(node.step.ref.name)
        names.update(b.ref.name for b in node.branches if b.ref is not None)
    return frozenset(names)


def sub_story_refs(story: Story) -> dict[str, tuple[str, str | None]]:
    """executeStory step name -> (target Story name, namespace or ``None`` for the run's own)."""
    out: dict[str, tuple[str, str | None]] = {}
    for node in compile_graph(story).nodes.values():
        if node.kind != "executeStory":
            continue
        ref = (node.step.with_ or {}).get("storyRef")
        if isinstance(ref, dict) and ref.get("name"):
            out[node.name] = (str(ref["name"]), str(ref["namespace"]) if ref.get("namespace") else None)
    return out
