"""The ``ctx`` handed to a Python engram: config, secrets, logger, identity, signals, effects,
triggers.

Invariants: identity attributes come from the ``BUBU_*`` environment of the step (§8.3);
``signal`` accepts a non-empty string key and a JSON value of at most 8 KiB (encoded
UTF-8) and records it in emission order; ``effect_once`` runs its function at most once per
StepRun and key (:mod:`bobrapet.sdk.effects`); ``trigger_story`` starts a Story at most once
per identity (:mod:`bobrapet.sdk.triggers`); after ``close()`` no more signals, effects or
triggers are accepted.
Standard library only (imported by warm workers).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bobrapet.sdk.effects import LEASE_SECONDS, EffectBackend, EffectResult, Effects, MemoryEffects
from bobrapet.sdk.triggers import (
    CallCounter,
    MemoryTriggers,
    TriggerBackend,
    TriggerResult,
    check_request,
    json_copy,
    payload,
    result_of,
)

MAX_SIGNAL_BYTES = 8 * 1024
LOGGER_NAME = "bobrapet.engram"

SignalSink = Callable[[dict[str, Any]], None]


def rfc3339_now() -> str:
    """The current UTC time as RFC 3339 with microseconds and a ``Z`` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def env_flag(value: str | None) -> bool:
    """``BUBU_DEBUG``-style boolean: true for 1/true/yes/on (any case)."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class Context:
    """What an engram may use while it runs one step."""

    def __init__(
        self,
        *,
        config: dict[str, Any] | None = None,
        secrets: dict[str, dict[str, str]] | None = None,
        env: Mapping[str, str] | None = None,
        logger: logging.Logger | None = None,
        debug: bool | None = None,
        on_signal: SignalSink | None = None,
        effects: EffectBackend | None = None,
        triggers: TriggerBackend | None = None,
    ) -> None:
        source = os.environ if env is None else env
        self._env = env
        self.config: dict[str, Any] = config if config is not None else {}
        #: The step's secrets: ``ctx.secrets[<logical name>][<key>]`` (template ``secretSchema``).
        self.secrets: dict[str, dict[str, str]] = secrets if secrets is not None else {}
        self.story: str = source.get("BUBU_STORY_NAME", "")
        self.story_version: str = source.get("BUBU_STORY_VERSION", "")
        self.story_run: str = source.get("BUBU_STORYRUN_ID", "")
        self.step: str = source.get("BUBU_STEP_NAME", "")
        self.step_run: str = source.get("BUBU_STEPRUN_NAME", "")
        self.namespace: str = source.get("BUBU_STEPRUN_NAMESPACE", "")
        self.engram: str = source.get("BUBU_ENGRAM_NAME", "")
        #: The StepRun's ``spec.idempotencyKey`` (``BUBU_IDEMPOTENCY_KEY``): the same for every
        #: attempt of the step, so external side effects can be deduplicated with it.
        self.idempotency_key: str = source.get("BUBU_IDEMPOTENCY_KEY", "")
        self.debug: bool = env_flag(source.get("BUBU_DEBUG")) if debug is None else debug
        self.logger: logging.Logger = logger if logger is not None else logging.getLogger(LOGGER_NAME)
        self.signals: list[dict[str, Any]] = []
        self._on_signal = on_signal
        #: Where effect claims are kept: the engine's EffectClaims, or memory outside an engine.
        self._effects = Effects(effects if effects is not None else MemoryEffects(), self.logger)
        #: Where triggers go: the engine's StoryTriggers, or memory outside an engine.
        self._triggers: TriggerBackend = triggers if triggers is not None else MemoryTriggers()
        self._trigger_calls = CallCounter()
        self._closed = False

    def signal(self, key: str, value: Any) -> None:
        """Emit a named signal (a JSON value of at most 8 KiB) visible as ``steps.<s>.signals``."""
        if self._closed:
            raise RuntimeError("the step has finished; signals can no longer be emitted")
        if not isinstance(key, str) or not key:
            raise ValueError("signal key must be a non-empty string")
        try:
            encoded = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"signal {key!r}: value is not JSON-serializable: {exc}") from None
        size = len(encoded.encode())
        if size > MAX_SIGNAL_BYTES:
            raise ValueError(f"signal {key!r}: value is {size} bytes, the limit is {MAX_SIGNAL_BYTES}")
        event = {"key": key, "payload": json.loads(encoded), "emittedAt": rfc3339_now()}
        self.signals.append(event)
        if self._on_signal is not None:
            self._on_signal(event)

    def effect_once(
        self, key: str, fn: Callable[[], Any], *, lease_seconds: int = LEASE_SECONDS
    ) -> EffectResult:
        """Run ``fn()`` at most once for this StepRun and ``key``, across retries and crashes.

        Returns an :class:`~bobrapet.sdk.effects.EffectResult`: ``performed`` is True when
        ``fn`` ran now (``value`` is its return value); False when an earlier attempt (or an
        earlier call) already performed it — ``fn`` is not called and ``value`` is the JSON
        recorded then (a dict return value as is, anything else as ``{"value": ...}``,
        summarised above 8 KiB). If ``fn`` raises, the claim is released and the exception
        propagates: a retry runs ``fn`` again. If another attempt holds the claim (it crashed
        while ``fn`` ran), this call waits until that claim is completed, released, or its
        ``lease_seconds`` lease (renewed while ``fn`` runs) has expired, then takes it over.
        Use :meth:`effect_once_async` from an ``async`` engram.
        """
        self._check_open()
        return self._effects.once(key, fn, lease_seconds)

    async def effect_once_async(
        self, key: str, fn: Callable[[], Awaitable[Any] | Any], *, lease_seconds: int = LEASE_SECONDS
    ) -> EffectResult:
        """:meth:`effect_once` for ``async`` engrams: ``fn`` may be async (it is awaited)."""
        self._check_open()
        return await self._effects.once_async(key, fn, lease_seconds)

    def trigger_story(
        self,
        story: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        namespace: str | None = None,
        wait: bool = True,
    ) -> TriggerResult:
        """Start the Story ``story`` with ``inputs`` through a durable StoryTrigger; returns a
        :class:`~bobrapet.sdk.triggers.TriggerResult` (trigger name, decision, StoryRun name).

        The StoryRun is independent of this step's run (not its child: it is not canceled
        with it and this step does not wait for it to finish); it runs when an engine drives
        it (``bobrapet wait RUN``, ``bobrapet serve``). It is annotated with the StepRun and
        StoryRun that triggered it.

        Idempotency: with ``key``, any caller triggering ``story`` with the same key gets the
        same StoryRun (the same key with other inputs raises
        :class:`~bobrapet.sdk.triggers.TriggerError`); include ``ctx.idempotency_key`` in the
        key to scope it to this step. Without a key the call is idempotent per StepRun, like
        :meth:`effect_once`: a retry of this step that makes the same call (same Story, same
        inputs, the same how-manieth such call) gets the run the first attempt started; a call
        with other inputs starts another run.

        ``namespace`` is the Story's namespace (default: the step's; another one needs the
        cross-namespace policy to allow it). With ``wait`` (the default) the call returns once
        the StoryTrigger controller decided (at most 30 s, ``BUBU_K8S_OPERATION_TIMEOUT``):
        :class:`~bobrapet.sdk.triggers.TriggerRejected` (with its ``reason``) when it rejected
        the trigger, :class:`~bobrapet.sdk.triggers.StoryNotFound` when the Story does not
        exist, :class:`~bobrapet.sdk.triggers.TriggerPending` (retryable) when no decision
        came in time. Inputs too large to store inline are offloaded to storage. Outside an
        engine the calls are recorded in memory (:class:`~bobrapet.sdk.triggers.MemoryTriggers`).
        Use :meth:`trigger_story_async` from an ``async`` engram.
        """
        wire = self._trigger_payload(story, inputs, key, namespace, wait)
        return self._triggered(story, result_of(self._triggers.call(wire).result()))

    async def trigger_story_async(
        self,
        story: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        namespace: str | None = None,
        wait: bool = True,
    ) -> TriggerResult:
        """:meth:`trigger_story` for ``async`` engrams (awaits the decision)."""
        import asyncio

        wire = self._trigger_payload(story, inputs, key, namespace, wait)
        reply: dict[str, Any] = await asyncio.wrap_future(self._triggers.call(wire))
        return self._triggered(story, result_of(reply))

    def _triggered(self, story: str, result: TriggerResult) -> TriggerResult:
        """Log what the call did (the step log shows which run to follow)."""
        if result.story_run:
            self.logger.info(
                "story %r triggered: storytrigger/%s %s storyrun/%s (an engine drives it: bobrapet wait %s)",
                story, result.trigger, result.decision, result.story_run, result.story_run,
            )  # fmt: skip
        else:
            self.logger.info("story %r triggered: storytrigger/%s submitted", story, result.trigger)
        return result

    def _trigger_payload(
        self, story: str, inputs: Mapping[str, Any] | None, key: str | None, namespace: str | None, wait: bool
    ) -> dict[str, Any]:
        if self._closed:
            raise RuntimeError("the step has finished; stories can no longer be triggered")
        check_request(story, inputs, key, namespace)
        data = json_copy(inputs)
        call = self._trigger_calls.next(story, namespace, data)
        env = os.environ if self._env is None else self._env
        return payload(story, data, key=key, namespace=namespace, wait=wait, call=call, env=env)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the step has finished; effects can no longer be performed")

    def close(self) -> None:
        """Mark the step finished (later ``signal``, ``effect_once`` and ``trigger_story`` calls raise)."""
        self._closed = True
