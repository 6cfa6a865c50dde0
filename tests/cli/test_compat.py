"""The original project's own manifests (../shared/compat) through `bobrapet validate`."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli.conftest import Cli
from tests.conftest import COMPAT

TEMPLATES = sorted([*COMPAT.glob("templates/*/Engram.yaml"), *COMPAT.glob("templates/*/Impulse.yaml")])
# Go-template spellings users bring from the original project, put into real compat Stories
# (the replacement is YAML text inside a double-quoted scalar, hence the escaped quotes).
GO_TEMPLATE_REWRITES = [
    ("docs-stories/runtime-primitives--wait-for-signal.yaml", "{{ inputs.ready }}", "{{ .inputs.ready }}"),
    ("docs-stories/api-crd-design--batch-etl.yaml", "{{ inputs.url }}", r"{{ printf \"%s\" .inputs.url }}"),
    (
        "docs-stories/api-crd-design--batch-etl.yaml",
        "{{ steps.fetch.outputs.body }}",
        r"{{ index .steps \"fetch\" }}",
    ),
    (
        "readme-examples/bobrapet/story-gated-workflow.yaml",
        "inputs.ready == true",
        r"{{ eq .inputs.ready \"x\" }}",
    ),
]


def test_there_are_seventeen_catalog_templates() -> None:
    assert len(TEMPLATES) == 17


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.parent.name)
def test_catalog_template_validates_unchanged(cli: Cli, path: Path) -> None:
    result = cli("validate", "-f", str(path))
    assert result.code == 0, result.err
    assert " valid" in result.out


@pytest.mark.parametrize(("name", "original", "go_template"), GO_TEMPLATE_REWRITES)
def test_go_template_expressions_are_rejected_clearly(
    cli: Cli, tmp_path: Path, name: str, original: str, go_template: str
) -> None:
    text = (COMPAT / name).read_text()
    assert original in text
    path = tmp_path / Path(name).name
    path.write_text(text.replace(original, go_template, 1))
    line = next(i for i, row in enumerate(path.read_text().splitlines(), 1) if go_template in row)
    result = cli("validate", "-f", str(path))
    assert result.code == 1
    assert "Traceback" not in result.err
    assert "Go-template" in result.err
    assert f"line {line}," in result.err
    assert "write" in result.err  # says what to write instead


def test_impulse_config_in_the_impulses_own_language_is_opaque(cli: Cli) -> None:
    """Impulse ``with`` is configuration for the impulse program (here its own Go-template
    filter language), passed through unevaluated: Bobrapet must not reject it."""
    result = cli(
        "validate",
        "-f",
        str(COMPAT / "templates/kubernetes-impulse/Impulse.yaml"),
        "-f",
        str(COMPAT / "readme-examples/kubernetes-impulse/impulse-pod-crash-watcher.yaml"),
    )
    assert result.code == 0, result.err


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
