"""Helpers for the embedded store tests: object builders and a settable clock."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 11, 30, 5, 0, 0, tzinfo=UTC)


class FakeClock:
    """A settable clock for deterministic timestamps."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def story(name: str | None = "s1", namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    """A minimal Story dict (the store must not depend on the pydantic models)."""
    meta: dict[str, Any] = {}
    if name is not None:
        meta["name"] = name
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update(extra.pop("metadata", {}))
    obj: dict[str, Any] = {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Story",
        "metadata": meta,
        "spec": extra.pop("spec", {"steps": [{"name": "a"}]}),
    }
    obj.update(extra)
    return obj


def step_run(name: str, step: str, run: str = "r1", phase: str | None = None, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StepRun",
        "metadata": {"name": name, **meta},
        "spec": {"stepId": step, "storyRunRef": {"name": run}},
    }
    if phase is not None:
        obj["status"] = {"phase": phase}
    return obj


def owned_by(obj: dict[str, Any], *owners: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with ownerReferences to each of ``owners`` (stored objects)."""
    out = copy.deepcopy(obj)
    out["metadata"]["ownerReferences"] = [
        {
            "apiVersion": o["apiVersion"],
            "kind": o["kind"],
            "name": o["metadata"]["name"],
            "uid": o["metadata"]["uid"],
            "controller": i == 0,
        }
        for i, o in enumerate(owners)
    ]
    return out
