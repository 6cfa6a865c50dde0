"""One helper builds a step's log path for the engine and the CLI."""

from __future__ import annotations

from pathlib import Path

from bobrapet.cli.commands import logs, wait
from bobrapet.executors.logpath import LOG_DIR, step_log_path


def test_step_log_path_layout() -> None:
    home = Path("/h")
    assert step_log_path(home, "team", "run-a") == Path("/h/logs/team/run-a.log")
    assert step_log_path(home, "", "run-a") == Path("/h/logs/default/run-a.log")
    assert step_log_path(home, None, "run-a") == Path("/h/logs/default/run-a.log")
    assert LOG_DIR == "logs"


def test_engine_and_cli_agree(tmp_path: Path) -> None:
    from bobrapet.controllers.execution import ExecutionEnv

    env = ExecutionEnv.__new__(ExecutionEnv)
    env.home = tmp_path
    assert (
        env.log_path("ns", "r-s")
        == wait.log_path(tmp_path, "ns", "r-s")
        == step_log_path(tmp_path, "ns", "r-s")
    )
    assert logs.LOG_DIR == LOG_DIR
