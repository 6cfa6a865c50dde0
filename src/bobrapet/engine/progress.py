"""Which StoryRun status changes may be written a little later (batched step progress).

A StoryRun's ``stepStates`` mirror its engram steps' StepRuns, which hold the truth: a crash
before the mirror is written is repaired by the next plan, which reads the StepRuns (the
same as a crash between creating a StepRun and writing the run's status). Such changes are
*progress*, and the engine may hold them back briefly to write several in one status write.
Everything else is written at once: the run's phase, conditions and counters of failures,
a failing or skipped step, the state of a primitive (``sleep``, ``wait``, ``gate``,
``condition``... whose only record is the StoryRun status), the Story pin.

Invariant: :func:`progress_only` is true only when every difference between ``old`` and
``new`` lies in :data:`PROGRESS_FIELDS`, no step state was removed, and every changed
``stepStates`` entry belongs to an engram step whose new phase is Pending, Running or
Succeeded.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from itertools import compress
from operator import is_not
from typing import Any, Final

from bobrapet.engine.dag import ENGRAM, Graph

#: Status fields that only mirror engram steps' progress.
PROGRESS_FIELDS: Final = frozenset({"active", "stepStates", "stepsComplete"})
_PROGRESS_PHASES: Final = frozenset({"Pending", "Running", "Succeeded"})


def progress_only(
    old: Mapping[str, Any], new: Mapping[str, Any], graph: Graph, changed: Collection[str] | None = None
) -> bool:
    """Whether ``new`` differs from ``old`` (a StoryRun status) by engram step progress only.

    ``changed``: the only steps whose states may differ (a plan's ``changed_steps``, made
    from ``old``; none was removed), so the check costs what changed, not the run's size.
    """
    for key in old.keys() | new.keys():
        if key not in PROGRESS_FIELDS:
            before, after = old.get(key), new.get(key)
            if before is not after and before != after:
                return False
    old_states: Mapping[str, Any] = old.get("stepStates") or {}
    new_states: Mapping[str, Any] = new.get("stepStates") or {}
    if old_states is new_states:
        return True
    if changed is not None:
        return all(_progress(name, old_states.get(name), new_states.get(name), graph) for name in changed)
    if not old_states.keys() <= new_states.keys():
        return False
    # Unchanged states are the very same objects (the engine keeps them): find the changed
    # ones without a Python step per state, so this costs what changed, not the run's size.
    names = list(new_states)
    differing = compress(names, map(is_not, map(old_states.get, names), new_states.values()))
    return all(_progress(name, old_states.get(name), new_states[name], graph) for name in differing)


def _progress(name: str, before: Any, state: Any, graph: Graph) -> bool:
    """Whether step ``name`` going from ``before`` to ``state`` is progress (or no change)."""
    if before is state or before == state:
        return True
    node = graph.nodes.get(name)
    if node is None or node.kind != ENGRAM:
        return False
    return isinstance(state, Mapping) and state.get("phase") in _PROGRESS_PHASES
