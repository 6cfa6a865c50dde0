"""The template variables of a run (reference §3.4): ``inputs``, ``steps``, ``story``, ``run``.

Invariants:

* ``steps`` has an entry for every step (and parallel branch, keyed by its name) in a
  terminal state, and for nothing else: referencing a step that has not finished raises
  ``Blocked``. Outputs are referenced, never copied; a terminal step without an output
  exposes ``{}``.
* ``inputs`` are the run's ``spec.inputs`` with the Story ``inputsSchema`` defaults applied.
* The StepRun controller uses :func:`run_variables`, so engram inputs are resolved with
  exactly the data the engine saw.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

from bobrapet.api.jsonschema_util import apply_defaults
from bobrapet.api.phases import is_terminal_phase
from bobrapet.api.types.story import Story
from bobrapet.engine.dag import ENGRAM, Graph, compile_graph
from bobrapet.engine.snapshot import Snapshot
from bobrapet.templating import build_variables, step_entry

_EMPTY: Final[Mapping[str, Any]] = {}
#: :func:`run_inputs` memo: ``(run uid or id(inputs), id(schema)) -> (inputs, schema, result)``
#: (the objects are kept, so their ids are not reused while remembered).
_defaulted: dict[tuple[object, int], tuple[Any, Any, dict[str, Any]]] = {}
_DEFAULTED_MEMO: Final = 1024


def run_inputs(run: Mapping[str, Any], story: Story | None) -> dict[str, Any]:
    """``spec.inputs`` with ``inputsSchema`` defaults applied (a copy only when defaults apply).

    The result is shared: callers treat it as read-only, like the run it comes from. With
    defaults, it is memoised per run (``metadata.uid``; the object itself without one) and
    schema object, and reused while ``spec.inputs`` is the same object or an equal one: a
    StoryRun's spec is immutable, while every plan and launch of it reads a new copy.
    """
    inputs = (run.get("spec") or {}).get("inputs") or {}
    schema = story.spec.inputs_schema if story is not None else None
    if not schema:
        return inputs if isinstance(inputs, dict) else {}
    uid = (run.get("metadata") or {}).get("uid")
    key: tuple[object, int] = (str(uid) if uid else id(inputs), id(schema))
    hit = _defaulted.get(key)
    if hit is not None and hit[1] is schema and (hit[0] is inputs or (uid and hit[0] == inputs)):
        return hit[2]
    result = apply_defaults(inputs, schema)
    result = result if isinstance(result, dict) else {}
    if len(_defaulted) >= _DEFAULTED_MEMO:
        _defaulted.clear()
    _defaulted[key] = (inputs, schema, result)
    return result


def step_var_entry(
    snap: Snapshot, graph: Graph, name: str, state: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``steps.<name>`` for a terminal step or parallel branch."""
    node = graph.nodes.get(name)
    phase = (state or {}).get("phase")
    if node is None or node.kind == ENGRAM:
        view = snap.step_runs.get(name)
        if view is None:
            return step_entry({}, phase=phase)
        output = view.output if view.output is not None else {}
        return step_entry(output, phase=phase or view.phase, signals=view.signals)
    if node.kind == "executeStory":
        child = snap.child_runs.get(name)
        if child is not None and child.phase == "Succeeded" and child.output is not None:
            return step_entry(child.output, phase=phase)
    return step_entry({}, phase=phase)


def build_steps(
    snap: Snapshot,
    graph: Graph,
    states: Mapping[str, Mapping[str, Any]],
    only: Collection[str] | None = None,
) -> dict[str, Any]:
    """``steps`` of the variables; with ``only``, just those steps (cost independent of the
    size of the run, for a template whose step references are all known)."""
    steps: dict[str, Any] = {}
    pairs = states.items() if only is None else ((n, states[n]) for n in only if n in states)
    for name, state in pairs:
        if is_terminal_phase(state.get("phase")):
            steps[name] = step_var_entry(snap, graph, name, state)
    owners = graph.branch_owner
    for branch in owners if only is None else [b for b in only if b in owners]:
        view = snap.step_runs.get(branch)
        if view is not None and view.parent_step == owners[branch] and is_terminal_phase(view.phase):
            steps.setdefault(branch, step_var_entry(snap, graph, branch, None))
    return steps


def run_variables_from(
    snap: Snapshot, story: Story | None, inputs: Mapping[str, Any], steps: Mapping[str, Any]
) -> dict[str, Any]:
    meta = snap.run.get("metadata") or {}
    run = {"name": meta.get("name"), "namespace": meta.get("namespace") or "default"}
    if meta.get("uid"):
        run["uid"] = meta["uid"]
    story_var = None
    if story is not None:
        story_var = {
            "name": story.metadata.name,
            "namespace": story.metadata.namespace or run["namespace"],
            "version": story.spec.version,
        }
    return build_variables(inputs=inputs, steps=steps, story=story_var, run=run)


def run_variables(snapshot: Snapshot, only: Collection[str] | None = None) -> dict[str, Any]:
    """The variables templates of this run are evaluated with (``{inputs, steps, story, run}``).

    ``only`` limits ``steps`` to the named steps: pass it when the templates to evaluate
    reference exactly those (no dynamic ``steps[expr]`` access).
    """
    story = snapshot.story
    states = (snapshot.run.get("status") or {}).get("stepStates") or _EMPTY
    inputs = run_inputs(snapshot.run, story)
    if story is None:
        return run_variables_from(snapshot, None, inputs, {})
    steps = build_steps(snapshot, compile_graph(story), states, only)
    return run_variables_from(snapshot, story, inputs, steps)


def template_seed(run: Mapping[str, Any], step: str, attempt: int = 0) -> str:
    """The seed of the random template helpers (``uuidv4()``, ``randInt``) for one evaluation.

    Invariant: a function of the run (namespace, name and uid, so a re-created run of the same
    name draws new values), the step (or branch) and the attempt only, so rendering a step's
    templates again — another reconcile, another engine, after a restart — gives the same
    values, and a retry (the next ``attempt``) gives new ones.
    """
    meta = run.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    return f"{namespace}/{meta.get('name') or ''}/{meta.get('uid') or ''}/{step}#{attempt}"
