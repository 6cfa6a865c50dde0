"""One helper builds a step's log path for the engine and the CLI."""

from __future__ import annotations

import os
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


def test_spare_inode_becomes_the_log_with_its_header(tmp_path: Path) -> None:
    from bobrapet.executors.logpath import SpareLogs, open_attempt_log

    spares = SpareLogs()
    directory = tmp_path / "logs" / "default"
    first = directory / "r-a.log"
    os.close(open_attempt_log(first, "--- attempt 1\n", spares))  # no spare yet: created
    spares.refill(str(directory))
    fd = open_attempt_log(directory / "r-b.log", "--- attempt 1\n", spares)
    os.write(fd, b"out\n")
    os.close(fd)
    assert (directory / "r-b.log").read_text() == "--- attempt 1\nout\n"
    assert (directory / "r-b.log").stat().st_mode & 0o777 == first.stat().st_mode & 0o777
    # A retry: the log exists, the spare is not used up (and holds nothing afterwards).
    spares.refill(str(directory))
    fd = open_attempt_log(directory / "r-b.log", "--- attempt 2\n", spares)
    os.write(fd, b"again\n")
    os.close(fd)
    assert (directory / "r-b.log").read_text() == "--- attempt 1\nout\n--- attempt 2\nagain\n"
    fd = open_attempt_log(directory / "r-c.log", "--- attempt 1\n", spares)
    os.close(fd)
    assert (directory / "r-c.log").read_text() == "--- attempt 1\n"
    assert sorted(p.name for p in directory.iterdir()) == ["r-a.log", "r-b.log", "r-c.log"]


def test_spares_are_bounded_per_directory(tmp_path: Path) -> None:
    from bobrapet.executors.logpath import SpareLogs

    spares = SpareLogs()
    for _ in range(3):
        spares.refill(str(tmp_path))
    held = spares._spares.get(str(tmp_path), [])
    assert len(held) <= SpareLogs.PER_DIR
    assert list(tmp_path.iterdir()) == []  # spares have no name
