"""The delivery policy of an Impulse: template then Impulse, field by field, and its env."""

from __future__ import annotations

import pytest

from bobrapet.impulses.policy import ImpulsePolicy, merge_delivery_policy
from bobrapet.triggers import DeliveryError, RetryPolicy, ThrottlePolicy

TEMPLATE = {
    "deliveryPolicy": {
        "dedupe": {"mode": "token"},
        "retry": {"maxAttempts": 3, "baseDelay": "1s", "maxDelay": "30s", "backoff": "exponential"},
    }
}


def test_the_impulse_overrides_the_template_field_by_field() -> None:
    impulse = {
        "deliveryPolicy": {
            "dedupe": {"mode": "key", "keyTemplate": "{{ inputs.id }}"},
            "retry": {"maxDelay": "5s"},
        }
    }
    assert merge_delivery_policy(TEMPLATE["deliveryPolicy"], impulse["deliveryPolicy"]) == {
        "dedupe": {"mode": "key", "keyTemplate": "{{ inputs.id }}"},
        "retry": {"maxAttempts": 3, "baseDelay": "1s", "maxDelay": "5s", "backoff": "exponential"},
    }
    policy = ImpulsePolicy.from_specs(
        TEMPLATE, {**impulse, "throttle": {"ratePerSecond": 5, "maxInFlight": 2}}
    )
    assert (policy.mode, policy.key_template) == ("key", "{{ inputs.id }}")
    assert policy.retry == RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=5.0, backoff="exponential")
    assert policy.throttle == ThrottlePolicy(rate_per_second=5, burst=0, max_in_flight=2)


def test_without_policies_nothing_is_deduplicated_or_retried() -> None:
    policy = ImpulsePolicy.from_specs({}, {})
    assert (policy.mode, policy.key_template, policy.retry.max_attempts) == ("none", None, 1)
    assert policy.env() == {"BUBU_TRIGGER_DEDUPE_MODE": "none"}


def test_a_key_template_is_kept_only_in_key_mode() -> None:
    template = {"deliveryPolicy": {"dedupe": {"mode": "key", "keyTemplate": "{{ inputs.a }}"}}}
    assert (
        ImpulsePolicy.from_specs(template, {"deliveryPolicy": {"dedupe": {"mode": "token"}}}).key_template
        is None
    )


def test_key_mode_without_a_template_is_refused_with_the_fix() -> None:
    with pytest.raises(DeliveryError, match=r"deliveryPolicy\.dedupe\.keyTemplate"):
        ImpulsePolicy.from_specs({}, {"deliveryPolicy": {"dedupe": {"mode": "key"}}})


def test_env_names_every_merged_value() -> None:
    policy = ImpulsePolicy.from_specs(
        TEMPLATE, {"throttle": {"ratePerSecond": 10, "burst": 20, "maxInFlight": 4}}
    )
    assert policy.env() == {
        "BUBU_TRIGGER_DEDUPE_MODE": "token",
        "BUBU_TRIGGER_RETRY_MAX_ATTEMPTS": "3",
        "BUBU_TRIGGER_RETRY_BASE_DELAY": "1s",
        "BUBU_TRIGGER_RETRY_MAX_DELAY": "30s",
        "BUBU_TRIGGER_RETRY_BACKOFF": "exponential",
        "BUBU_TRIGGER_THROTTLE_RATE_PER_SECOND": "10",
        "BUBU_TRIGGER_THROTTLE_BURST": "20",
        "BUBU_TRIGGER_THROTTLE_MAX_IN_FLIGHT": "4",
    }
