"""``ctx.trigger_story``: start another Story from an engram through a durable StoryTrigger
(reference §5.4).

The engram side; whoever answers the :class:`TriggerBackend` calls submits the trigger (the
engine: :mod:`bobrapet.execution.triggers`, a StoryTrigger in the step's namespace, decided
by the StoryTrigger controller; outside an engine: :class:`MemoryTriggers`).

Identity of a call (what makes it idempotent):

* ``key=K`` (or ``BUBU_TRIGGER_TOKEN`` in the step's environment): delivery mode ``token``
  with ``K`` as the key — any caller that triggers the same Story with the same key gets the
  same StoryRun; the same key with other inputs is an error (:class:`TriggerError`);
* ``BUBU_TRIGGER_DEDUPE_MODE=key`` with ``BUBU_TRIGGER_DEDUPE_KEY_TEMPLATE``: the key is
  rendered from the template (a given key must then equal it);
* no key: the call is idempotent per StepRun, like ``effect_once``: the engine derives the
  submission id from the StepRun (its uid), the Story, the inputs and the call's index among
  identical calls of the attempt (:class:`CallCounter`), so
  a retried attempt that repeats a call gets the run the earlier attempt started; a call
  with other inputs starts another run; a new StepRun (another run, a redrive) starts anew.

Wire (one JSON object per call and reply): ``{story, namespace?, inputs, triggerKey?, wait,
call, env}`` → ``{trigger, namespace, decision, storyRun}`` or ``{error, kind, reason?,
terminal}`` (``kind``: :data:`REJECTED`, :data:`NOT_FOUND`, :data:`PENDING` or
:data:`FAILED`). ``env`` carries the step's ``BUBU_TRIGGER_*`` and
``BUBU_K8S_OPERATION_TIMEOUT`` variables, read when the call is made.
Standard library only (imported by warm workers).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from bobrapet.sdk.errors import StructuredError

#: Environment variables of the delivery policy the engine reads for a call (reference §5.4).
ENV_VARIABLES = (
    "BUBU_TRIGGER_TOKEN",
    "BUBU_TRIGGER_DEDUPE_MODE",
    "BUBU_TRIGGER_DEDUPE_KEY_TEMPLATE",
    "BUBU_TRIGGER_RETRY_MAX_ATTEMPTS",
    "BUBU_TRIGGER_RETRY_BASE_DELAY",
    "BUBU_TRIGGER_RETRY_MAX_DELAY",
    "BUBU_TRIGGER_RETRY_BACKOFF",
    "BUBU_TRIGGER_THROTTLE_RATE_PER_SECOND",
    "BUBU_TRIGGER_THROTTLE_BURST",
    "BUBU_TRIGGER_THROTTLE_MAX_IN_FLIGHT",
    "BUBU_K8S_OPERATION_TIMEOUT",
)
MAX_KEY_LENGTH = 256

REJECTED, NOT_FOUND, PENDING, FAILED = "Rejected", "StoryNotFound", "Pending", "Failed"


class TriggerBackend(Protocol):
    """Answers the trigger calls of one step (replies as described in the module docstring)."""

    def call(self, payload: dict[str, Any]) -> Future[dict[str, Any]]: ...


@dataclass(frozen=True)
class TriggerResult:
    """What :meth:`~bobrapet.sdk.context.Context.trigger_story` returns."""

    #: Name of the StoryTrigger (in :attr:`namespace`).
    trigger: str
    #: Namespace of the trigger and of the StoryRun it creates (the step's namespace).
    namespace: str
    #: ``Created`` (this call's trigger created the run), ``Reused`` (another trigger had
    #: created it); None when the call did not wait (``wait=False``).
    decision: str | None
    #: Name of the StoryRun; None when the call did not wait.
    story_run: str | None


class TriggerError(StructuredError):
    """The Story could not be triggered. ``terminal``: retrying the step cannot change that."""

    def __init__(self, message: str, *, terminal: bool = True, code: str = "TriggerStory") -> None:
        super().__init__(message, exit_class="terminal" if terminal else "retry", code=code)


class TriggerRejected(TriggerError):
    """The StoryTrigger controller rejected the trigger; ``reason`` is its reason code
    (``StoryVersionMismatch``, ``StoryRunConflict``, ``InputTooLarge``, ``ValidationFailed``...)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message, code="TriggerRejected")
        self.reason = reason


class StoryNotFound(TriggerError):
    """The Story to trigger does not exist."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="StoryNotFound")


class TriggerPending(TriggerError):
    """No decision came in time; the trigger is stored and will be decided (a retry of the
    step gets the same trigger, so it is safe)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, terminal=False, code="TriggerPending")


def check_request(story: object, inputs: object, key: object, namespace: object) -> None:
    """Reject a bad call where ``trigger_story`` is called (``ValueError``)."""
    if not isinstance(story, str) or not story:
        raise ValueError("story must be a non-empty string (the Story's name)")
    if inputs is not None and not isinstance(inputs, Mapping):
        raise ValueError(f"inputs must be a mapping (a JSON object), got {type(inputs).__name__}")
    if key is not None and (not isinstance(key, str) or not key):
        raise ValueError("key must be a non-empty string (or None)")
    if isinstance(key, str) and len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"key must be at most {MAX_KEY_LENGTH} characters, got {len(key)}")
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        raise ValueError("namespace must be a non-empty string (or None: the step's namespace)")


def json_copy(inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """A plain JSON copy of ``inputs`` (``ValueError`` when they are not JSON data)."""
    try:
        copied: dict[str, Any] = json.loads(json.dumps(dict(inputs or {}), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"inputs must be JSON data: {exc}") from None
    return copied


def sort_key(story: str, namespace: str | None, inputs: Mapping[str, Any]) -> str:
    """What makes two calls of one attempt the same call (for :class:`CallCounter`)."""
    return json.dumps([namespace or "", story, inputs], sort_keys=True, separators=(",", ":"))


class CallCounter:
    """Counts identical calls of one attempt: :meth:`next` is 1 for the first, 2 for the second..."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def next(self, story: str, namespace: str | None, inputs: Mapping[str, Any]) -> int:
        key = sort_key(story, namespace, inputs)
        with self._lock:
            self._seen[key] = self._seen.get(key, 0) + 1
            return self._seen[key]


def result_of(reply: Mapping[str, Any]) -> TriggerResult:
    """The call's result, or the exception its error reply stands for."""
    error = reply.get("error")
    if error:
        message, kind = str(error), reply.get("kind")
        if kind == REJECTED:
            raise TriggerRejected(message, str(reply.get("reason") or ""))
        if kind == NOT_FOUND:
            raise StoryNotFound(message)
        if kind == PENDING:
            raise TriggerPending(message)
        raise TriggerError(message, terminal=bool(reply.get("terminal")))
    decision, run = reply.get("decision"), reply.get("storyRun")
    return TriggerResult(
        trigger=str(reply.get("trigger") or ""),
        namespace=str(reply.get("namespace") or ""),
        decision=str(decision) if decision else None,
        story_run=str(run) if run else None,
    )


def payload(
    story: str,
    inputs: dict[str, Any],
    *,
    key: str | None,
    namespace: str | None,
    wait: bool,
    call: int,
    env: Mapping[str, str],
) -> dict[str, Any]:
    """The wire of one call (``env``: the step's environment, filtered to :data:`ENV_VARIABLES`)."""
    wire: dict[str, Any] = {"story": story, "inputs": inputs, "wait": bool(wait), "call": call}
    if key is not None:
        wire["triggerKey"] = key
    if namespace is not None:
        wire["namespace"] = namespace
    wire["env"] = {name: env[name] for name in ENV_VARIABLES if env.get(name)}
    return wire


class MemoryTriggers:
    """A :class:`TriggerBackend` that records calls in memory (a ``Context`` built outside an
    engine, e.g. in the unit tests of an engram).

    Every call is recorded in :attr:`calls` (its wire payload) and decided at once: a new
    identity (the key, else story, inputs and call index) is ``Created``, the same identity
    with the same request again returns the same run, with other inputs it is an error, as
    in an engine. ``stories`` (when given) are the Stories that exist: any other is
    :class:`StoryNotFound`. Run names are ``<story>-<n>``.
    """

    def __init__(self, stories: set[str] | None = None, namespace: str = "default") -> None:
        self.stories = stories
        self.namespace = namespace
        self.calls: list[dict[str, Any]] = []
        self._runs: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def call(self, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self.calls.append(payload)
            future.set_result(self._answer(payload))
        return future

    def _answer(self, call: Mapping[str, Any]) -> dict[str, Any]:
        story = str(call.get("story"))
        namespace = str(call.get("namespace") or self.namespace)
        if self.stories is not None and story not in self.stories:
            return {"error": f'story "{story}" not found in namespace "{namespace}"', "kind": NOT_FOUND}
        inputs = call.get("inputs") or {}
        identity = call.get("triggerKey") or f"{sort_key(story, namespace, inputs)}#{call.get('call')}"
        run, first_inputs = self._runs.setdefault(
            f"{namespace}/{story}/{identity}", (f"{story}-{len(self._runs) + 1}", inputs)
        )
        if first_inputs != inputs:
            return {
                "error": f"key {identity!r} was already used to trigger {story!r} with other inputs",
                "kind": FAILED,
                "terminal": True,
            }
        waited = bool(call.get("wait", True))
        return {
            "trigger": f"{run}-trigger",
            "namespace": self.namespace,
            "decision": "Created" if waited else None,
            "storyRun": run if waited else None,
        }


__all__ = [
    "ENV_VARIABLES",
    "CallCounter",
    "MemoryTriggers",
    "StoryNotFound",
    "TriggerBackend",
    "TriggerError",
    "TriggerPending",
    "TriggerRejected",
    "TriggerResult",
]
