"""The ``ctx`` handed to a Python engram: config, secrets, logger, identity, signals, effects.

Invariants: identity attributes come from the ``BUBU_*`` environment of the step (§8.3);
``signal`` accepts a non-empty string key and a JSON value of at most 8 KiB (encoded
UTF-8) and records it in emission order; ``effect_once`` runs its function at most once per
StepRun and key (:mod:`bobrapet.sdk.effects`); after ``close()`` no more signals or effects
are accepted.
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
    ) -> None:
        source = os.environ if env is None else env
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

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the step has finished; effects can no longer be performed")

    def close(self) -> None:
        """Mark the step finished (later ``signal`` and ``effect_once`` calls raise)."""
        self._closed = True
