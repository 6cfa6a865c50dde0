"""``spec.with`` of the built-in impulses: defaults, and errors naming the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from tests.impulses.support import MemoryState

from bobrapet.impulses.amqp import AmqpImpulse
from bobrapet.impulses.config import ImpulseConfigError, display_url
from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.cron import CronImpulse
from bobrapet.impulses.nats import NatsImpulse
from bobrapet.impulses.redis_stream import RedisStreamImpulse

CONTEXT = ImpulseContext("team-a", "orders", state=MemoryState())


def error_of(factory: Any, config: Any) -> str:
    with pytest.raises(ImpulseConfigError) as info:
        factory(config, CONTEXT)
    return str(info.value)


def test_defaults() -> None:
    nats = NatsImpulse({"stream": "ORDERS", "subject": "orders.>"}, CONTEXT)
    assert (nats.config.url, nats.durable, nats.config.ack_wait_seconds) == (
        "nats://127.0.0.1:4222",
        "bobrapet_team-a_orders",
        30,
    )
    redis = RedisStreamImpulse({"stream": "orders"}, CONTEXT)
    assert (redis.config.url, redis.group, redis.consumer) == (
        "redis://127.0.0.1:6379/0",
        "bobrapet.team-a.orders",
        "team-a.orders",
    )
    amqp = AmqpImpulse({"queue": "orders"}, CONTEXT)
    assert amqp.config.url == "amqp://guest:guest@127.0.0.1:5672/"
    cron = CronImpulse({"schedule": "@daily"}, CONTEXT)
    assert (cron.config.time_zone, cron.config.concurrency_policy, cron.config.max_catch_up) == (
        "UTC",
        "Allow",
        1,
    )


@pytest.mark.parametrize(
    ("factory", "config", "expected"),
    [
        (NatsImpulse, None, "nats impulse: invalid spec.with: spec.with.stream: required field is missing"),
        (
            NatsImpulse,
            {"stream": "a.b", "subject": "x"},
            "spec.with.stream: must be a JetStream name without spaces",
        ),
        (NatsImpulse, {"stream": "S", "subject": "a b"}, "spec.with.subject: must be a NATS subject"),
        (
            NatsImpulse,
            {"stream": "S", "subject": "x", "url": "http://h"},
            "spec.with.url: must be a URL starting",
        ),
        (
            NatsImpulse,
            {"stream": "S", "subject": "x", "ackWaitSeconds": 0},
            "ackWaitSeconds: must be greater",
        ),
        (
            NatsImpulse,
            {"stream": "S", "subject": "x", "startFrom": "old"},
            "spec.with.startFrom: must be one of",
        ),
        (RedisStreamImpulse, {"stream": "s", "gruop": "g"}, 'unknown field "gruop"; did you mean "group"?'),
        (RedisStreamImpulse, {"stream": 5}, "spec.with.stream: must be a string, got integer (5)"),
        (AmqpImpulse, {}, "spec.with.queue: required field is missing"),
        (AmqpImpulse, {"queue": "q", "url": "amqp://u:secret@"}, "spec.with.url: must name a host"),
        (CronImpulse, {"schedule": "every day"}, "spec.with.schedule: must have 5 fields"),
        (CronImpulse, {"schedule": "@daily", "timeZone": "Berlin"}, "spec.with.timeZone: unknown time zone"),
        (CronImpulse, {"schedule": "@daily", "concurrencyPolicy": "forbid"}, 'did you mean "Forbid"?'),
        (CronImpulse, {"schedule": "@daily", "startingDeadlineSeconds": "60"}, "must be an integer"),
        (CronImpulse, {"schedule": "@daily", "maxCatchUp": 0}, "spec.with.maxCatchUp: must be greater"),
    ],
)
def test_errors_name_the_field(factory: Any, config: Any, expected: str) -> None:
    assert expected in error_of(factory, config)


def test_every_problem_is_reported_at_once_and_passwords_are_not() -> None:
    message = error_of(AmqpImpulse, {"url": "http://guest:hunter2@h/", "extra": 1})
    assert "spec.with.url" in message and "spec.with.queue" in message and 'unknown field "extra"' in message
    assert "hunter2" not in message


def test_display_url_hides_the_password() -> None:
    assert display_url("amqp://guest:guest@127.0.0.1:5672/") == "amqp://guest:***@127.0.0.1:5672/"
    assert display_url("redis://:pw@[::1]:6379/0") == "redis://:***@[::1]:6379/0"
    assert display_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
