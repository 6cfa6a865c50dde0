"""Errors of trigger submission, worded for the person or program that submitted.

Invariant: ``str(error)`` is one line that says what went wrong and how to fix it;
``retryable`` says whether submitting the same request again may succeed (the retry loop
of :mod:`.retry` reads it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TriggerError(Exception):
    """A trigger could not be submitted or was not accepted."""

    retryable: bool = False


class StoryNotFound(TriggerError):
    """The Story to start does not exist."""

    def __init__(self, name: str, namespace: str, known: Sequence[str] = ()) -> None:
        there = f"; stories there: {', '.join(known)}" if known else ""
        super().__init__(f'story "{name}" not found in namespace "{namespace}"{there}')
        self.name = name
        self.namespace = namespace


class DeliveryError(TriggerError):
    """The delivery policy cannot produce an identity (mode, token, key template) or the
    inputs are not a JSON object."""


class IdentityConflict(TriggerError):
    """A StoryTrigger of the same name exists for a different request."""

    def __init__(self, name: str, namespace: str, differences: Sequence[str]) -> None:
        super().__init__(
            f'storytrigger "{name}" already exists in namespace "{namespace}" with a different '
            f"immutable request ({', '.join(differences)} differ); a delivery identity cannot be "
            "reused for another request: use another key"
        )
        self.name = name
        self.namespace = namespace
        self.differences = tuple(differences)


class TriggerRejected(TriggerError):
    """The StoryTrigger controller rejected the trigger (``status.decision: Rejected``)."""

    def __init__(self, trigger: dict[str, Any]) -> None:
        status = trigger.get("status") or {}
        name = (trigger.get("metadata") or {}).get("name")
        super().__init__(
            f'storytrigger "{name}" was rejected ({status.get("reason")}): {status.get("message")}'
        )
        self.trigger = trigger
        self.reason = str(status.get("reason") or "")


class StillPending(TriggerError):
    """No decision was made in time; the trigger is stored and will still be decided."""

    retryable = True

    def __init__(self, name: str, namespace: str, timeout: float) -> None:
        super().__init__(
            f'storytrigger "{name}" in namespace "{namespace}" is still pending after {timeout:g}s: '
            "no StoryTrigger controller decided it (is an engine or `bobrapet serve` running?); "
            "submitting it again is safe"
        )
        self.name = name
        self.namespace = namespace
