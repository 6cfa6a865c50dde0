"""Where step logs live and how an attempt's part of them begins.

* ``<home>/logs/<namespace>/<steprun>.log``: a StepRun's stdout/stderr, every attempt's;
* ``<home>/logs/<namespace>/<storyrun>.inputs.jsonl``: a StoryRun's inputs log, one JSON
  line per attempt of its steps (what the attempt received; see
  :mod:`bobrapet.controllers.steplog`). One file per run, appended to, because creating a
  file costs far more than appending a line on common file systems.

Invariants:

* the engine (which writes logs through its executor) and the CLI (which reads them for
  ``bobrapet logs`` / ``wait`` / ``describe``) build the paths with :func:`step_log_path`
  and :func:`inputs_log_path` only;
* an executor calls :func:`open_attempt_log` and :func:`append_inputs_record` before the
  attempt's code can write, so the attempt header precedes every line the attempt writes;
* these writes are best effort: a full disk must not fail the step, whose own output
  would fail anyway.

This module imports nothing heavy, so reading it costs the CLI (and a worker) no start-up
time.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

#: Directory of step logs under the home directory.
LOG_DIR: Final = "logs"
#: Suffix of a run's inputs log (``<run>.inputs.jsonl``) beside its steps' logs.
INPUTS_SUFFIX: Final = ".inputs.jsonl"


def step_log_path(home: Path, namespace: str | None, step_run: str) -> Path:
    """The log file of StepRun ``step_run`` (an empty namespace is ``default``)."""
    return home / LOG_DIR / (namespace or "default") / f"{step_run}.log"


def inputs_log_path(home: Path, namespace: str | None, story_run: str) -> Path:
    """The inputs log of StoryRun ``story_run``: one JSON line per attempt of its steps."""
    return home / LOG_DIR / (namespace or "default") / f"{story_run}{INPUTS_SUFFIX}"


def open_attempt_log(log_path: str | os.PathLike[str], header: str = "") -> int:
    """Open (create) the step log for appending and write ``header``; returns the fd.

    Raises ``OSError`` when the log cannot be opened (the attempt cannot run without it).
    """
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    if header:
        with contextlib.suppress(OSError):
            os.write(fd, header.encode())
    return fd


def append_inputs_record(inputs_log: str | os.PathLike[str] | None, record: str | None) -> None:
    """Append ``record`` (one JSON object, no newline) as a line of the run's inputs log.

    One ``write`` of one line on an ``O_APPEND`` file: lines of concurrent writers (several
    workers) never interleave.
    """
    if inputs_log is None or record is None:
        return
    with contextlib.suppress(OSError):
        fd = os.open(inputs_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (record + "\n").encode())
        finally:
            os.close(fd)
