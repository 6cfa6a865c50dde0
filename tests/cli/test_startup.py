"""Start-up of the ``bobrapet`` process: what loads when, the collector policy, the early pool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.cli.conftest import Cli
from tests.conftest import EXAMPLES, REPO

from bobrapet.executors.local.executor import LocalExecutor
from bobrapet.host import pool as pool_module

HEAVY = ("bobrapet.engine", "bobrapet.controllers", "bobrapet.api.admission.pipeline", "jsonschema", "jinja2")

# Runs the CLI in a fresh interpreter, then reports which heavy modules it loaded.
PROBE = """
import json, sys
from bobrapet.cli.main import main
code = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.startswith(tuple(json.loads({heavy!r}))))
print("\\nPROBE " + json.dumps({{"code": code, "heavy": heavy}}))
"""


def probe(home: Path, *args: str) -> dict[str, Any]:
    code = PROBE.format(heavy=json.dumps(HEAVY))
    done = subprocess.run(
        [sys.executable, "-c", code, "--home", str(home), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("PROBE ")]
    assert line, done.stderr
    result: dict[str, Any] = json.loads(line[-1].removeprefix("PROBE "))
    return result


@pytest.mark.parametrize(
    "args",
    [("--help",), ("version",), ("get", "stories"), ("run", "--help")],
    ids=["help", "version", "get", "run-help"],
)
def test_commands_that_drive_nothing_do_not_load_the_engine(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = probe(tmp_path / "home", *args)
    assert result["code"] == 0
    assert result["heavy"] == []


def test_the_console_entry_pauses_collection_while_loading_and_resumes_for_the_engine() -> None:
    code = """
import gc
from bobrapet.cli import startup
from bobrapet.cli.main import main
assert gc.isenabled()
main(["--version"])
assert gc.isenabled(), "main() alone leaves the collector alone"
startup.pause()
assert not gc.isenabled()
startup.resume()
assert gc.isenabled() and gc.get_freeze_count() > 0
startup.resume()
assert gc.isenabled()
gc.disable()
startup.pause()
startup.resume()
assert not gc.isenabled(), "resume only undoes its own pause"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")


def test_the_console_script_runs_a_story(tmp_path: Path) -> None:
    files = ["-f", str(EXAMPLES / "catalog.yaml"), "-f", str(EXAMPLES / "hello.yaml")]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bobrapet.cli.main",
            "--home",
            str(tmp_path / "home"),
            "run",
            *files,
            "-o",
            "json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"]["output"] == {"greeting": "Hello, world!"}


def test_run_hands_the_pool_it_started_early_to_the_engine(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the example engrams import from the repository root
    pools: list[LocalExecutor] = []
    built: list[LocalExecutor] = []
    original_init = LocalExecutor.__init__
    original_start = pool_module.start_early

    def counting_init(self: LocalExecutor, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original_init(self, *args, **kwargs)

    async def recording_start(
        workers: int | None = None, workdir: Path | None = None
    ) -> LocalExecutor | None:
        pool = await original_start(workers, workdir)
        assert pool is not None
        pools.append(pool)
        return pool

    monkeypatch.setattr(LocalExecutor, "__init__", counting_init)
    monkeypatch.setattr("bobrapet.cli.commands.run.start_early", recording_start)
    result = cli(
        "run", "-f", str(EXAMPLES / "catalog.yaml"), "-f", str(EXAMPLES / "hello.yaml"), "-o", "json"
    )
    assert result.code == 0, result.err
    assert json.loads(result.out)["status"]["output"] == {"greeting": "Hello, world!"}
    assert len(pools) == 1
    assert built == pools, "the engine ran the step on the early pool, not on a second one"
    assert pools[0].pids == [], "the pool is closed when the command ends"


def test_an_invalid_limit_is_still_reported_by_the_engine(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("BOBRAPET_WORKER_SLOTS", "zero")
    result = cli("run", "-f", str(EXAMPLES / "catalog.yaml"), "-f", str(EXAMPLES / "hello.yaml"))
    assert result.code == 2
    assert "story/hello created" in result.err, "the files are applied first, as before"
    assert (
        "error: BOBRAPET_WORKER_SLOTS must be a positive integer (got 'zero'); unset it for the default 128"
        in result.err
    )


def test_run_of_a_story_on_a_missing_home_creates_no_home(cli: Cli, tmp_path: Path) -> None:
    result = cli("run", "--story", "nope")
    assert result.code == 2
    assert "apply it first" in result.err
    assert not (tmp_path / "home").exists()


def test_a_rejected_manifest_closes_the_early_pool(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pools: list[LocalExecutor] = []
    original_start = pool_module.start_early

    async def recording_start(workers: int | None = None, workdir: Path | None = None) -> LocalExecutor:
        pool = await original_start(workers, workdir)
        assert pool is not None
        pools.append(pool)
        return pool

    monkeypatch.setattr("bobrapet.cli.commands.run.start_early", recording_start)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: bubustack.io/v1alpha1\nkind: Story\nmetadata: {name: s}\n"
        "spec: {steps: [{name: a, nedds: []}]}\n"
    )
    result = cli("run", "-f", str(bad))
    assert result.code == 2
    assert "not running" in result.err
    assert len(pools) == 1 and pools[0].pids == []
