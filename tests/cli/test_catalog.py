"""The built-in ImpulseTemplates: their manifests, ``catalog install``/``catalog list``, and each
template's configSchema as Impulse admission applies it (a good and a bad ``with``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.cli.conftest import Cli

from bobrapet.api.builtin_catalog import BUILTIN_LABEL, builtin_documents, builtin_names
from bobrapet.api.errors import Invalid
from bobrapet.api.jsonschema_util import apply_defaults, compile_schema, validate
from bobrapet.api.types.catalog import ImpulseTemplate
from bobrapet.host.embedded import ControlPlane

RUNTIMES = {
    "webhook": "bobrapet.impulses.webhook:WebhookImpulse",
    "github": "bobrapet.impulses.github:GitHubImpulse",
    "cron": "bobrapet.impulses.cron:CronImpulse",
    "nats": "bobrapet.impulses.nats:NatsImpulse",
    "redis-stream": "bobrapet.impulses.redis_stream:RedisStreamImpulse",
    "amqp": "bobrapet.impulses.amqp:AmqpImpulse",
}

#: Per template: a ``with`` it accepts, and one it rejects with the field the error names.
CONFIGS: dict[str, tuple[dict[str, Any] | None, dict[str, Any], str]] = {
    "webhook": (None, {"maxBodyBytes": 0}, "spec.with.maxBodyBytes"),
    "github": (
        {"events": ["push", "pull_request"], "actions": ["opened"]},
        {"events": "push"},
        "spec.with.events",
    ),
    "cron": (
        {
            "schedule": "*/5 * * * *",
            "timeZone": "Europe/Paris",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 300,
            "maxCatchUp": 3,
        },
        {"schedule": "every five minutes"},
        "spec.with.schedule",
    ),
    "nats": ({"subject": "orders.created", "stream": "ORDERS", "durable": "bobrapet"}, {}, "subject"),
    "redis-stream": ({"stream": "orders", "group": "workers"}, {"stream": "orders", "port": 1}, "port"),
    "amqp": (
        {"queue": "orders", "url": "amqp://guest:guest@127.0.0.1:5672/"},
        {"queue": ""},
        "spec.with.queue",
    ),
}


def by_name() -> dict[str, dict[str, Any]]:
    return {str(d.obj["metadata"]["name"]): d.obj for d in builtin_documents()}


def test_the_built_in_templates_are_the_six_impulse_kinds() -> None:
    templates = by_name()
    assert sorted(templates) == sorted(RUNTIMES) == builtin_names()
    for name, template in templates.items():
        ImpulseTemplate.model_validate(template)
        assert template["metadata"]["labels"][BUILTIN_LABEL] == "true"
        spec = template["spec"]
        assert spec["entrypoint"] == RUNTIMES[name]
        assert spec["supportedModes"] == ["deployment"]
        for key in ("configSchema", "contextSchema"):
            assert compile_schema(spec[key]) == [], (name, key)
        # the defaults a runtime fills in are valid values of the schema
        filled = apply_defaults(CONFIGS[name][0] or {}, spec["configSchema"])
        assert validate(filled, spec["configSchema"]) == [], name


def test_defaults_named_by_the_issue() -> None:
    templates = by_name()

    def prop(name: str, key: str) -> dict[str, Any]:
        result: dict[str, Any] = templates[name]["spec"]["configSchema"]["properties"][key]
        return result

    assert prop("nats", "url")["default"] == "nats://127.0.0.1:4222"
    assert prop("redis-stream", "url")["default"] == "redis://127.0.0.1:6379/0"
    assert prop("amqp", "url")["default"] == "amqp://guest:guest@127.0.0.1:5672/"
    assert prop("cron", "timeZone")["default"] == "UTC"
    policy = prop("cron", "concurrencyPolicy")
    assert (policy["enum"], policy["default"]) == (["Allow", "Forbid", "Replace"], "Allow")
    assert templates["cron"]["spec"]["configSchema"]["required"] == ["schedule"]
    assert "required" not in templates["webhook"]["spec"]["configSchema"]
    for name in ("webhook", "github"):
        assert templates[name]["spec"]["secretSchema"]["signing"]["expectedKeys"] == ["key"]


def test_install_is_idempotent_and_list_shows_what_is_installed(cli: Cli, tmp_path: Path) -> None:
    empty = cli("catalog", "list")
    assert empty.code == 0 and "No templates installed." in empty.err and "catalog install" in empty.err
    assert not (tmp_path / "home").exists()  # listing never creates a home

    first = cli("catalog", "install")
    assert first.code == 0, first.err
    assert first.out.splitlines() == [f"impulsetemplate/{n} created" for n in sorted(RUNTIMES)]
    again = cli("catalog", "install")
    assert again.code == 0, again.err
    assert again.out.splitlines() == [f"impulsetemplate/{n} unchanged" for n in sorted(RUNTIMES)]

    assert cli("apply", "-f", "examples/catalog.yaml").code == 0
    listed = cli("catalog", "list")
    assert listed.code == 0 and "not installed" not in listed.err
    rows = [line.split() for line in listed.out.splitlines()]
    assert rows[0] == ["KIND", "NAME", "VERSION", "BUILT-IN", "STATUS", "USAGE"]
    assert ["EngramTemplate", "greet", "1.0.0", "no", "valid", "0"] in rows
    assert ["ImpulseTemplate", "cron", "0.1.0", "yes", "valid", "0"] in rows
    assert len(rows) == 1 + len(RUNTIMES) + 6  # the examples ship six EngramTemplates
    names = cli("catalog", "list", "-o", "name").out.splitlines()
    assert "impulsetemplate/webhook" in names and "engramtemplate/greet" in names


def test_install_restores_a_changed_built_in_and_installs_by_name(cli: Cli) -> None:
    assert cli("catalog", "install", "cron").out == "impulsetemplate/cron created\n"
    listed = cli("catalog", "list")
    assert "built-in templates not installed: amqp, github, nats, redis-stream, webhook" in listed.err
    changed = cli("get", "impulsetemplate", "cron", "-o", "yaml").out.replace(
        "version: 0.1.0", "version: 9.9.9"
    )
    assert cli("apply", "-f", "-", stdin=changed).code == 0
    assert cli("catalog", "install", "cron").out == "impulsetemplate/cron configured\n"
    assert "0.1.0" in cli("get", "impulsetemplate", "cron").out


def test_install_rejects_unknown_names_and_dry_run_stores_nothing(cli: Cli, tmp_path: Path) -> None:
    unknown = cli("catalog", "install", "kafka")
    assert (
        unknown.code == 2 and "no built-in template named kafka" in unknown.err and "webhook" in unknown.err
    )
    dry = cli("catalog", "install", "--dry-run")
    assert dry.code == 0 and "impulsetemplate/webhook created (dry run)" in dry.out
    assert cli("get", "impulsetemplates", "-o", "name").out == ""
    bad = cli("catalog", "list", "-o", "wide")
    assert bad.code == 2 and "unknown output format" in bad.err


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(tmp_path / "home") as opened:
        for doc in builtin_documents():
            await opened.client.create(doc.obj)
        yield opened


def impulse(template: str, config: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"templateRef": {"name": template}, "storyRef": {"name": "some-story"}}
    if config is not None:
        spec["with"] = config
    return {"apiVersion": "bubustack.io/v1alpha1", "kind": "Impulse", "metadata": {"name": "i"}, "spec": spec}


@pytest.mark.parametrize("template", sorted(CONFIGS))
async def test_impulse_admission_checks_with_against_the_template(plane: ControlPlane, template: str) -> None:
    good, bad, field = CONFIGS[template]
    await plane.client.create(impulse(template, good), dry_run=True)
    with pytest.raises(Invalid) as rejected:
        await plane.client.create(impulse(template, bad), dry_run=True)
    causes = rejected.value.causes
    assert any(field in c.field or field in c.message for c in causes), causes
    assert all("configSchema" in c.message for c in causes), causes


async def test_impulses_bind_only_the_signing_secret(plane: ControlPlane) -> None:
    bound = impulse("webhook", None)
    bound["spec"]["secrets"] = {"signing": "hook-key"}
    warnings: list[str] = []
    await plane.client.create(bound, dry_run=True, warnings=warnings)
    assert any("hook-key" in w and "does not exist" in w for w in warnings)
    bound["spec"]["secrets"] = {"token": "hook-key"}
    with pytest.raises(Invalid, match="secret 'token' is not declared by the template"):
        await plane.client.create(bound, dry_run=True)
