"""The README tells the truth: its example runs, its commands and flags exist, its links resolve.

* The blocks marked ``<!-- readme-test: FILE -->`` in README.md are written to a scratch
  directory and run as the README says, in a real ``bobrapet`` process.
* Every command row of the README's tables (`` `bobrapet CMD ...` ``) names a command whose
  ``--help`` lists every option the row shows.
* The user documentation never points outside the repository (``../shared``), and every
  relative Markdown link resolves to a file of the repository.
* CLI features the README names that no other test exercises: ``--home`` from
  ``BOBRAPET_HOME``, ``--version``, ``apply --dry-run``, ``get -l``, ``--field-selector``, ``-A``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.cli.conftest import Cli
from tests.conftest import REPO

from bobrapet import __version__
from bobrapet.cli.main import main

BOBRAPET = str(Path(sys.executable).parent / "bobrapet")
README = REPO / "README.md"
USER_DOCS = [
    README,
    REPO / "SECURITY.md",
    REPO / "CHANGELOG.md",
    REPO / "bench" / "README.md",
    REPO / "examples" / "README.md",
    *sorted((REPO / "docs").glob("**/*.md")),
]
ALL_DOCS = [*USER_DOCS, REPO / "CONTRIBUTING.md"]


def _marked_blocks(text: str) -> dict[str, str]:
    """``{file name: code}`` for every fenced block right after ``<!-- readme-test: NAME -->``."""
    pattern = re.compile(r"<!-- readme-test: (\S+) -->\n```[a-z]*\n(.*?)\n```", re.DOTALL)
    return {name: body + "\n" for name, body in pattern.findall(text)}


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    blocks = _marked_blocks(README.read_text())
    assert set(blocks) == {"shout.py", "story.yaml"}, blocks.keys()
    for name, body in blocks.items():
        (tmp_path / name).write_text(body)
    home = str(tmp_path / "home")

    def bobrapet(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BOBRAPET, "--home", home, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )

    done = bobrapet("run", "-f", "story.yaml", "-i", "text=hello there", "--name", "s1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("storyrun/s1 Succeeded in ")
    assert "output:\n  text: HELLO THERE\n" in done.stdout
    logs = bobrapet("logs", "s1")
    assert logs.returncode == 0, logs.stderr
    assert "shouting hello there" in logs.stdout


def _command_rows(text: str) -> list[tuple[str, list[str]]]:
    """(command, options) for each `` `bobrapet CMD ...` `` span in the first cell of a table row."""
    rows: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if not line.startswith("| `bobrapet "):
            continue
        first_cell = re.split(r"(?<!\\)\|", line)[1]
        for span in re.findall(r"`([^`]+)`", first_cell):
            words = span.removeprefix("bobrapet ").split()
            options = re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b", span)
            rows.append((words[0], options))
    return rows


def test_every_command_and_option_in_the_readme_exists(cli: Cli) -> None:
    rows = _command_rows(README.read_text())
    assert len(rows) >= 10, rows
    for command, options in rows:
        shown = cli(command, "--help")
        assert shown.code == 0, (command, shown.err)
        for option in options:
            assert re.search(rf"(?<![\w-]){re.escape(option)}\b", shown.out), (command, option, shown.out)


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_user_docs_do_not_send_users_outside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    assert "../shared" not in text and "shared/" not in text, doc


@pytest.mark.parametrize("doc", ALL_DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPO) and path.exists(), (doc, target)


def test_home_from_the_environment_and_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "from-env"
    monkeypatch.setenv("BOBRAPET_HOME", str(home))
    assert main(["apply", "-f", str(REPO / "examples" / "catalog.yaml")]) == 0
    assert (home / "state.db").is_file()
    capsys.readouterr()
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"bobrapet {__version__}"


LABELLED = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: one, labels: {tier: web}}
data: {k: v}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b, namespace: one, labels: {tier: db}}
data: {k: v}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: two, labels: {tier: web}}
data: {k: v}
"""


def _names(out: str) -> list[str]:
    return sorted(item["metadata"]["name"] for item in json.loads(out)["items"])


def test_dry_run_selectors_and_all_namespaces(cli: Cli) -> None:
    dry = cli("apply", "--dry-run", "-f", "-", stdin=LABELLED)
    assert dry.code == 0, dry.err
    assert cli("get", "configmaps", "-A", "-o", "json").out.count('"name"') == 0
    assert cli("apply", "-f", "-", stdin=LABELLED).code == 0
    assert _names(cli("get", "cm", "-A", "-o", "json").out) == ["a", "b", "c"]
    assert _names(cli("get", "cm", "-n", "one", "-o", "json").out) == ["a", "b"]
    assert _names(cli("get", "cm", "-A", "-l", "tier=web", "-o", "json").out) == ["a", "c"]
    assert _names(cli("get", "cm", "-A", "-l", "tier!=web", "-o", "json").out) == ["b"]
    selected = cli("get", "cm", "-A", "--field-selector", "metadata.namespace=two", "-o", "json")
    assert selected.code == 0, selected.err
    assert _names(selected.out) == ["c"]
