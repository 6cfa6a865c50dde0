"""Gathering a step's Secrets from the store at launch (controllers/secrets.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bobrapet.api.types.story import Step
from bobrapet.controllers.secrets import gather_step_secrets
from bobrapet.engine.secrets import SecretProblem
from bobrapet.store.sqlite import SqliteClient

TEMPLATE: dict[str, Any] = {
    "metadata": {"name": "http"},
    "spec": {"secretSchema": {"api": {"mountType": "env", "envPrefix": "API_"}, "db": {"mountType": "file"}}},
}
ENGRAM: dict[str, Any] = {"metadata": {"name": "e"}, "spec": {"secrets": {"api": "engram-api", "db": "db"}}}


def _secret(name: str, ns: str = "default", **values: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "stringData": values,
    }


async def test_secrets_come_from_the_step_run_namespace_and_the_step_overrides(client: SqliteClient) -> None:
    await client.create(_secret("engram-api", token="from-engram"))
    await client.create(_secret("step-api", token="from-step"))
    await client.create(_secret("db", password="pw-default"))
    await client.create(_secret("db", ns="other", password="pw-other"))
    step = Step.model_validate({"name": "a", "ref": {"name": "e"}, "secrets": {"api": "step-api"}})
    out = await gather_step_secrets(client, "default", ENGRAM, TEMPLATE, step)
    assert out.wire() == {"api": {"token": "from-step"}, "db": {"password": "pw-default"}}
    assert out.env["API_token"] == "from-step" and out.env["BUBU_SECRET_api_NAME"] == "step-api"
    with pytest.raises(SecretProblem) as info:  # no engram-api in "other": secrets never cross namespaces
        await gather_step_secrets(client, "other", ENGRAM, TEMPLATE, None)
    assert "Secret 'other/engram-api'" in info.value.message


async def test_missing_secret_is_a_problem(client: SqliteClient) -> None:
    await client.create(_secret("db", password="pw"))
    with pytest.raises(SecretProblem) as info:
        await gather_step_secrets(client, "default", ENGRAM, TEMPLATE, None)
    assert info.value.reason == "ReferenceNotFound"


async def test_no_schema_and_no_bindings_is_empty(client: SqliteClient) -> None:
    assert not await gather_step_secrets(client, "default", {"spec": {}}, {"spec": {}}, None)
