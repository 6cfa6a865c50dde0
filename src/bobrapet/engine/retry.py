"""Retry policy of a StepRun: where it comes from (§2.7), whether a failure is retried (the
retry contract of DESIGN) and how long to wait (§4.4 step 9).

Invariants:

* :func:`resolve_retry` always returns a complete wire ``RetryPolicy`` dict with
  ``maxRetries``, ``delay`` and ``backoff`` (plus ``maxDelay``/``jitter`` when some source
  sets them), and the level the policy came from. Precedence, highest first: the StepRun's
  own ``spec.retry`` (it is what :func:`resolve_retry` computed when the StepRun was made,
  or what its author wrote), step ``execution.retry``, Engram ``spec.overrides.retry``,
  the EngramTemplate's ``spec.execution.retry`` recommendations, Story
  ``policy.execution.retry``, Story ``policy.retries.stepRetryPolicy``, the engine
  configuration. A written policy (step, Engram, Story) is taken as a whole — its unset
  fields are not inherited from a lower written policy — except that the template's
  recommendations fill the ``delay``/``maxDelay``/``backoff`` a step or Engram policy leaves
  unset, and override the fields of a Story-wide policy (the template is more specific than
  the Story). ``recommendedMaxRetries`` never overrides a step or Engram policy. A step with
  ``sideEffects: true`` and no written policy is never retried.
* A policy is *explicit* when the user wrote it (step, Engram, Story, or the StepRun's own
  ``spec.retry``); the StepRun records this in the annotation
  :data:`bobrapet.api.runmeta.RETRY_POLICY_SOURCE` (``step``/``engram``/``story``/``default``),
  read back by :func:`policy_is_explicit`.
* :func:`may_retry` is the retry contract: a failure the engram declared terminal
  (``StructuredError(exit_class="terminal")`` or ``retryable: false``) is never retried; with
  an explicit policy every other engram failure is retried (plain exception, non-zero exit,
  crash, timeout); without one the exit classes of §4.4 decide (``retry``, ``rateLimited``,
  ``unknown``). Failures that can never succeed (schema violations, expression errors,
  missing Engram/template) never reach it: they fail the StepRun directly.
* :func:`retry_delay` is pure: the random part comes in as ``jitter_fraction`` in [0, 1).
  Without jitter it is non-decreasing in ``attempt`` for exponential and linear backoff; the
  result never exceeds the cap (``maxDelay``, itself at least 10ms) and is never below 10ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any, Final, Literal

from bobrapet.api import runmeta
from bobrapet.api.durations import format_duration, parse_duration
from bobrapet.api.types.shared import DEFAULT_BACKOFF, DEFAULT_RETRY_DELAY_SECONDS, RetryPolicy
from bobrapet.api.types.story import Step, Story
from bobrapet.engine.config import EngineConfig
from bobrapet.engine.exit_class import classify_exit, is_retryable

#: Smallest delay between two attempts, and smallest cap (seconds).
MIN_DELAY: Final = 0.01
#: 2**62 seconds is already far beyond any cap; keeps the float maths finite.
_MAX_EXPONENT: Final = 62
_POLICY_FIELDS: Final = ("maxRetries", "delay", "maxDelay", "jitter", "backoff")

# wire field of the policy <- key of the template's execution.retry recommendations
_RECOMMENDED: Final = (
    ("maxRetries", "recommendedMaxRetries"),
    ("delay", "recommendedBaseDelay"),
    ("maxDelay", "recommendedMaxDelay"),
    ("backoff", "recommendedBackoff"),
)

#: Where a StepRun's retry policy came from (the value of the ``retry-policy`` annotation).
RetrySource = Literal["step", "engram", "story", "default"]


@dataclass(frozen=True)
class ResolvedRetry:
    """The effective retry policy of a new StepRun (wire dict) and the level it came from."""

    policy: dict[str, Any]
    source: RetrySource

    @property
    def explicit(self) -> bool:
        """Whether the user wrote the policy (then any non-terminal failure is retried)."""
        return self.source != "default"


def _wire(policy: RetryPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return policy.model_dump(by_alias=True, exclude_unset=True, exclude_none=True)


def _get(node: Any, *keys: str) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _engram_policy(engram: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``spec.overrides.retry`` of an Engram wire object (``None`` when absent)."""
    retry = _get(engram, "spec", "overrides", "retry")
    if not isinstance(retry, Mapping):
        return None
    return {k: retry[k] for k in _POLICY_FIELDS if retry.get(k) is not None}


def _written_policies(
    step: Step | None, story: Story | None, engram: Mapping[str, Any] | None
) -> tuple[tuple[RetrySource, dict[str, Any]] | None, tuple[RetrySource, dict[str, Any]] | None]:
    """The first written policy above the template (step, Engram) and below it (Story)."""
    above: tuple[RetrySource, dict[str, Any]] | None = None
    step_policy = _wire(step.execution.retry) if step is not None and step.execution is not None else None
    engram_policy = _engram_policy(engram)
    if step_policy is not None:
        above = ("step", step_policy)
    elif engram_policy is not None:
        above = ("engram", engram_policy)
    policy = story.spec.policy if story is not None else None
    execution = _wire(policy.execution.retry) if policy is not None and policy.execution else None
    retries = _wire(policy.retries.step_retry_policy) if policy is not None and policy.retries else None
    below: tuple[RetrySource, dict[str, Any]] | None = None
    if execution is not None:
        below = ("story", execution)
    elif retries is not None:
        below = ("story", retries)
    return above, below


def _recommendations(template: Mapping[str, Any] | None) -> dict[str, Any]:
    """The template's ``spec.execution.retry`` recommendations as wire policy fields."""
    node = _get(template, "spec", "execution", "retry")
    if not isinstance(node, Mapping):
        return {}
    out = {field: node[key] for field, key in _RECOMMENDED if node.get(key) is not None}
    if not isinstance(out.get("maxRetries"), int) or isinstance(out.get("maxRetries"), bool):
        out.pop("maxRetries", None)
    return out


def resolve_retry(
    step: Step | None,
    story: Story | None,
    template: Mapping[str, Any] | None,
    config: EngineConfig,
    engram: Mapping[str, Any] | None = None,
) -> ResolvedRetry:
    """The effective retry policy of a StepRun created for ``step``, and its source."""
    above, below = _written_policies(step, story, engram)
    recommended = _recommendations(template)
    source: RetrySource
    if above is not None:
        source, written = above
        policy = dict(written)
        for field, value in recommended.items():
            if field != "maxRetries":
                policy.setdefault(field, value)
    elif below is not None:
        source, written = below
        policy = {**written, **recommended}
    else:
        source = "default"
        policy = dict(recommended)
        if step is not None and step.side_effects:
            policy["maxRetries"] = 0
    policy.setdefault("maxRetries", config.default_max_retries)
    policy.setdefault("delay", format_duration(timedelta(seconds=config.default_retry_delay)))
    policy.setdefault("backoff", config.default_backoff)
    return ResolvedRetry(policy=policy, source=source)


def resolve_retry_policy(
    step: Step | None,
    story: Story | None,
    template: Mapping[str, Any] | None,
    config: EngineConfig,
    engram: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The effective retry policy of a StepRun created for ``step`` (wire dict)."""
    return resolve_retry(step, story, template, config, engram).policy


def policy_is_explicit(step_run: Mapping[str, Any]) -> bool:
    """Whether the StepRun's ``spec.retry`` is a policy the user wrote.

    Read from the :data:`~bobrapet.api.runmeta.RETRY_POLICY_SOURCE` annotation; a StepRun
    without it (made by hand or by an older engine) is explicit when it has a ``spec.retry``.
    """
    source = _get(step_run, "metadata", "annotations", runmeta.RETRY_POLICY_SOURCE)
    if isinstance(source, str) and source:
        return source != runmeta.RETRY_POLICY_DEFAULT
    return isinstance(_get(step_run, "spec", "retry"), Mapping)


def may_retry(*, declared_class: str | None, exit_code: int, retryable: bool | None, explicit: bool) -> bool:
    """Whether a failed attempt may be retried (budget aside): the retry contract.

    ``declared_class`` is the exit class the engram itself reported (a StructuredError's
    ``exit_class``), ``None`` when it reported none; ``retryable`` is the StructuredError's
    ``retryable`` flag.
    """
    if retryable is False or declared_class == "terminal":
        return False
    if explicit:
        return True
    return is_retryable(declared_class or classify_exit(exit_code))


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
        base = DEFAULT_RETRY_DELAY_SECONDS
    n = max(attempt, 1)
    backoff = policy.get("backoff") or DEFAULT_BACKOFF
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
