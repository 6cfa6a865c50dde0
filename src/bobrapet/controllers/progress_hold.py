"""Step progress of StoryRuns planned but not written yet (batched status writes).

A StoryRun status change that only mirrors engram step progress
(:func:`bobrapet.engine.progress_only`) may wait up to :data:`STATUS_HOLD` seconds, so a burst
of quick steps costs one status write. While many runs hold progress the hold grows
(:meth:`ProgressHold.limit`, at most :data:`MAX_STATUS_HOLD`), so their progress writes stay
about :data:`PROGRESS_WRITE_RATE` a second however many runs are in flight (when hundreds
are, each takes longer than :data:`STATUS_HOLD`, and a fixed hold would cost each of them a
write a second). The StepRuns hold the truth meanwhile: a crash loses nothing (the next plan
reads them), exactly as after a crash between creating a StepRun and writing its run's
status.

Invariants:

* a held status is only progress over the status stored when it was first held (each plan's
  changes are checked against the status it was made from, itself stored or held);
* it is used (:meth:`ProgressHold.planned`) only while the run's stored status is the one it
  was based on: anyone else's status write drops it;
* it is written no later than :meth:`ProgressHold.limit` after the first held change, that
  limit as it was when the run was last planned (the reconcile asks to be run again then);
  when nothing happened to the run's children since it was planned and that plan set no
  timer, it is written as is, without planning again (:meth:`ProgressHold.unchanged_due`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bobrapet.engine import Graph, Plan, progress_only
from bobrapet.runtime.clock import Clock
from bobrapet.store.client import Resource

__all__ = ["MAX_STATUS_HOLD", "PROGRESS_WRITE_RATE", "STATUS_HOLD", "HeldStatus", "ProgressHold"]

#: How long a StoryRun status change that only mirrors step progress may wait to be written.
STATUS_HOLD = 1.0
#: Progress writes per second the held runs may cost before the hold grows beyond STATUS_HOLD.
PROGRESS_WRITE_RATE = 100.0
#: The longest a StoryRun status change that only mirrors step progress may wait.
MAX_STATUS_HOLD = 5.0

Key = tuple[str, str]


@dataclass(frozen=True)
class HeldStatus:
    """A planned status not written yet: ``base`` is the run as stored when it was planned."""

    base: Resource
    status: dict[str, Any]
    #: ``clock.monotonic()`` by which it is written.
    due: float
    #: ``clock.monotonic()`` when it was planned.
    at: float
    #: The plan also asked to be made again at some time (a timer: sleep, timeout, TTL...).
    timed: bool = False
    #: ``clock.monotonic()`` of the first held change (``None``: ``at``).
    since: float | None = None


class ProgressHold:
    """Held statuses by run (namespace, name); see the module docstring."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.held: dict[Key, HeldStatus] = {}
        #: ``clock.monotonic()`` of the latest event of a child of each run.
        self.child_events: dict[Key, float] = {}

    def planned(self, key: Key, stored: Resource) -> Resource:
        """``stored`` with its held status, while that is still based on the stored status."""
        held = self.held.get(key)
        if held is None:
            return stored
        base = held.base
        same_version = str(stored["metadata"].get("resourceVersion")) == str(
            base["metadata"].get("resourceVersion")
        )
        if same_version or (stored.get("status") or {}) == (base.get("status") or {}):
            return {**stored, "status": held.status}
        del self.held[key]
        return stored

    def hold(
        self, key: Key, stored: Resource, planned_from: dict[str, Any], plan: Plan, graph: Graph
    ) -> float | None:
        """Hold ``plan.status`` back when it only adds step progress and the first held change
        is younger than :meth:`limit`; returns how long it may wait (None: write it now).

        ``planned_from`` is the status the plan was made from (``stored``'s, or the held one).
        """
        if not progress_only(planned_from, plan.status, graph, plan.changed_steps):
            return None
        now = self.clock.monotonic()
        held = self.held.get(key)
        since = now if held is None else held.at if held.since is None else held.since
        due = since + self.limit()
        if now >= due:
            return None
        self.held[key] = HeldStatus(stored, plan.status, due, now, plan.requeue_after is not None, since)
        return due - now

    def limit(self) -> float:
        """How long a run's first held change may wait now: :data:`STATUS_HOLD`, or as long as
        writing every held run's progress takes at :data:`PROGRESS_WRITE_RATE` (at most
        :data:`MAX_STATUS_HOLD`)."""
        return min(MAX_STATUS_HOLD, max(STATUS_HOLD, len(self.held) / PROGRESS_WRITE_RATE))

    def touched(self, key: Key) -> None:
        """A child of the run changed (its next plan may differ from the held status)."""
        self.child_events[key] = self.clock.monotonic()

    def unchanged_due(self, key: Key, stored: Resource) -> dict[str, Any] | None:
        """The held status to write now without planning again: due, based on ``stored``, no
        child event since it was planned and no timer of that plan pending (else None)."""
        held = self.held.get(key)
        if held is None or held.timed or self.clock.monotonic() < held.due:
            return None
        if stored["metadata"].get("resourceVersion") != held.base["metadata"].get("resourceVersion"):
            return None
        if self.child_events.get(key, float("-inf")) >= held.at:
            return None
        del self.held[key]
        return held.status

    def written(self, key: Key) -> None:
        """The run's status was written (what was held is in it)."""
        self.held.pop(key, None)

    def forget(self, key: Key) -> None:
        """The run is gone."""
        self.held.pop(key, None)
        self.child_events.pop(key, None)
