"""Memoised engine views must not outlive the StepRuns they describe."""

from __future__ import annotations

from typing import Any

from bobrapet.api.kinds import STEP_RUN
from bobrapet.controllers import runs
from bobrapet.runtime.cache import ObjectCache
from bobrapet.store.client import WatchEvent


def _step_run(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StepRun",
        "metadata": {
            "name": f"r-s{i}", "namespace": "default", "uid": f"u{i}", "resourceVersion": str(i + 1),
            "labels": {runs.LABEL_STORYRUN: "r"},
        },
        "spec": {"stepId": f"s{i}"},
        "status": {"phase": "Succeeded", "output": {"big": "x" * 100}},
    }  # fmt: skip


def test_views_of_deleted_step_runs_are_dropped() -> None:
    cache = ObjectCache(STEP_RUN)
    views = runs.Views(cache)
    for i in range(5000):
        obj = _step_run(i)
        cache.apply(WatchEvent("ADDED", obj))
        assert views.step_run(obj).step_id == f"s{i}"
        cache.apply(
            WatchEvent("DELETED", {**obj, "metadata": {**obj["metadata"], "resourceVersion": "99999"}})
        )
    assert len(views) < 2500
