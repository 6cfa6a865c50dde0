"""The delivery policy of an SDK caller's environment (reference §5.4)."""

from __future__ import annotations

import pytest

from bobrapet.triggers import DeliveryError, EnvPolicy, RetryPolicy, ThrottlePolicy, policy_from_env


def test_defaults() -> None:
    assert policy_from_env({}) == EnvPolicy("none", None, None, RetryPolicy(), 30.0)


def test_every_variable() -> None:
    env = {
        "BUBU_TRIGGER_DEDUPE_MODE": "KEY",
        "BUBU_TRIGGER_DEDUPE_KEY_TEMPLATE": "{{ inputs.id }}",
        "BUBU_TRIGGER_TOKEN": " t ",
        "BUBU_TRIGGER_RETRY_MAX_ATTEMPTS": "4",
        "BUBU_TRIGGER_RETRY_BASE_DELAY": "250ms",
        "BUBU_TRIGGER_RETRY_MAX_DELAY": "2s",
        "BUBU_TRIGGER_RETRY_BACKOFF": "linear",
        "BUBU_K8S_OPERATION_TIMEOUT": "1m",
        "BUBU_TRIGGER_THROTTLE_RATE_PER_SECOND": "2.5",
        "BUBU_TRIGGER_THROTTLE_BURST": "5",
        "BUBU_TRIGGER_THROTTLE_MAX_IN_FLIGHT": "3",
    }
    assert policy_from_env(env) == EnvPolicy(
        "key", "{{ inputs.id }}", "t", RetryPolicy(4, 0.25, 2.0, "linear"), 60.0, ThrottlePolicy(2.5, 5, 3)
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"BUBU_TRIGGER_DEDUPE_MODE": "sometimes"},
            "BUBU_TRIGGER_DEDUPE_MODE must be one of none, token, key",
        ),
        (
            {"BUBU_TRIGGER_RETRY_MAX_ATTEMPTS": "0"},
            "BUBU_TRIGGER_RETRY_MAX_ATTEMPTS must be a positive integer",
        ),
        (
            {"BUBU_TRIGGER_RETRY_MAX_ATTEMPTS": "x"},
            "BUBU_TRIGGER_RETRY_MAX_ATTEMPTS must be a positive integer",
        ),
        ({"BUBU_TRIGGER_RETRY_BASE_DELAY": "soon"}, "BUBU_TRIGGER_RETRY_"),
        ({"BUBU_TRIGGER_RETRY_BACKOFF": "random"}, "retry.backoff must be one of"),
        ({"BUBU_K8S_OPERATION_TIMEOUT": "0s"}, "BUBU_K8S_OPERATION_TIMEOUT must be a positive duration"),
        ({"BUBU_K8S_OPERATION_TIMEOUT": "x"}, "BUBU_K8S_OPERATION_TIMEOUT: invalid duration"),
        ({"BUBU_TRIGGER_THROTTLE_RATE_PER_SECOND": "-1"}, "RATE_PER_SECOND must be a non-negative number"),
        ({"BUBU_TRIGGER_THROTTLE_BURST": "1.5"}, "BURST must be a non-negative integer"),
        ({"BUBU_TRIGGER_THROTTLE_MAX_IN_FLIGHT": "many"}, "MAX_IN_FLIGHT must be a non-negative integer"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(DeliveryError, match=message):
        policy_from_env(env)
