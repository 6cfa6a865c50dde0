"""Bad input through the CLI: a clear message naming file, document, line and field."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli


def write(tmp_path: Path, text: str, name: str = "in.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_malformed_yaml_reports_line_and_column(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, "apiVersion: v1\nkind: [unclosed\n")
    result = cli("apply", "-f", path)
    assert result.code == 1
    assert "line 3" in result.err or "line 2" in result.err
    assert "column" in result.err
    assert "Traceback" not in result.err


def test_missing_file_is_usage_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("apply", "-f", str(tmp_path / "nope.yaml"))
    assert result.code == 2
    assert "no such file" in result.err


def test_document_that_is_not_a_mapping(cli: Cli, tmp_path: Path) -> None:
    result = cli("validate", "-f", write(tmp_path, "- a\n- b\n"))
    assert result.code == 1
    assert "mapping" in result.err


def test_unknown_kind(cli: Cli, tmp_path: Path) -> None:
    text = "apiVersion: bubustack.io/v1alpha1\nkind: Stroy\nmetadata: {name: x}\nspec: {}\n"
    result = cli("validate", "-f", write(tmp_path, text))
    assert result.code == 1
    assert "Stroy" in result.err
    assert "Story" in result.err


def test_unknown_field_names_line_and_suggestion(cli: Cli, tmp_path: Path) -> None:
    text = """\
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata:
  name: typo
spec:
  steps:
    - name: a
      type: sleep
    - name: b
      type: sleep
      nedds: [a]
"""
    result = cli("apply", "-f", write(tmp_path, text))
    assert result.code == 1
    assert "spec.steps[1].nedds" in result.err
    assert 'did you mean "needs"' in result.err
    assert "line 11" in result.err
    assert "document 1" in result.err
    assert cli("get", "story", "typo").code == 1  # nothing half-written


def test_second_document_error_keeps_first(cli: Cli, tmp_path: Path) -> None:
    text = """\
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: good}
spec:
  steps: [{name: a, type: sleep}]
---
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: bad}
spec:
  steps: [{name: a, type: sleep, needs: [a]}]
"""
    result = cli("apply", "-f", write(tmp_path, text))
    assert result.code == 1
    assert "story/good created" in result.out
    assert "document 2" in result.err
    assert "cannot depend on itself" in result.err


def test_validate_stores_nothing(cli: Cli, tmp_path: Path) -> None:
    text = (
        "apiVersion: bubustack.io/v1alpha1\nkind: Story\nmetadata: {name: v}\n"
        "spec:\n  steps: [{name: a, type: sleep}]\n"
    )
    result = cli("validate", "-f", write(tmp_path, text))
    assert result.code == 0, result.err
    assert "story/v valid" in result.out
    assert cli("get", "story", "v").code == 1


def test_no_filename_is_usage_error(cli: Cli) -> None:
    assert cli("apply").code == 2
