"""What a controller must look up before planning a run of a Story.

Invariant: derived from the compiled (cached) graph, so calling these per reconcile costs
no template analysis.
"""

from __future__ import annotations

from bobrapet.api.types.story import Story
from bobrapet.engine.dag import compile_graph


def required_engrams(story: Story) -> frozenset[str]:
    """Names of every Engram referenced by a step or parallel branch (``Snapshot.engrams`` keys)."""
    return compile_graph(story).engram_names


def sub_story_refs(story: Story) -> dict[str, tuple[str, str | None]]:
    """executeStory step name -> (target Story name, namespace or ``None`` for the run's own)."""
    return compile_graph(story).sub_story_targets
