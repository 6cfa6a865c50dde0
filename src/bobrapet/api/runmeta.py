"""Labels and annotations of StoryRuns and StepRuns: the names every layer agrees on.

Invariant: these strings are wire contract (reference §4.2-§4.7 and Bobrapet's own
``bobrapet.bubustack.io/*`` additions); they never change meaning between releases.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

# -- labels ---------------------------------------------------------------------------------------
#: The run a StepRun or a Story snapshot belongs to; the value is :func:`run_label` of its name.
STORYRUN: Final = "bubustack.io/storyrun"
STORY_NAME: Final = "bubustack.io/story-name"
#: On a child run (``executeStory``): :func:`run_label` of its parent run's name.
PARENT_STORYRUN: Final = "bubustack.io/parent-storyrun"
PARENT_STEP: Final = "bubustack.io/parent-step"
QUEUE: Final = "bubustack.io/queue"
QUEUE_PRIORITY: Final = "bubustack.io/queue-priority"

# -- annotations ----------------------------------------------------------------------------------
CANCEL_REQUESTED: Final = "bubustack.io/cancel-requested"
REDRIVE_TOKEN: Final = "storyrun.bubustack.io/redrive-token"
REDRIVE_OBSERVED: Final = "storyrun.bubustack.io/redrive-observed"
REDRIVE_FROM_STEP: Final = "storyrun.bubustack.io/redrive-from-step"
REDRIVE_FROM_STEP_OBSERVED: Final = "storyrun.bubustack.io/redrive-from-step-observed"
#: Set by ``redrive --latest`` to the value of the redrive token it goes with: that full
#: redrive drops the run's Story snapshot, so the run restarts on the current Story.
REDRIVE_LATEST: Final = "storyrun.bubustack.io/redrive-latest"
#: On a StepRun: the hash of the Story snapshot of the run that created it (the StepRun
#: controller resolves the step in that copy, not in the current Story).
STORY_SNAPSHOT: Final = "bobrapet.bubustack.io/story-snapshot"
STEP_TIMERS: Final = "runs.bubustack.io/step-timers"
GRACEFUL_CANCEL_OBSERVED: Final = "storyrun.bubustack.io/graceful-cancel-observed-at"
#: executeStory nesting depth of a child run, and the ``ns/story`` chain of its ancestors.
DEPTH: Final = "bobrapet.bubustack.io/depth"
STORY_CHAIN: Final = "bobrapet.bubustack.io/story-chain"
#: Where a StepRun's ``spec.retry`` came from: ``step``, ``engram``, ``story`` (a retry policy
#: the user wrote, so any failure but a terminal one is retried) or ``default`` (engine
#: defaults and template recommendations only: the exit classes of §4.4 decide). A StepRun
#: without it is explicit when it has a ``spec.retry`` (the StepRun defaulter marks the
#: policies it fills in as ``default``).
RETRY_POLICY_SOURCE: Final = "bobrapet.bubustack.io/retry-policy"
RETRY_POLICY_DEFAULT: Final = "default"
#: On a StoryRun created for a trigger with a key (reference §5.3): the trigger's identity
#: (its ``deliveryIdentity.key``) and the canonical hash of its inputs. Admission checks the
#: run's name is derived from the token and the hash matches its inputs.
TRIGGER_TOKEN: Final = "storyrun.bubustack.io/trigger-token"
TRIGGER_INPUT_HASH: Final = "storyrun.bubustack.io/trigger-input-hash"
#: Provenance of a StoryRun created by the StoryTrigger controller: the trigger's name and uid.
TRIGGER_REQUEST_NAME: Final = "storyrun.bubustack.io/trigger-request-name"
TRIGGER_REQUEST_UID: Final = "storyrun.bubustack.io/trigger-request-uid"
#: Provenance of a run started by ``ctx.trigger_story`` (on its StoryTrigger, copied to the
#: StoryRun by the StoryTrigger controller): the StepRun and the StoryRun whose step triggered
#: it (their names, in the trigger's namespace). Such a run is not a child of that run.
TRIGGERED_BY_STEPRUN: Final = "bobrapet.bubustack.io/triggered-by-steprun"
TRIGGERED_BY_STORYRUN: Final = "bobrapet.bubustack.io/triggered-by-storyrun"
#: The annotations the StoryTrigger controller copies from a trigger to the run it creates.
TRIGGER_PROVENANCE: Final = (TRIGGERED_BY_STEPRUN, TRIGGERED_BY_STORYRUN)


def redrive_pending(run: Mapping[str, Any]) -> bool:
    """True while a redrive (full or from a step) was requested but not yet handled."""
    notes = (run.get("metadata") or {}).get("annotations") or {}
    return any(
        bool(notes.get(asked)) and notes.get(asked) != notes.get(seen)
        for asked, seen in (
            (REDRIVE_TOKEN, REDRIVE_OBSERVED),
            (REDRIVE_FROM_STEP, REDRIVE_FROM_STEP_OBSERVED),
        )
    )


def story_run_of(step_run: Mapping[str, Any]) -> str:
    """The name of the StoryRun a StepRun belongs to (its ``spec.storyRunRef.name``)."""
    ref = (step_run.get("spec") or {}).get("storyRunRef") or {}
    return str(ref.get("name") or "")


MAX_LABEL_VALUE: Final = 63
_LABEL_HASH = 10
_LABEL_SEPARATORS = re.compile(r"[^a-z0-9]+")


def run_label(name: str) -> str:
    """The label value naming StoryRun ``name`` (:data:`STORYRUN`, :data:`PARENT_STORYRUN`).

    A label value holds at most 63 characters, a run name up to 253 (a run created for a
    keyed trigger is always longer than 63). A name that fits is its own value; a longer one
    is shortened as the Go operator does (``LabelValueFromName``): lowercased, separators
    collapsed to ``-``, cut to 52 characters and suffixed with ``-`` and 10 hex digits of the
    sha256 of the sanitized name. Labels select; the name itself is read from the object's
    reference (:func:`story_run_of`, :func:`parent_run_of`), never from the label.
    """
    if len(name) <= MAX_LABEL_VALUE:
        return name
    clean = _LABEL_SEPARATORS.sub("-", name.strip().lower()).strip("-")
    if len(clean) <= MAX_LABEL_VALUE:
        return clean or "resource"
    suffix = hashlib.sha256(clean.encode()).hexdigest()[:_LABEL_HASH]
    prefix = clean[: MAX_LABEL_VALUE - 1 - _LABEL_HASH].strip("-_.")
    return f"{prefix}-{suffix}" if prefix else suffix


def steps_selector(run: str) -> str:
    """Label selector of the StepRuns of run ``run``."""
    return f"{STORYRUN}={run_label(run)}"


def children_selector(run: str) -> str:
    """Label selector of the child runs (``executeStory``) of run ``run``."""
    return f"{PARENT_STORYRUN}={run_label(run)}"


def parent_run_of(run: Mapping[str, Any]) -> str:
    """The name of a child run's parent StoryRun: its controlling StoryRun owner reference
    (the :data:`PARENT_STORYRUN` label of a run without one: it names a short parent)."""
    metadata = run.get("metadata") or {}
    for owner in metadata.get("ownerReferences") or ():
        if isinstance(owner, Mapping) and owner.get("kind") == "StoryRun" and owner.get("controller"):
            return str(owner.get("name") or "")
    return str((metadata.get("labels") or {}).get(PARENT_STORYRUN) or "")
