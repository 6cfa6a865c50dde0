"""EngramTemplate / ImpulseTemplate controllers end to end over the SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.controllers.ctrl_objects import Settle, engram, engram_template, impulse, impulse_template, ready

from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import ENGRAM, ENGRAM_TEMPLATE, IMPULSE_TEMPLATE
from bobrapet.controllers.template_validation import ENGRAM_TEMPLATE_SCHEMAS, validate_template
from bobrapet.runtime.manager import Manager
from bobrapet.store.sqlite import SqliteClient

IMPULSE_FINALIZER = "impulsetemplate.catalog.bubustack.io/finalizer"


async def test_valid_engram_template(client: SqliteClient, settle: Settle) -> None:
    await client.create(engram_template("tpl"))
    await client.create(engram("a"))
    await client.create(engram("b", namespace="other"))
    await client.create(engram("c", template="elsewhere"))
    await settle()
    got = await client.get(ENGRAM_TEMPLATE, "tpl")
    status = got["status"]
    assert status["validationStatus"] == "valid"
    assert "validationErrors" not in status
    assert status["usageCount"] == 2
    assert status["observedGeneration"] == got["metadata"]["generation"]
    cond = ready(got)
    assert (cond["status"], cond["reason"]) == ("True", "ValidationPassed")
    assert cond["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert "finalizers" not in got["metadata"], "EngramTemplates have no finalizer"


@pytest.mark.parametrize("how", [{"entrypoint": "pkg.mod:run"}, {"command": ["python", "x.py"]}])
async def test_entrypoint_or_command_replaces_image(
    client: SqliteClient, settle: Settle, how: dict[str, object]
) -> None:
    await client.create(engram_template("tpl", image=None, **how))
    await settle()
    assert (await client.get(ENGRAM_TEMPLATE, "tpl"))["status"]["validationStatus"] == "valid"


async def test_invalid_engram_template_lists_every_problem(client: SqliteClient, settle: Settle) -> None:
    await client.create(
        engram_template(
            "bad",
            version=None,
            image=None,
            configSchema={"type": "nope"},
            outputSchema={"properties": {"x": {"minLength": -1}}},
            inputSchema={"type": "object"},
        )
    )
    await settle()
    got = await client.get(ENGRAM_TEMPLATE, "bad")
    errors = got["status"]["validationErrors"]
    assert got["status"]["validationStatus"] == "invalid"
    assert errors[0] == "version is required"
    assert errors[1] == "image, entrypoint or command is required"
    assert errors[2].startswith("invalid schema(s): configSchema: ")
    assert "; outputSchema: " in errors[2]
    assert "inputSchema" not in errors[2]
    cond = ready(got)
    assert (cond["status"], cond["reason"]) == ("False", "ValidationFailed")
    assert cond["message"] == "; ".join(errors)


async def test_template_fixed_by_user_becomes_valid(client: SqliteClient, settle: Settle) -> None:
    await client.create(engram_template("tpl", version=None))
    await settle()
    got = await client.get(ENGRAM_TEMPLATE, "tpl")
    assert got["status"]["validationStatus"] == "invalid"
    got["spec"]["version"] = "2.0.0"
    await client.update(got)
    await settle()
    got = await client.get(ENGRAM_TEMPLATE, "tpl")
    assert got["status"]["validationStatus"] == "valid"
    assert "validationErrors" not in got["status"]
    assert got["status"]["observedGeneration"] == 2
    assert ready(got)["reason"] == "ValidationPassed"


def test_draft3_required_true_is_lifted_before_compiling() -> None:
    spec = {
        "version": "1",
        "image": "x",
        "configSchema": {"type": "object", "properties": {"url": {"type": "string", "required": True}}},
    }
    assert validate_template(spec, schema_fields=ENGRAM_TEMPLATE_SCHEMAS) == []


def _compat_templates(compat_dir: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted((compat_dir / "templates").glob("*/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in ("EngramTemplate", "ImpulseTemplate"):
                found.append(doc)
    return found


async def test_original_catalog_templates_are_valid(
    client: SqliteClient, settle: Settle, compat_dir: Path
) -> None:
    templates = _compat_templates(compat_dir)
    assert len(templates) >= 17
    for template in templates:
        await client.create(template)
    await settle()
    for template in templates:
        kind = ENGRAM_TEMPLATE if template["kind"] == "EngramTemplate" else IMPULSE_TEMPLATE
        got = await client.get(kind, template["metadata"]["name"])
        assert got["status"]["validationStatus"] == "valid", (got["metadata"]["name"], got["status"])


async def test_impulse_template_modes_usage_and_finalizer(client: SqliteClient, settle: Settle) -> None:
    await client.create(impulse_template("itpl"))
    await client.create(impulse_template("jobby", supportedModes=["job", "deployment"]))
    await client.create(impulse("i1", "story"))
    await settle()
    good = await client.get(IMPULSE_TEMPLATE, "itpl")
    assert good["status"]["validationStatus"] == "valid"
    assert good["status"]["usageCount"] == 1
    assert IMPULSE_FINALIZER in good["metadata"]["finalizers"]
    bad = await client.get(IMPULSE_TEMPLATE, "jobby")
    assert bad["status"]["validationStatus"] == "invalid"
    assert bad["status"]["validationErrors"] == [
        "supportedModes: 'job' not supported (allowed: deployment, statefulset)"
    ]
    assert ready(bad)["reason"] == "ValidationFailed"

    await client.delete(IMPULSE_TEMPLATE, "itpl")
    assert (await client.get(IMPULSE_TEMPLATE, "itpl"))["metadata"].get("deletionTimestamp")
    await settle()
    with pytest.raises(NotFound):
        await client.get(IMPULSE_TEMPLATE, "itpl")


async def test_impulse_template_schemas_include_context_schema(client: SqliteClient, settle: Settle) -> None:
    await client.create(impulse_template("itpl", contextSchema={"type": 5}))
    await settle()
    got = await client.get(IMPULSE_TEMPLATE, "itpl")
    assert got["status"]["validationErrors"][0].startswith("invalid schema(s): contextSchema: ")


async def test_usage_count_follows_instances(client: SqliteClient, running: Manager) -> None:
    await client.create(engram_template("tpl"))
    await client.create(engram_template("other"))
    await client.create(engram("a"))
    assert await running.wait_idle(timeout=20)
    assert (await client.get(ENGRAM_TEMPLATE, "tpl"))["status"]["usageCount"] == 1
    moved = await client.get(ENGRAM, "a", "default")
    moved["spec"]["templateRef"] = {"name": "other"}
    await client.update(moved)
    assert await running.wait_idle(timeout=20)
    assert (await client.get(ENGRAM_TEMPLATE, "tpl"))["status"]["usageCount"] == 0
    assert (await client.get(ENGRAM_TEMPLATE, "other"))["status"]["usageCount"] == 1
