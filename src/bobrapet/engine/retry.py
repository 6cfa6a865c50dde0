"""Retry policy of a StepRun: where it comes from (§2.7) and how long to wait (§4.4 step 9).

Invariants:

* :func:`resolve_retry_policy` always returns a complete wire ``RetryPolicy`` dict with
  ``maxRetries``, ``delay`` and ``backoff`` (plus ``maxDelay``/``jitter`` when some source
  sets them). Source order: ``step.execution.retry``, else the Story's
  ``policy.retries.stepRetryPolicy``; fields that policy leaves unset come from the
  EngramTemplate recommendations (``recommendedMaxRetries`` only when there is no policy at
  all), then from the engine configuration. A step with ``sideEffects: true`` and no
  explicit policy is never retried.
* :func:`retry_delay` is pure: the random part comes in as ``jitter_fraction`` in [0, 1).
  Without jitter it is non-decreasing in ``attempt`` for exponential and linear backoff; the
  result never exceeds the cap (``maxDelay``, itself at least 10ms) and is never below 10ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from typing import Any, Final

from bobrapet.api.durations import format_duration, parse_duration
from bobrapet.api.types.shared import RetryPolicy
from bobrapet.api.types.story import Step, Story
from bobrapet.engine.config import EngineConfig

#: Smallest delay between two attempts, and smallest cap (seconds).
MIN_DELAY: Final = 0.01
_DEFAULT_DELAY: Final = 1.0
#: 2**62 seconds is already far beyond any cap; keeps the float maths finite.
_MAX_EXPONENT: Final = 62

# wire field of the policy <- key of the template's execution.retry recommendations
_RECOMMENDED: Final = (
    ("delay", "recommendedBaseDelay"),
    ("maxDelay", "recommendedMaxDelay"),
    ("backoff", "recommendedBackoff"),
)


def _explicit_policy(step: Step | None, story: Story | None) -> RetryPolicy | None:
    if step is not None and step.execution is not None and step.execution.retry is not None:
        return step.execution.retry
    policy = story.spec.policy if story is not None else None
    retries = policy.retries if policy is not None else None
    return retries.step_retry_policy if retries is not None else None


def _recommendations(template: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """``spec.execution.retry`` of an EngramTemplate wire object (empty when absent)."""
    node: Any = template
    for key in ("spec", "execution", "retry"):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def resolve_retry_policy(
    step: Step | None,
    story: Story | None,
    template: Mapping[str, Any] | None,
    config: EngineConfig,
) -> dict[str, Any]:
    """The effective retry policy of a StepRun created for ``step`` (wire dict)."""
    explicit = _explicit_policy(step, story)
    policy: dict[str, Any] = (
        explicit.model_dump(by_alias=True, exclude_unset=True, exclude_none=True) if explicit else {}
    )
    recommended = _recommendations(template)
    for field, key in _RECOMMENDED:
        if field not in policy and recommended.get(key) is not None:
            policy[field] = recommended[key]
    if explicit is None:
        if step is not None and step.side_effects:
            policy["maxRetries"] = 0
        elif isinstance(recommended.get("recommendedMaxRetries"), int):
            policy["maxRetries"] = recommended["recommendedMaxRetries"]
    policy.setdefault("maxRetries", config.default_max_retries)
    policy.setdefault("delay", format_duration(timedelta(seconds=config.default_retry_delay)))
    policy.setdefault("backoff", config.default_backoff)
    return policy


@lru_cache(maxsize=256)
def _seconds(text: str) -> float | None:
    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        return None


def duration_seconds(value: Any) -> float | None:
    """Seconds of a duration string (``None`` when absent or not a valid duration)."""
    return _seconds(value) if isinstance(value, str) else None


def retry_delay(policy: Mapping[str, Any], attempt: int, jitter_fraction: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = first retry)."""
    base = duration_seconds(policy.get("delay"))
    if base is None:
        base = _DEFAULT_DELAY
    n = max(attempt, 1)
    backoff = policy.get("backoff") or "exponential"
    if backoff == "constant":
        delay = base
    elif backoff == "linear":
        delay = base * n
    else:
        delay = base * float(2 ** min(n - 1, _MAX_EXPONENT))
    cap = duration_seconds(policy.get("maxDelay"))
    if cap is not None:
        cap = max(cap, MIN_DELAY)
        delay = min(delay, cap)
    jitter = policy.get("jitter")
    if isinstance(jitter, int | float) and not isinstance(jitter, bool) and jitter > 0:
        fraction = min(max(jitter_fraction, 0.0), 1.0)
        delay += delay * (jitter / 100.0) * fraction
        if cap is not None:
            delay = min(delay, cap)
    return max(delay, MIN_DELAY)
