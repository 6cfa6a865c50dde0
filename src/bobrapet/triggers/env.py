"""The delivery policy an SDK caller's environment sets (reference §5.4).

Invariants: ``BUBU_TRIGGER_DEDUPE_MODE`` is ``none`` (default), ``token`` or ``key`` (any
case); ``BUBU_TRIGGER_DEDUPE_KEY_TEMPLATE`` is the key template of ``key`` mode;
``BUBU_TRIGGER_TOKEN`` the caller's token; ``BUBU_TRIGGER_RETRY_MAX_ATTEMPTS`` (a positive
integer), ``..._BASE_DELAY``/``..._MAX_DELAY`` (durations) and ``..._BACKOFF`` make the
:class:`~.retry.RetryPolicy`; ``BUBU_K8S_OPERATION_TIMEOUT`` (a duration, default 30 s)
bounds the wait for a decision; ``BUBU_TRIGGER_THROTTLE_RATE_PER_SECOND``, ``..._BURST``
and ``..._MAX_IN_FLIGHT`` (non-negative numbers) make the
:class:`~.throttle.ThrottlePolicy`. Empty values are unset; a bad value is a
:class:`~.errors.DeliveryError` naming the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from bobrapet.api.durations import parse_duration
from bobrapet.triggers.errors import DeliveryError
from bobrapet.triggers.request import DELIVERY_MODES, DeliveryMode
from bobrapet.triggers.retry import RetryPolicy
from bobrapet.triggers.throttle import ThrottlePolicy
from bobrapet.triggers.wait import DEFAULT_DECISION_TIMEOUT

MODE = "BUBU_TRIGGER_DEDUPE_MODE"
KEY_TEMPLATE = "BUBU_TRIGGER_DEDUPE_KEY_TEMPLATE"
TOKEN = "BUBU_TRIGGER_TOKEN"
RETRY_PREFIX = "BUBU_TRIGGER_RETRY_"
THROTTLE_PREFIX = "BUBU_TRIGGER_THROTTLE_"
OPERATION_TIMEOUT = "BUBU_K8S_OPERATION_TIMEOUT"


@dataclass(frozen=True)
class EnvPolicy:
    mode: DeliveryMode = "none"
    key_template: str | None = None
    token: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    decision_timeout: float = DEFAULT_DECISION_TIMEOUT
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    return value or None


def _mode(env: Mapping[str, str]) -> DeliveryMode:
    mode = (_get(env, MODE) or "none").lower()
    if mode not in DELIVERY_MODES:
        raise DeliveryError(f"{MODE} must be one of {', '.join(DELIVERY_MODES)}, got {mode!r}")
    return cast(DeliveryMode, mode)


def _attempts(env: Mapping[str, str]) -> int | None:
    name = RETRY_PREFIX + "MAX_ATTEMPTS"
    text = _get(env, name)
    if text is None:
        return None
    try:
        attempts = int(text)
    except ValueError:
        attempts = 0
    if attempts < 1:
        raise DeliveryError(f"{name} must be a positive integer, got {text!r}")
    return attempts


def _retry(env: Mapping[str, str]) -> RetryPolicy:
    wire = {
        "maxAttempts": _attempts(env),
        "baseDelay": _get(env, RETRY_PREFIX + "BASE_DELAY"),
        "maxDelay": _get(env, RETRY_PREFIX + "MAX_DELAY"),
        "backoff": (_get(env, RETRY_PREFIX + "BACKOFF") or "").lower() or None,
    }
    try:
        return RetryPolicy.from_wire(wire)
    except DeliveryError as err:
        raise DeliveryError(f"{RETRY_PREFIX}*: {err}") from None


def _timeout(env: Mapping[str, str]) -> float:
    text = _get(env, OPERATION_TIMEOUT)
    if text is None:
        return DEFAULT_DECISION_TIMEOUT
    try:
        seconds = parse_duration(text).total_seconds()
    except ValueError as err:
        raise DeliveryError(f"{OPERATION_TIMEOUT}: {err}") from None
    if seconds <= 0:
        raise DeliveryError(f"{OPERATION_TIMEOUT} must be a positive duration, got {text!r}")
    return seconds


def _throttle(env: Mapping[str, str]) -> ThrottlePolicy:
    values: dict[str, float] = {}
    for field_name, suffix in (
        ("rate_per_second", "RATE_PER_SECOND"),
        ("burst", "BURST"),
        ("max_in_flight", "MAX_IN_FLIGHT"),
    ):
        name = THROTTLE_PREFIX + suffix
        text = _get(env, name)
        if text is None:
            continue
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if value < 0 or (field_name != "rate_per_second" and not value.is_integer()):
            kind = "number" if field_name == "rate_per_second" else "integer"
            raise DeliveryError(f"{name} must be a non-negative {kind}, got {text!r}")
        values[field_name] = value
    return ThrottlePolicy(
        values.get("rate_per_second", 0.0), int(values.get("burst", 0)), int(values.get("max_in_flight", 0))
    )


def policy_from_env(env: Mapping[str, str]) -> EnvPolicy:
    """The delivery policy of ``env`` (see the module invariants)."""
    return EnvPolicy(
        mode=_mode(env),
        key_template=_get(env, KEY_TEMPLATE),
        token=_get(env, TOKEN),
        retry=_retry(env),
        decision_timeout=_timeout(env),
        throttle=_throttle(env),
    )
