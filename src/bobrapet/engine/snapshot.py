"""What the engine sees of one StoryRun: plain, immutable data gathered by the controller.

Invariants: nothing here performs I/O or reads a clock; ``now`` is the only time source.
Objects are wire dicts (camelCase, as stored) except ``story``, which is parsed once per
Story content hash by the controller and shared read-only. ``story`` is the Story the run
executes: the copy recorded by ``story_pin`` once the run started, the current Story
before (``story_pin`` is then the pin to record at start).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bobrapet.api.types.story import Story
from bobrapet.engine.config import EngineConfig
from bobrapet.engine.story_pin import StoryPin


@dataclass(frozen=True, slots=True)
class StepRunView:
    """One child StepRun (an engram step, or a branch of a parallel step)."""

    name: str
    step_id: str
    parent_step: str | None = None
    phase: str | None = None
    message: str | None = None
    reason: str | None = None
    output: Any = None
    signals: Mapping[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    retries: int = 0
    deleting: bool = False
    error: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChildRunView:
    """One child StoryRun started by an ``executeStory`` step."""

    name: str
    step: str
    phase: str | None = None
    message: str | None = None
    output: Any = None
    finished_at: datetime | None = None
    #: False when a StoryRun with the deterministic name exists but is not ours (spoofed).
    owned: bool = True
    deleting: bool = False


@dataclass(frozen=True, slots=True)
class Capacity:
    """Running StepRuns that count against the concurrency limits of §2.7."""

    story_running: int = 0
    queue_running: int = 0
    global_running: int = 0
    #: True when another non-terminal run of the same queue with pending demand has a higher
    #: effective priority (priority aging applied by the controller with the engine's helper).
    outranked: bool = False


@dataclass(frozen=True)
class Snapshot:
    run: Mapping[str, Any]
    story: Story | None
    #: Engram name -> Engram wire dict (``None``: looked up and missing), namespace of the run.
    engrams: Mapping[str, Mapping[str, Any] | None]
    #: EngramTemplate name -> wire dict (``None``: missing).
    templates: Mapping[str, Mapping[str, Any] | None]
    #: StepRuns of this run by ``spec.stepId``.
    step_runs: Mapping[str, StepRunView]
    #: executeStory children by parent step name.
    child_runs: Mapping[str, ChildRunView]
    now: datetime
    config: EngineConfig = field(default_factory=EngineConfig)
    #: executeStory nesting depth of this run (0 for a top-level run).
    depth: int = 0
    capacity: Capacity = field(default_factory=Capacity)
    #: Target Stories of executeStory steps, by step name (``None``: missing).
    sub_stories: Mapping[str, Story | None] = field(default_factory=dict)
    #: Where ``story`` comes from: the pin in the run's status, or the one to record at start.
    story_pin: StoryPin | None = None
    #: Why the run's recorded Story copy could not be read (``story`` is then ``None``).
    story_problem: str | None = None
    #: Offloaded data loaded for compound templates: storage key -> stored value (or
    #: :class:`~bobrapet.templating.offload.LoadFailure`), see :attr:`Plan.load_blobs`.
    blobs: Mapping[str, Any] = field(default_factory=dict)
