"""Each built-in ImpulseTemplate's configSchema names exactly its runtime's config fields, with
the same defaults and required fields, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bobrapet.api.builtin_catalog import builtin_documents
from bobrapet.api.types.base import WireModel
from bobrapet.impulses.amqp import AmqpConfig
from bobrapet.impulses.cron import CronConfig
from bobrapet.impulses.github import GitHubConfig
from bobrapet.impulses.nats import NatsConfig
from bobrapet.impulses.redis_stream import RedisStreamConfig
from bobrapet.impulses.supervisor import load_entrypoint
from bobrapet.impulses.webhook import WebhookConfig

CONFIGS: dict[str, type[WireModel]] = {
    "webhook": WebhookConfig,
    "github": GitHubConfig,
    "cron": CronConfig,
    "nats": NatsConfig,
    "redis-stream": RedisStreamConfig,
    "amqp": AmqpConfig,
}


def templates() -> dict[str, dict[str, Any]]:
    return {str(d.obj["metadata"]["name"]): d.obj for d in builtin_documents()}


def wire_name(name: str, info: FieldInfo) -> str:
    return info.alias or name


def test_every_built_in_template_has_a_config_model() -> None:
    assert sorted(templates()) == sorted(CONFIGS)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_schema_matches_the_runtime_model(name: str) -> None:
    template = templates()[name]
    schema = template["spec"]["configSchema"]
    model = CONFIGS[name]
    fields = {wire_name(n, info): info for n, info in model.model_fields.items()}
    assert sorted(schema["properties"]) == sorted(fields), "property names"
    for prop, info in fields.items():
        declared = schema["properties"][prop].get("default")
        default = None if info.default is PydanticUndefined else info.default
        assert declared == default, f"{name}: default of {prop}"
    required = sorted(p for p, info in fields.items() if info.is_required())
    assert sorted(schema.get("required", [])) == required, f"{name}: required fields"
    assert schema.get("additionalProperties") is False


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_entrypoint_is_the_runtime_of_that_config(name: str) -> None:
    runtime = load_entrypoint(templates()[name]["spec"]["entrypoint"])
    assert runtime.__module__ == CONFIGS[name].__module__
