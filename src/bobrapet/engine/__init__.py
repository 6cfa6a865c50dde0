"""The pure StoryRun engine: ``plan(snapshot) -> Plan``.

Nothing in this package performs I/O or reads a clock: controllers gather a
:class:`Snapshot`, call :func:`plan`, and apply the returned :class:`Plan`.
"""

from bobrapet.engine.config import EngineConfig, QueueConfig
from bobrapet.engine.lookups import required_engrams, sub_story_refs
from bobrapet.engine.plan import Event, NewChildRun, NewStepRun, Plan
from bobrapet.engine.scheduling import effective_priority
from bobrapet.engine.snapshot import Capacity, ChildRunView, Snapshot, StepRunView
from bobrapet.engine.storyrun import plan
from bobrapet.engine.variables import run_inputs, run_variables, template_seed

__all__ = [
    "Capacity",
    "ChildRunView",
    "EngineConfig",
    "Event",
    "NewChildRun",
    "NewStepRun",
    "Plan",
    "QueueConfig",
    "Snapshot",
    "StepRunView",
    "effective_priority",
    "plan",
    "required_engrams",
    "run_inputs",
    "run_variables",
    "sub_story_refs",
    "template_seed",
]
