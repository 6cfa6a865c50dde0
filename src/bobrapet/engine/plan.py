"""The engine's decisions for one reconcile of a StoryRun, as small typed actions.

Invariants: a :class:`Plan` is applied by the StoryRun controller in this order —
the Story copy to store (``store_story``; then at once the status recording it),
deletions, creations, StepRun annotations,
StoryRun annotations, then ONE status write (only when ``status`` differs from the stored
one), then ``delete_run``. Every action is idempotent (names are deterministic;
create-if-absent; delete-if-present), so applying a plan twice, or crashing half-way and
re-planning, is safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bobrapet.engine.story_pin import StoryPin


@dataclass(frozen=True, slots=True)
class NewStepRun:
    name: str
    step_id: str
    spec: dict[str, Any]
    labels: dict[str, str]
    parent_step: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewChildRun:
    name: str
    step: str
    spec: dict[str, Any]
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass
class Plan:
    #: The complete new ``status`` of the StoryRun (wire dict).
    status: dict[str, Any]
    create_step_runs: list[NewStepRun] = field(default_factory=list)
    create_child_runs: list[NewChildRun] = field(default_factory=list)
    delete_step_runs: list[str] = field(default_factory=list)
    delete_child_runs: list[str] = field(default_factory=list)
    #: StepRun name -> annotations to set (``None`` value removes the key).
    annotate_step_runs: dict[str, dict[str, str | None]] = field(default_factory=dict)
    #: Child StoryRuns (executeStory) to cancel: set their ``spec.cancelRequested`` to true.
    cancel_child_runs: list[str] = field(default_factory=list)
    #: Annotations of the StoryRun to set (``None`` value removes the key).
    annotations: dict[str, str | None] = field(default_factory=dict)
    #: Reconcile again after this many seconds even if nothing changes.
    requeue_after: float | None = None
    #: Delete the StoryRun itself (retention elapsed).
    delete_run: bool = False
    #: The StepRuns and child runs this plan deletes go for good (child TTL): delete their
    #: logs too. (A redrive deletes them to run them again: their logs are kept.) Deleting
    #: the run itself (``delete_run``) always deletes its logs.
    delete_logs: bool = False
    events: list[Event] = field(default_factory=list)
    #: Store the copy of the Story this pin names (create-if-absent) before anything else,
    #: then write ``status`` (which records the pin) before any child is created.
    store_story: StoryPin | None = None
    #: Storage keys of offloaded data a template needs (``templating.offloaded-data-policy:
    #: controller``): the controller loads them into the snapshot's ``blobs`` and plans again;
    #: nothing else of a plan with keys here is applied.
    load_blobs: set[str] = field(default_factory=set)
    #: The steps whose state this plan changed in ``status.stepStates`` relative to the run
    #: it was made from (``None``: unknown, some state was removed).
    changed_steps: frozenset[str] | None = None
