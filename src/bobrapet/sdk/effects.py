"""``ctx.effect_once``: a side effect performed at most once per StepRun and key (reference §6).

The engram side of the algorithm; whoever answers the :class:`EffectBackend` calls keeps the
record (the engine: an EffectClaim per StepRun and key, see :mod:`bobrapet.execution.effects`;
outside an engine: :class:`MemoryEffects`):

1. calls with the same key in one step are serialised (in-process guard);
2. ``claim`` answers ``run`` (this call holds the claim: ``fn`` runs), ``done`` (the effect
   already ran: ``fn`` is not called, its recorded details come back) or ``wait`` (another
   attempt holds a live lease: the claim is asked again until that holder completes,
   releases or lets its lease expire; an expired lease is taken over);
3. while ``fn`` runs, a thread renews the claim every :func:`renew_interval` seconds;
4. ``fn`` returns → ``complete`` records :func:`recorded_details` of its value;
   ``fn`` raises → ``release`` (a later attempt may run it again), then the exception
   propagates.

Wire (one JSON object per call and reply; replies may carry ``{"error": text, "terminal":
bool}`` instead): ``claim {effectKey, leaseSeconds}`` → ``{decision: run}`` |
``{decision: done, details}`` | ``{decision: wait, waitSeconds, holder}``; ``renew
{effectKey}`` → ``{held: bool}``; ``complete {effectKey, details}`` → ``{}``; ``release
{effectKey}`` → ``{}``.
Standard library only (imported by warm workers).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from bobrapet.sdk.errors import StructuredError

#: Default lease of a claim (reference §6.2): another attempt takes it over once it expired.
LEASE_SECONDS = 600
MAX_KEY_LENGTH = 256
#: Recorded details larger than this (encoded JSON) are replaced by a summary.
MAX_DETAILS_BYTES = 8 * 1024
#: Longest pause between two claim requests while another holder's lease is live.
WAIT_POLL = 1.0
RENEW_MIN, RENEW_MAX = 0.1, 30.0
_GUARD_POLL = 0.005

CLAIM, RENEW, COMPLETE, RELEASE = "claim", "renew", "complete", "release"
RUN, DONE, WAIT = "run", "done", "wait"


class EffectBackend(Protocol):
    """Answers the claim calls of one step (replies as described in the module docstring)."""

    def call(self, action: str, payload: dict[str, Any]) -> Future[dict[str, Any]]: ...


class EffectError(StructuredError):
    """The effect's claim cannot be used (abandoned, lost, its StepRun gone...)."""

    def __init__(self, message: str, *, terminal: bool = False) -> None:
        super().__init__(message, exit_class="terminal" if terminal else "retry", code="EffectClaim")


@dataclass(frozen=True)
class EffectResult:
    """What :meth:`~bobrapet.sdk.context.Context.effect_once` returns.

    ``performed`` is True when ``fn`` ran in this call; ``value`` is then ``fn``'s return
    value. When the effect had already been performed (an earlier attempt, or an earlier call
    in this one), ``performed`` is False and ``value`` is the details recorded then
    (:func:`recorded_details` of that return value).
    """

    value: Any
    performed: bool


def renew_interval(lease_seconds: float) -> float:
    """Seconds between renewals while ``fn`` runs: ``min(lease/3, 30)``, at least 0.1."""
    return max(RENEW_MIN, min(lease_seconds / 3, RENEW_MAX))


def recorded_details(value: Any) -> dict[str, Any]:
    """The JSON object recorded for ``fn``'s return value (in the claim and ``status.effects``).

    A dict is recorded as is, any other JSON value as ``{"value": value}``; a value that is
    not JSON becomes ``{"truncated": true, "type": <its type>}`` and one larger than
    :data:`MAX_DETAILS_BYTES` encoded ``{"truncated": true, "sizeBytes": <size>}``.
    """
    details = value if isinstance(value, dict) else {"value": value}
    try:
        encoded = json.dumps(details, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return {"truncated": True, "type": type(value).__name__}
    size = len(encoded.encode())
    if size > MAX_DETAILS_BYTES:
        return {"truncated": True, "sizeBytes": size}
    parsed: dict[str, Any] = json.loads(encoded)  # a plain JSON copy (tuples become lists...)
    return parsed


def check_request(key: object, lease_seconds: object) -> None:
    """Reject a bad key or lease where ``effect_once`` is called."""
    if not isinstance(key, str) or not key:
        raise ValueError("effect key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"effect key must be at most {MAX_KEY_LENGTH} characters, got {len(key)}")
    if not isinstance(lease_seconds, int) or isinstance(lease_seconds, bool) or lease_seconds < 1:
        raise ValueError(f"lease_seconds must be an integer >= 1, got {lease_seconds!r}")


def _reply(reply: Mapping[str, Any]) -> Mapping[str, Any]:
    error = reply.get("error")
    if error:
        raise EffectError(str(error), terminal=bool(reply.get("terminal")))
    return reply


class Effects:
    """The ``effect_once`` calls of one step over ``backend``."""

    def __init__(self, backend: EffectBackend, logger: logging.Logger) -> None:
        self._backend = backend
        self._logger = logger
        self._guards: dict[str, threading.Lock] = {}
        self._guards_lock = threading.Lock()

    def _guard(self, key: str) -> threading.Lock:
        with self._guards_lock:
            return self._guards.setdefault(key, threading.Lock())

    def _call(self, action: str, payload: dict[str, Any]) -> Mapping[str, Any]:
        return _reply(self._backend.call(action, payload).result())

    async def _acall(self, action: str, payload: dict[str, Any]) -> Mapping[str, Any]:
        import asyncio

        reply: dict[str, Any] = await asyncio.wrap_future(self._backend.call(action, payload))
        return _reply(reply)

    def _granted(self, key: str, reply: Mapping[str, Any], waited: bool) -> EffectResult | float | None:
        """``None``: run ``fn``; a result: already done; seconds: ask again after them."""
        decision = reply.get("decision")
        if decision == RUN:
            return None
        if decision == DONE:
            details = reply.get("details")
            return EffectResult(details if isinstance(details, dict) else {}, performed=False)
        if decision == WAIT:
            seconds = float(reply.get("waitSeconds") or 0.0)
            if not waited:
                self._logger.info(
                    "effect %r is held by %s: waiting up to %.0f s for it to complete, be released "
                    "or let its lease expire",
                    key, reply.get("holder") or "another attempt", seconds,
                )  # fmt: skip
            return max(0.01, min(seconds, WAIT_POLL))
        raise EffectError(f"effect {key!r}: unexpected claim answer {decision!r}")

    def once(self, key: str, fn: Callable[[], Any], lease_seconds: int) -> EffectResult:
        check_request(key, lease_seconds)
        with self._guard(key):
            claim = {"effectKey": key, "leaseSeconds": lease_seconds}
            waited = False
            while (granted := self._granted(key, self._call(CLAIM, claim), waited)) is not None:
                if isinstance(granted, EffectResult):
                    return granted
                waited = True
                time.sleep(granted)
            with _Renewal(self._backend, key, lease_seconds, self._logger):
                try:
                    value = fn()
                    if hasattr(value, "__await__"):
                        close = getattr(value, "close", None)
                        if close is not None:
                            close()  # never awaited: nothing ran
                        raise TypeError("fn returned an awaitable: use `await ctx.effect_once_async(...)`")
                except BaseException:
                    self._release(key)
                    raise
            self._call(COMPLETE, {"effectKey": key, "details": recorded_details(value)})
            return EffectResult(value, performed=True)

    async def once_async(self, key: str, fn: Callable[[], Any], lease_seconds: int) -> EffectResult:
        import asyncio

        check_request(key, lease_seconds)
        guard = self._guard(key)
        while not guard.acquire(blocking=False):
            await asyncio.sleep(_GUARD_POLL)
        try:
            claim = {"effectKey": key, "leaseSeconds": lease_seconds}
            waited = False
            while (granted := self._granted(key, await self._acall(CLAIM, claim), waited)) is not None:
                if isinstance(granted, EffectResult):
                    return granted
                waited = True
                await asyncio.sleep(granted)
            with _Renewal(self._backend, key, lease_seconds, self._logger):
                try:
                    value = fn()
                    if hasattr(value, "__await__"):
                        value = await value
                except BaseException:
                    await self._arelease(key)
                    raise
            await self._acall(COMPLETE, {"effectKey": key, "details": recorded_details(value)})
            return EffectResult(value, performed=True)
        finally:
            guard.release()

    def _release(self, key: str) -> None:
        """Give the claim back after ``fn`` failed (a failing release leaves it to expire)."""
        try:
            reply = self._backend.call(RELEASE, {"effectKey": key}).result()
        except Exception as exc:  # the original failure matters more
            reply = {"error": str(exc)}
        self._released(key, reply)

    async def _arelease(self, key: str) -> None:
        import asyncio

        try:
            reply = await asyncio.wrap_future(self._backend.call(RELEASE, {"effectKey": key}))
        except Exception as exc:
            reply = {"error": str(exc)}
        self._released(key, reply)

    def _released(self, key: str, reply: Mapping[str, Any]) -> None:
        if reply.get("error"):
            self._logger.warning("effect %r: the claim could not be released: %s", key, reply["error"])


class _Renewal:
    """Renews one claim from a daemon thread while ``fn`` runs (stops at exit, or when lost)."""

    def __init__(self, backend: EffectBackend, key: str, lease_seconds: int, logger: logging.Logger) -> None:
        self._backend = backend
        self._key = key
        self._interval = renew_interval(lease_seconds)
        self._logger = logger
        self._stop = threading.Event()

    def __enter__(self) -> _Renewal:
        threading.Thread(target=self._run, name=f"renew-{self._key}", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                reply = self._backend.call(RENEW, {"effectKey": self._key}).result(timeout=self._interval + 5)
            except Exception as exc:  # try again at the next tick
                self._logger.warning("effect %r: renewing its claim failed: %s", self._key, exc)
                continue
            if self._stop.is_set():
                return
            if reply.get("error") or not reply.get("held"):
                self._logger.warning(
                    "effect %r: its claim was lost (%s); completing it will fail",
                    self._key, reply.get("error") or "taken over after its lease expired",
                )  # fmt: skip
                return


class MemoryEffects:
    """An :class:`EffectBackend` keeping the claims in memory (a ``Context`` built outside an
    engine, e.g. in the unit tests of an engram).

    ``completed`` seeds effects as already performed (key → recorded details);
    :attr:`completed` shows what has been recorded so far.
    """

    def __init__(self, completed: Mapping[str, dict[str, Any]] | None = None) -> None:
        self._done: dict[str, dict[str, Any]] = dict(completed or {})
        self._held: set[str] = set()
        self._lock = threading.Lock()

    @property
    def completed(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._done)

    def call(self, action: str, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            future.set_result(self._answer(action, str(payload.get("effectKey")), payload))
        return future

    def _answer(self, action: str, key: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        if action == COMPLETE:
            self._done[key] = recorded_details(payload.get("details"))
        if action == CLAIM:
            if key in self._done:
                return {"decision": DONE, "details": self._done[key]}
            self._held.add(key)
            return {"decision": RUN}
        if action == RENEW:
            return {"held": key in self._held}
        if action in (COMPLETE, RELEASE):
            self._held.discard(key)
            return {}
        return {"error": f"unknown effect call {action!r}"}


__all__ = [
    "LEASE_SECONDS",
    "MAX_DETAILS_BYTES",
    "EffectBackend",
    "EffectError",
    "EffectResult",
    "Effects",
    "MemoryEffects",
    "recorded_details",
    "renew_interval",
]
