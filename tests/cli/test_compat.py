"""The original project's own manifests (../shared/compat) through `bobrapet validate`."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli.conftest import Cli
from tests.conftest import COMPAT

TEMPLATES = sorted([*COMPAT.glob("templates/*/Engram.yaml"), *COMPAT.glob("templates/*/Impulse.yaml")])
GO_TEMPLATE_STORIES = [
    p
    for p in sorted([*COMPAT.glob("docs-stories/*.yaml"), *COMPAT.glob("readme-examples/**/*.yaml")])
    if "{{ ." in p.read_text() or "{{ eq" in p.read_text() or "{{ and" in p.read_text()
]


def test_there_are_seventeen_catalog_templates() -> None:
    assert len(TEMPLATES) == 17


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.parent.name)
def test_catalog_template_validates_unchanged(cli: Cli, path: Path) -> None:
    result = cli("validate", "-f", str(path))
    assert result.code == 0, result.err
    assert " valid" in result.out


def test_go_template_fixtures_exist() -> None:
    assert GO_TEMPLATE_STORIES, "expected compat manifests that use Go-template expressions"


@pytest.mark.parametrize("path", GO_TEMPLATE_STORIES, ids=lambda p: p.name)
def test_go_template_expressions_are_rejected_clearly(cli: Cli, path: Path) -> None:
    result = cli("validate", "-f", str(path))
    assert result.code == 1
    assert "Traceback" not in result.err
    assert "Go-template" in result.err
    assert "line" in result.err


@pytest.mark.parametrize(
    "path",
    sorted(
        [
            *COMPAT.glob("docs-stories/*.yaml"),
            *COMPAT.glob("readme-examples/**/*.yaml"),
            *COMPAT.glob("samples/*.yaml"),
            *COMPAT.glob("templates/**/*.yaml"),
        ]
    ),
    ids=lambda p: str(p.relative_to(COMPAT)),
)
def test_every_compat_manifest_gets_an_answer_not_a_crash(cli: Cli, path: Path) -> None:
    result = cli("validate", "-f", str(path))
    assert result.code in (0, 1), result.err
    assert "Traceback" not in result.err
