"""apply / get / describe / delete through the CLI on the embedded control plane."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli
from tests.conftest import EXAMPLES

STORY = """\
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata:
  name: tiny
spec:
  steps:
    - name: pause
      type: sleep
      with: {duration: 1s}
"""


def test_apply_examples_then_stories_are_valid(cli: Cli) -> None:
    refused = cli("apply", "-f", str(EXAMPLES / "webhook.yaml"))
    assert refused.code == 1 and "install it with `bobrapet catalog install`" in refused.err, refused.err
    assert cli("catalog", "install").code == 0  # examples/webhook.yaml uses the built-in `webhook`
    result = cli("apply", "-f", str(EXAMPLES))
    assert result.code == 0, result.err
    assert "story/hello created" in result.out
    assert "engramtemplate/greet created" in result.out
    listing = cli("get", "stories", "-o", "json")
    assert listing.code == 0, listing.err
    items = json.loads(listing.out)["items"]
    names = {i["metadata"]["name"]: i for i in items}
    assert {"hello", "fan-out-fan-in", "gated-workflow", "compensations-and-finally", "parent"} <= set(names)
    for item in items:
        assert item["status"]["validationStatus"] == "valid", item["status"]
    table = cli("get", "stories")
    assert "hello" in table.out and "valid" in table.out


def test_reapply_is_unchanged_and_change_is_configured(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(STORY)
    assert "story/tiny created" in cli("apply", "-f", str(path)).out
    assert "story/tiny unchanged" in cli("apply", "-f", str(path)).out
    path.write_text(STORY.replace("1s", "2s"))
    again = cli("apply", "-f", str(path))
    assert "story/tiny configured" in again.out
    obj = json.loads(cli("get", "story", "tiny", "-o", "json").out)
    assert obj["spec"]["steps"][0]["with"]["duration"] == "2s"
    assert obj["metadata"]["generation"] == 2


def test_apply_from_stdin(cli: Cli) -> None:
    result = cli("apply", "-f", "-", stdin=STORY)
    assert result.code == 0, result.err
    assert "story/tiny created" in result.out


def test_kind_aliases(cli: Cli) -> None:
    cli("apply", "-f", "-", stdin=STORY)
    for alias in ("stories", "story", "Story", "stories.bubustack.io"):
        result = cli("get", alias, "tiny", "-o", "name")
        assert result.code == 0, (alias, result.err)
        assert result.out.strip() == "story/tiny"
    assert cli("get", "srun").code == 0
    assert cli("get", "storyruns.runs.bubustack.io").code == 0


def test_unknown_kind_is_usage_error_with_suggestion(cli: Cli) -> None:
    result = cli("get", "storys")
    assert result.code == 2
    assert 'did you mean "story"' in result.err


def test_get_missing_is_not_found(cli: Cli) -> None:
    result = cli("get", "story", "nope")
    assert result.code == 1
    assert 'stories.bubustack.io "nope" not found' in result.err


def test_output_formats(cli: Cli) -> None:
    cli("apply", "-f", "-", stdin=STORY)
    as_yaml = cli("get", "story", "tiny", "-o", "yaml")
    assert "kind: Story" in as_yaml.out
    wide = cli("get", "stories", "-o", "wide")
    assert "STEPS" in wide.out
    bad = cli("get", "stories", "-o", "xml")
    assert bad.code == 2


def test_describe(cli: Cli) -> None:
    cli("apply", "-f", "-", stdin=STORY)
    result = cli("describe", "story", "tiny")
    assert result.code == 0, result.err
    assert "Name:         tiny" in result.out
    assert "Conditions:" in result.out
    assert "Ready" in result.out


def test_delete_by_name_and_by_file(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(STORY)
    cli("apply", "-f", str(path))
    result = cli("delete", "story", "tiny")
    assert result.code == 0, result.err
    assert "story/tiny deleted" in result.out
    assert cli("get", "story", "tiny").code == 1
    cli("apply", "-f", str(path))
    assert cli("delete", "-f", str(path)).code == 0
    assert cli("get", "story", "tiny").code == 1
    missing = cli("delete", "story", "tiny")
    assert missing.code == 1
    assert cli("delete", "story", "tiny", "--ignore-not-found").code == 0


def test_api_resources(cli: Cli) -> None:
    result = cli("api-resources")
    assert "storyruns" in result.out and "srun" in result.out


def test_removing_a_label_from_the_manifest_removes_it_and_keeps_foreign_ones(
    cli: Cli, tmp_path: Path
) -> None:
    import asyncio

    from bobrapet.api.kinds import STORY as STORY_KIND
    from bobrapet.store.sqlite import SqliteClient

    path = tmp_path / "tiny.yaml"
    labelled = STORY.replace("  name: tiny\n", "  name: tiny\n  labels: {team: data, tier: gold}\n")
    path.write_text(labelled)
    assert cli("apply", "-f", str(path)).code == 0

    async def add_foreign_label() -> None:
        client = SqliteClient(tmp_path / "home" / "state.db")
        try:
            obj = await client.get(STORY_KIND, "tiny", "default")
            obj["metadata"]["labels"]["owner"] = "someone-else"
            await client.update(obj)
        finally:
            client.close()

    asyncio.run(add_foreign_label())
    path.write_text(labelled.replace(", tier: gold", ""))
    assert "story/tiny configured" in cli("apply", "-f", str(path)).out
    labels = json.loads(cli("get", "story", "tiny", "-o", "json").out)["metadata"]["labels"]
    assert labels == {"team": "data", "owner": "someone-else"}
    assert "story/tiny unchanged" in cli("apply", "-f", str(path)).out
