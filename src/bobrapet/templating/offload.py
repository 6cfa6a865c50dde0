"""Templates over offloaded data (reference §3.7, ``templating.offloaded-data-policy``).

A *compound* template (anything Jinja evaluates: functions, comparisons, mixed text) that
reads data holding storage references needs the data's content:

* policy ``error``: evaluation fails with :class:`~bobrapet.templating.errors.Offloaded`
  (the step, or the input resolution, fails with that reason);
* policy ``controller``: the data is hydrated from :attr:`OffloadedData.blobs` (storage key
  -> stored value, loaded by the caller) and the template is evaluated against it; keys not
  loaded yet raise :class:`Unhydrated` listing them, so the caller loads them and evaluates
  again; a key the caller could not load (:class:`LoadFailure`: too large for the engine's
  cap, missing, corrupted) fails the evaluation with the reason.

Plain path references (``{{ steps.a.output.items }}``) never come here: they evaluate to the
reference itself (a lazy selector), for the consumer to hydrate.

Invariants: which data a template reads is mined from the parsed text (its ``inputs`` root
and the steps it names; every step when it reads ``steps`` dynamically); the caller's
variables are never modified (hydrated variables are a shallow copy); pure (no I/O).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bobrapet.api.expressions import analyze
from bobrapet.storage.errors import StorageError
from bobrapet.storage.hydrate import Hydrator
from bobrapet.storage.refs import DEFAULT_MAX_DEPTH, STORAGE_REF, contains_refs, parse_ref
from bobrapet.templating.errors import Offloaded, TemplateError

Policy = Literal["controller", "error"]


class Unhydrated(Offloaded):
    """The template needs the stored values of ``keys``: load them and evaluate again."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        super().__init__(keys[0], f"waiting for offloaded data to be loaded: {', '.join(keys)}")
        self.keys = keys


@dataclass(frozen=True)
class LoadFailure:
    """A stored value the caller could not load (the template fails with ``message``)."""

    message: str


@dataclass(frozen=True)
class OffloadedData:
    """How compound templates treat offloaded data, and the stored values loaded so far."""

    policy: Policy = "controller"
    blobs: Mapping[str, Any] = field(default_factory=dict)
    max_depth: int = DEFAULT_MAX_DEPTH


def _ref_keys(value: Any, max_depth: int) -> list[str]:
    keys: list[str] = []
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        cur, depth = stack.pop()
        if depth > max_depth:
            continue
        if isinstance(cur, dict):
            if STORAGE_REF in cur:
                try:
                    keys.append(parse_ref(cur).key)
                except StorageError as exc:
                    raise TemplateError(exc.message) from None
                continue
            stack.extend((v, depth + 1) for v in cur.values())
        elif isinstance(cur, list):
            stack.extend((v, depth + 1) for v in cur)
    return keys


class _Missing(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def read_data(source: str, condition: bool, variables: Mapping[str, Any]) -> list[tuple[str | None, Any]]:
    """The data a template reads that holds storage references: ``(None, inputs)`` and
    ``(<step name>, output)`` pairs."""
    analysis = analyze(source, condition=condition)
    found: list[tuple[str | None, Any]] = []
    inputs = variables.get("inputs")
    if "inputs" in analysis.roots and contains_refs(inputs):
        found.append((None, inputs))
    steps = variables.get("steps")
    if isinstance(steps, Mapping) and ("steps" in analysis.roots or analysis.step_names):
        names = steps.keys() if analysis.dynamic_steps or not analysis.ok else analysis.step_names
        for name in names:
            entry = steps.get(name)
            output = entry.get("output") if isinstance(entry, Mapping) else None
            if contains_refs(output):
                found.append((str(name), output))
    return found


def hydrated_variables(
    offload: OffloadedData, source: str, condition: bool, variables: Mapping[str, Any]
) -> Mapping[str, Any]:
    """``variables`` with the offloaded data the template reads hydrated (per the policy)."""
    found = read_data(source, condition, variables)
    if not found:
        return variables
    if offload.policy == "error":
        name, value = found[0]
        key = _ref_keys(value, offload.max_depth)[0]
        where = "the run's inputs" if name is None else f"the output of step '{name}'"
        raise Offloaded(
            key,
            f"the expression needs {where}, which is offloaded to storage ({key}), and "
            "templating.offloaded-data-policy is error; reference the value as a plain path "
            "(the step hydrates it), or set the policy to controller",
        )
    needed = sorted({k for _, v in found for k in _ref_keys(v, offload.max_depth)})
    missing = [k for k in needed if k not in offload.blobs]
    if missing:
        raise Unhydrated(tuple(missing))

    def load(key: str) -> Any:
        if key not in offload.blobs:
            raise _Missing(key)
        data = offload.blobs[key]
        if isinstance(data, LoadFailure):
            raise TemplateError(f"cannot load offloaded data {key!r}: {data.message}")
        return data

    hydrator = Hydrator(load, max_depth=offload.max_depth)
    out = dict(variables)
    steps = dict(variables.get("steps") or {})
    try:
        for name, value in found:
            data = hydrator.hydrate(value)
            if name is None:
                out["inputs"] = data
            else:
                steps[name] = {**steps[name], "output": data, "outputs": data}
    except _Missing as exc:  # a reference inside loaded data
        raise Unhydrated((exc.key,)) from None
    except StorageError as exc:
        raise TemplateError(exc.message) from None
    out["steps"] = steps
    return out
