"""The README tells the truth: its example runs, its commands and flags exist, its links resolve.

* The blocks marked ``<!-- readme-test: FILE -->`` in README.md are written to a scratch
  directory and run as the README says, in a real ``bobrapet`` process.
* Every command row of the README's tables (`` `bobrapet CMD ...` ``) names a command whose
  ``--help`` lists every option the row shows.
* The user documentation never points outside the repository (``../shared``), and every
  relative Markdown link resolves to a file of the repository.
* Every command of ``bobrapet --help`` (and every ``config`` subcommand) has a row, and the
  Engine v2 forms and flags are documented.
* The commands the README shows work as it says, from a clean home: positional manifests,
  ``get -o jsonpath=``, ``--no-headers``, ``--sort-by``, ``get events``, ``redrive --latest``,
  ``wait --all``, ``delete KIND/NAME``, ``version``, ``completion``, ``config set|view|unset``,
  and the Secrets example delivers its values as the README says.
* CLI features the README names that no other test exercises: ``--home`` from
  ``BOBRAPET_HOME``, ``--version``, ``apply --dry-run``, ``get -l``, ``--field-selector``, ``-A``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
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


GROUPS = {"config", "catalog"}  # commands with subcommands: a row names ``config view``, ``config set`` ...


def _command_rows(text: str) -> list[tuple[str, list[str]]]:
    """(command, options) for each `` `bobrapet CMD ...` `` span in the first cell of a table row;
    the command of a group is two words (``config set``)."""
    rows: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if not line.startswith("| `bobrapet "):
            continue
        first_cell = re.split(r"(?<!\\)\|", line)[1]
        for span in re.findall(r"`([^`]+)`", first_cell):
            words = span.removeprefix("bobrapet ").split()
            command = " ".join(words[:2]) if words[0] in GROUPS else words[0]
            options = re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b", span)
            rows.append((command, options))
    return rows


def test_every_command_and_option_in_the_readme_exists(cli: Cli) -> None:
    rows = _command_rows(README.read_text())
    assert len(rows) >= 10, rows
    for command, options in rows:
        shown = cli(*command.split(), "--help")
        assert shown.code == 0, (command, shown.err)
        for option in options:
            assert re.search(rf"(?<![\w-]){re.escape(option)}\b", shown.out), (command, option, shown.out)


def _subcommands(help_text: str) -> set[str]:
    """The names listed under ``Commands:`` in a ``--help`` text."""
    section = help_text.split("Commands:", 1)[1]
    return {m for m in re.findall(r"^\s{2}([a-z][a-z-]*)\s", section, re.MULTILINE)}


# Forms and flags added in Engine v2 that the CLI reference must show (command, option).
DOCUMENTED_FLAGS = [
    ("run", "--inputs-file"),
    ("wait", "--all"),
    ("redrive", "--latest"),
    ("redrive", "--no-wait"),
    ("get", "--no-headers"),
    ("get", "--sort-by"),
    ("get", "-o"),
    ("delete", "--all"),
    ("delete", "-l"),
    ("version", "-o"),
    ("get", "-w"),
    ("get", "--watch-only"),
    ("get", "--output-watch-events"),
    ("logs", "-f"),
]


def test_the_cli_reference_covers_every_command(cli: Cli) -> None:
    text = README.read_text()
    rows = _command_rows(text)
    commands = {command for command, _ in rows}
    top = _subcommands(cli("--help").out)
    assert {"config", "version", "completion", "wait", "redrive", "delete", "get"} <= top, top
    for name in top - GROUPS:
        assert name in commands, f"`bobrapet {name}` has no row in a README table"
    for group in GROUPS:
        for name in _subcommands(cli(group, "--help").out):
            assert f"{group} {name}" in commands, f"`bobrapet {group} {name}` has no row"
    for command, option in DOCUMENTED_FLAGS:
        assert any(c == command and option in opts for c, opts in rows), (command, option)
    for form in (
        "`delete KIND/NAME...`",
        "-o jsonpath=TEMPLATE",
        "`bobrapet get events",
        "`bobrapet wait --all`",
    ):
        assert form in text, form
    assert "<!-- engine-v2" not in text, "a placeholder is left in README.md"
    assert "<!-- engine-v2" not in (REPO / "SECURITY.md").read_text()


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


def _bobrapet(home: Path, cwd: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BOBRAPET, "--home", str(home), *args], cwd=cwd, capture_output=True, text=True, timeout=120
        )

    return run


def test_the_documented_commands_work_from_a_clean_home(tmp_path: Path) -> None:
    bobrapet = _bobrapet(tmp_path / "home", REPO)
    done = bobrapet("run", "examples/catalog.yaml", "examples/hello.yaml", "--name", "h1", "-i", "name=Ada")
    assert done.returncode == 0, done.stderr
    assert "greeting: Hello, Ada!" in done.stdout
    assert bobrapet("run", "--story", "hello", "--name", "h2", "--no-wait").returncode == 0
    waited = bobrapet("wait", "--all")
    assert waited.returncode == 0, waited.stderr
    names = bobrapet(
        "get", "storyrun", "-o", 'jsonpath={range .items[*]}{.metadata.name}={.status.phase}{"\\n"}{end}'
    )
    assert names.stdout.split() == ["h1=Succeeded", "h2=Succeeded"], names
    plain = bobrapet("get", "storyrun", "--no-headers", "--sort-by", ".metadata.name")
    assert [line.split()[0] for line in plain.stdout.splitlines()] == ["h1", "h2"], plain
    assert "NAME" in bobrapet("get", "storyrun", "-o", "wide").stdout
    assert bobrapet("get", "events").returncode == 0
    redriven = bobrapet("redrive", "h1", "--latest")
    assert redriven.returncode == 0, redriven.stderr
    assert redriven.stdout.startswith("storyrun/h1 Succeeded"), redriven.stdout
    assert "(generation 1, copy configmap/h1-story-" in bobrapet("describe", "storyrun", "h1").stdout
    assert bobrapet("delete", "storyrun/h1").stdout.strip() == "storyrun/h1 deleted"
    assert bobrapet("get", "storyrun", "-o", "name").stdout.split() == ["storyrun/h2"]
    version = json.loads(bobrapet("version", "-o", "json").stdout)
    assert version["bobrapet"] == __version__
    completion = bobrapet("completion", "bash")
    assert completion.returncode == 0 and "bobrapet" in completion.stdout


def test_the_documented_configuration_commands(tmp_path: Path) -> None:
    bobrapet = _bobrapet(tmp_path / "home", tmp_path)
    assert bobrapet("config", "set", "storyrun.global-concurrency", "5").stdout.strip() == (
        "storyrun.global-concurrency set to 5"
    )
    assert re.search(
        r"^storyrun\.global-concurrency\s+5\s+file$", bobrapet("config", "view").stdout, re.MULTILINE
    )
    assert (tmp_path / "home" / "config.yaml").is_file()
    assert bobrapet("config", "set", "storyrun.retention-seconds", "0").returncode == 0
    unknown = bobrapet("config", "set", "foo.bar", "1")
    assert unknown.returncode != 0 and "unknown key" in unknown.stderr
    assert bobrapet("config", "unset", "storyrun.global-concurrency").returncode == 0
    assert re.search(
        r"^storyrun\.global-concurrency\s+0\s+default$", bobrapet("config", "view").stdout, re.MULTILINE
    )


CALLER = """\
import os


def call(inputs, ctx):
    secret = ctx.secrets["api"]
    return {"user": secret["user"], "env": os.environ["api_user"], "token_set": "api_token" in os.environ}
"""


def test_the_secrets_example_delivers_what_the_readme_says(tmp_path: Path) -> None:
    section = README.read_text().split("### Secrets", 1)[1]
    manifests = re.search(r"```yaml\n(.*?)\n```", section, re.DOTALL)
    assert manifests is not None
    (tmp_path / "client.py").write_text(CALLER)
    story = "---\napiVersion: bubustack.io/v1alpha1\nkind: Story\nmetadata: {name: call}\n"
    story += "spec:\n  steps: [{name: a, ref: {name: caller}}]\n  output: {got: '{{ steps.a.output }}'}\n"
    (tmp_path / "secrets.yaml").write_text(manifests.group(1) + "\n" + story)
    done = _bobrapet(tmp_path / "home", tmp_path)("run", "secrets.yaml", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"]["output"]["got"] == {
        "user": "ada",
        "env": "ada",
        "token_set": True,
    }
