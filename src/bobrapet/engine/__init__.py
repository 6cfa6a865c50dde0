"""The pure engine: ``plan(snapshot) -> Plan`` for a StoryRun, ``decide_launch(gathered)`` for a
StepRun attempt.

Nothing in this package performs I/O or reads a clock: controllers gather a
:class:`Snapshot`, call :func:`plan`, and apply the returned :class:`Plan`.

This module is the engine's public face: controllers import the engine only from here
(an import-linter contract forbids ``bobrapet.controllers`` to import ``bobrapet.engine.*``
submodules directly).
"""

from bobrapet.engine.attempt import (
    BLOCKED_RETRY,
    MISSING_REFERENCE_RETRY,
    LaunchAttempt,
    LaunchBlocked,
    LaunchDecision,
    LaunchFailed,
    LaunchInput,
    LaunchNeeds,
    decide_launch,
    find_step,
    launch_secret_names,
)
from bobrapet.engine.cache import CACHE_HIT, CACHE_STORED, CacheEntry, annotated, fresh_output
from bobrapet.engine.config import EngineConfig, QueueConfig
from bobrapet.engine.dag import Graph, compile_graph
from bobrapet.engine.effects import (
    ClaimDecision,
    claim_completed,
    claim_released,
    claim_renewed,
    claim_status,
    claim_taken_over,
    decide_claim,
    is_held_by,
    new_claim,
    record_effect,
    recorded_effect,
)
from bobrapet.engine.launch import engram_version_mismatch
from bobrapet.engine.lookups import required_engrams, sub_story_refs
from bobrapet.engine.naming import compose_dns1123
from bobrapet.engine.plan import Event, NewChildRun, NewStepRun, Plan
from bobrapet.engine.progress import progress_only
from bobrapet.engine.scheduling import effective_priority, queue_name, queue_priority
from bobrapet.engine.secrets import SecretProblem, effective_bindings, resolve_step_secrets
from bobrapet.engine.snapshot import Capacity, ChildRunView, Snapshot, StepRunView
from bobrapet.engine.step_events import input_near_limit, outcome_events
from bobrapet.engine.steprun import (
    WAITING_FOR_CAPACITY,
    InputRejected,
    StepOutcome,
    blocked,
    claimed,
    complete,
    debug_enabled,
    holds_claim,
    is_waiting_for_capacity,
    launch_failed,
    missing_requirement,
    prepare_input,
    retry_wait,
    step_timeout,
    waiting_for_capacity,
)
from bobrapet.engine.story_pin import StoryPin, canonical_json, content_hash, pin_for, snapshot_name
from bobrapet.engine.storyrun import plan
from bobrapet.engine.variables import run_inputs, run_variables, template_seed

#: :func:`plan` under a name that is not also a submodule (``bobrapet.engine.plan`` holds the
#: Plan model), so importers and import-linter see the function, not the module.
make_plan = plan

__all__ = [
    "BLOCKED_RETRY",
    "CACHE_HIT",
    "CACHE_STORED",
    "MISSING_REFERENCE_RETRY",
    "WAITING_FOR_CAPACITY",
    "CacheEntry",
    "Capacity",
    "ChildRunView",
    "ClaimDecision",
    "EngineConfig",
    "Event",
    "Graph",
    "InputRejected",
    "LaunchAttempt",
    "LaunchBlocked",
    "LaunchDecision",
    "LaunchFailed",
    "LaunchInput",
    "LaunchNeeds",
    "NewChildRun",
    "NewStepRun",
    "Plan",
    "QueueConfig",
    "SecretProblem",
    "Snapshot",
    "StepOutcome",
    "StepRunView",
    "StoryPin",
    "annotated",
    "blocked",
    "canonical_json",
    "claim_completed",
    "claim_released",
    "claim_renewed",
    "claim_status",
    "claim_taken_over",
    "claimed",
    "compile_graph",
    "complete",
    "compose_dns1123",
    "content_hash",
    "debug_enabled",
    "decide_claim",
    "decide_launch",
    "effective_bindings",
    "effective_priority",
    "engram_version_mismatch",
    "find_step",
    "fresh_output",
    "holds_claim",
    "input_near_limit",
    "is_held_by",
    "is_waiting_for_capacity",
    "launch_failed",
    "launch_secret_names",
    "make_plan",
    "missing_requirement",
    "new_claim",
    "outcome_events",
    "pin_for",
    "plan",
    "prepare_input",
    "progress_only",
    "queue_name",
    "queue_priority",
    "record_effect",
    "recorded_effect",
    "required_engrams",
    "resolve_step_secrets",
    "retry_wait",
    "run_inputs",
    "run_variables",
    "snapshot_name",
    "step_timeout",
    "sub_story_refs",
    "template_seed",
    "waiting_for_capacity",
]
