"""`bobrapet explain` and `bobrapet crds` through the CLI."""

from __future__ import annotations

import yaml
from tests.cli.conftest import Cli


def test_explain_kind(cli: Cli) -> None:
    result = cli("explain", "story")
    assert result.code == 0, result.err
    assert "Story" in result.out
    assert "spec" in result.out


def test_explain_field_path(cli: Cli) -> None:
    result = cli("explain", "story.spec.steps")
    assert result.code == 0, result.err
    assert "needs" in result.out
    assert "ref" in result.out


def test_explain_qualified_kind(cli: Cli) -> None:
    result = cli("explain", "storyruns.runs.bubustack.io.spec")
    assert result.code == 0, result.err
    assert "storyRef" in result.out


def test_explain_unknown_field_suggests(cli: Cli) -> None:
    result = cli("explain", "story.spec.stpes")
    assert result.code == 2
    assert "steps" in result.err


def test_crds_prints_every_kind(cli: Cli) -> None:
    result = cli("crds")
    assert result.code == 0, result.err
    docs = [d for d in yaml.safe_load_all(result.out) if d]
    names = {d["metadata"]["name"] for d in docs}
    assert len(docs) == 12
    assert "stories.bubustack.io" in names
    assert "storyruns.runs.bubustack.io" in names
    assert all(d["kind"] == "CustomResourceDefinition" for d in docs)
