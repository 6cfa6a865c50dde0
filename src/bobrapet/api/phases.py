"""Phase sets, the "is this phase terminal" test and the reason codes of step states.

Invariants:

* Every layer asks :func:`is_terminal_phase` (or reads :data:`TERMINAL_PHASES`) instead of
  keeping its own set of terminal phases.
* :data:`STOP_PHASES` is the one list of phases a ``stop`` step may end a run with: admission
  rejects any other value and the engine fails a ``stop`` step that somehow carries one.
* The state of a step lives in fields: a step held by a concurrency limit, skipped because a
  ``condition`` was false (or because such a skip cascaded to it), ended by a ``stop`` step,
  is marked by ``stepStates[step].reason`` (:class:`StepReason`). Messages are for people;
  no code reads them back.
"""

from __future__ import annotations

from typing import Final

from bobrapet.api.types.enums import TERMINAL_PHASES

__all__ = [
    "DEGRADED_PHASES",
    "OK_PHASES",
    "STOP_PHASES",
    "TERMINAL_PHASES",
    "StepReason",
    "is_terminal_phase",
]

#: Phases a ``stop`` step may set (``with.phase``; default ``Succeeded``).
STOP_PHASES: Final = ("Succeeded", "Failed", "Canceled")
#: Terminal phases of a step that did not fail.
OK_PHASES: Final = frozenset({"Succeeded", "Skipped"})
#: Phases that set ``Degraded=True`` on a run or a StepRun.
DEGRADED_PHASES: Final = frozenset({"Failed", "Timeout", "Aborted"})


def is_terminal_phase(phase: object) -> bool:
    """Whether ``phase`` (any value, ``None`` included) is one a resource never leaves."""
    return phase in TERMINAL_PHASES


class StepReason:
    """Reason codes of ``StoryRun.status.stepStates[*].reason`` that engine logic reads.

    They complement the condition reasons of :class:`bobrapet.api.conditions.Reason` that
    step states also carry (``DependencyFailed``, ``ExpressionFailed``, ``Canceled`` …).
    """

    #: ``Pending`` and not started: held by a concurrency limit or by higher-priority work.
    QUEUED: Final = "Queued"
    #: A ``condition`` step whose expression was false (Skipped; its dependents cascade).
    CONDITION_FALSE: Final = "ConditionFalse"
    #: Skipped because an upstream ``condition`` was false (transitively).
    CONDITION_SKIPPED: Final = "ConditionSkipped"
    #: A ``stop`` step that took effect (its phase is the run's).
    STOPPED: Final = "Stopped"
    #: Skipped or canceled because a ``stop`` step ended the run.
    STORY_STOPPED: Final = "StoryStopped"
    #: Claimed by an engine, waiting for a free execution slot (also the StepRun's reason).
    WAITING_FOR_CAPACITY: Final = "WaitingForCapacity"
