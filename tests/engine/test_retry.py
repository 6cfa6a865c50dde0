"""Retry policy resolution (§2.7) and delay maths (§4.4 step 9)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bobrapet.api.types.story import Step, Story
from bobrapet.engine.config import EngineConfig
from bobrapet.engine.retry import MIN_DELAY, resolve_retry_policy, retry_delay

CONFIG = EngineConfig()


def _step(retry: dict[str, Any] | None = None, **extra: Any) -> Step:
    data: dict[str, Any] = {"name": "s", "ref": {"name": "e"}, **extra}
    if retry is not None:
        data["execution"] = {"retry": retry}
    return Step.model_validate(data)


def _story(retry: dict[str, Any] | None = None) -> Story:
    spec: dict[str, Any] = {"steps": [{"name": "s", "ref": {"name": "e"}}]}
    if retry is not None:
        spec["policy"] = {"retries": {"stepRetryPolicy": retry}}
    return Story.model_validate({"metadata": {"name": "st", "namespace": "ns"}, "spec": spec})


def _template(**retry: Any) -> dict[str, Any]:
    return {"metadata": {"name": "t"}, "spec": {"supportedModes": ["job"], "execution": {"retry": retry}}}


DEFAULT = {"maxRetries": 3, "delay": "1s", "backoff": "exponential"}


@pytest.mark.parametrize(
    ("step", "story", "template", "expected"),
    [
        pytest.param(None, None, None, DEFAULT, id="nothing"),
        pytest.param(_step(), _story(), None, DEFAULT, id="no-policy"),
        pytest.param(
            _step({"maxRetries": 5, "delay": "2s", "backoff": "linear", "maxDelay": "10s", "jitter": 20}),
            None,
            None,
            {"maxRetries": 5, "delay": "2s", "backoff": "linear", "maxDelay": "10s", "jitter": 20},
            id="step-full",
        ),
        pytest.param(
            _step({"maxRetries": 1}),
            _story({"maxRetries": 7, "delay": "9s"}),
            None,
            {"maxRetries": 1, "delay": "1s", "backoff": "exponential"},
            id="step-wins-over-story",
        ),
        pytest.param(
            _step(),
            _story({"maxRetries": 7, "backoff": "constant"}),
            None,
            {"maxRetries": 7, "delay": "1s", "backoff": "constant"},
            id="story-policy",
        ),
        pytest.param(
            _step({"maxRetries": 2}),
            None,
            _template(
                recommendedBaseDelay="3s",
                recommendedMaxDelay="1m",
                recommendedBackoff="linear",
                recommendedMaxRetries=9,
            ),
            {"maxRetries": 2, "delay": "3s", "maxDelay": "1m", "backoff": "linear"},
            id="template-fills-unset-not-maxRetries",
        ),
        pytest.param(
            _step({"delay": "5s"}),
            None,
            _template(recommendedBaseDelay="3s"),
            {"maxRetries": 3, "delay": "5s", "backoff": "exponential"},
            id="explicit-delay-kept",
        ),
        pytest.param(
            _step(),
            None,
            _template(recommendedMaxRetries=6),
            {"maxRetries": 6, "delay": "1s", "backoff": "exponential"},
            id="template-maxRetries-when-no-policy",
        ),
        pytest.param(
            _step(sideEffects=True),
            None,
            _template(recommendedMaxRetries=6),
            {"maxRetries": 0, "delay": "1s", "backoff": "exponential"},
            id="side-effects-no-policy",
        ),
        pytest.param(
            _step({"maxRetries": 4}, sideEffects=True),
            None,
            None,
            {"maxRetries": 4, "delay": "1s", "backoff": "exponential"},
            id="side-effects-explicit-step",
        ),
        pytest.param(
            _step(sideEffects=True),
            _story({"maxRetries": 2}),
            None,
            {"maxRetries": 2, "delay": "1s", "backoff": "exponential"},
            id="side-effects-explicit-story",
        ),
        pytest.param(None, None, {"spec": "garbage"}, DEFAULT, id="malformed-template"),
    ],
)
def test_resolve_retry_policy(
    step: Step | None, story: Story | None, template: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    assert resolve_retry_policy(step, story, template, CONFIG) == expected


def test_resolve_uses_config_defaults() -> None:
    config = EngineConfig(default_max_retries=5, default_retry_delay=0.5, default_backoff="constant")
    assert resolve_retry_policy(None, None, None, config) == {
        "maxRetries": 5,
        "delay": "500ms",
        "backoff": "constant",
    }


@pytest.mark.parametrize(
    ("policy", "attempt", "jitter", "expected"),
    [
        ({"delay": "1s", "backoff": "exponential"}, 1, 0.0, 1.0),
        ({"delay": "1s", "backoff": "exponential"}, 2, 0.0, 2.0),
        ({"delay": "1s", "backoff": "exponential"}, 4, 0.0, 8.0),
        ({"delay": "1s"}, 3, 0.0, 4.0),  # missing backoff = exponential
        ({"delay": "2s", "backoff": "linear"}, 3, 0.0, 6.0),
        ({"delay": "2s", "backoff": "constant"}, 5, 0.0, 2.0),
        ({"delay": "1s", "backoff": "exponential", "maxDelay": "5s"}, 10, 0.0, 5.0),
        ({"delay": "1s", "backoff": "exponential", "maxDelay": "1ms"}, 3, 0.0, MIN_DELAY),
        ({"delay": "0s"}, 1, 0.0, MIN_DELAY),
        ({"delay": "1ms"}, 1, 0.0, MIN_DELAY),
        ({}, 1, 0.0, 1.0),
        ({"delay": "bogus"}, 2, 0.0, 2.0),
        ({"delay": "1s"}, 0, 0.0, 1.0),  # attempt < 1 treated as 1
        ({"delay": "1s", "jitter": 50}, 1, 0.5, 1.25),
        ({"delay": "1s", "jitter": 50}, 1, 0.0, 1.0),
        ({"delay": "1s", "jitter": 100, "maxDelay": "1500ms"}, 1, 0.9, 1.5),
        ({"delay": "1s", "jitter": 0}, 1, 0.9, 1.0),
        ({"delay": "1s", "jitter": 20}, 1, 5.0, 1.2),  # fraction clamped to 1
        ({"delay": "1s", "backoff": "exponential"}, 500, 0.0, 2.0**62),
    ],
)
def test_retry_delay(policy: dict[str, Any], attempt: int, jitter: float, expected: float) -> None:
    assert retry_delay(policy, attempt, jitter) == pytest.approx(expected)


durations = st.sampled_from(["0s", "1ms", "5ms", "10ms", "100ms", "1s", "2.5s", "30s", "1m", "1h"])
policies = st.fixed_dictionaries(
    {"delay": durations, "backoff": st.sampled_from(["exponential", "linear", "constant"])},
    optional={"maxDelay": durations, "jitter": st.integers(0, 100)},
)


@settings(max_examples=300, deadline=None)
@given(policies, st.integers(1, 40), st.floats(0.0, 0.999999))
def test_retry_delay_bounds(policy: dict[str, Any], attempt: int, fraction: float) -> None:
    delay = retry_delay(policy, attempt, fraction)
    assert delay >= MIN_DELAY
    if "maxDelay" in policy:
        cap = max(retry_delay({"delay": policy["maxDelay"], "backoff": "constant"}, 1, 0.0), MIN_DELAY)
        assert delay <= cap + 1e-9


@settings(max_examples=300, deadline=None)
@given(policies, st.integers(1, 40))
def test_retry_delay_monotone_without_jitter(policy: dict[str, Any], attempt: int) -> None:
    policy = {k: v for k, v in policy.items() if k != "jitter"}
    assert retry_delay(policy, attempt, 0.0) <= retry_delay(policy, attempt + 1, 0.0)
