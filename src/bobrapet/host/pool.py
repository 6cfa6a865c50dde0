"""The warm local worker pool of an engine process: its size, its limits and an early start.

The pool's processes start in parallel with the engine process (each imports the standard
library and the SDK, in its own process): a command that will drive runs starts them first
(:func:`start_early`) and hands them to its :class:`~bobrapet.host.engine_host.EngineHost`
later, so they are ready by the time the first step is launched instead of being started
only once the engine is up.

This module is light on purpose (no engine, no controllers): it is imported before them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bobrapet.executors.local.executor import LocalExecutor

#: Environment variables bounding concurrent steps (see :class:`~bobrapet.executors.local.LocalExecutor`).
SLOTS_VARIABLE = "BOBRAPET_WORKER_SLOTS"
MAX_STEPS_VARIABLE = "BOBRAPET_MAX_STEPS"


def default_workers() -> int:
    return max(2, os.cpu_count() or 2)


def _env_limit(name: str) -> int | None:
    """The positive integer in the environment variable ``name``; None when unset; ValueError when bad."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(text)
    return int(text)


def limit_from_env(name: str, default: int) -> int:
    """A positive integer from the environment variable ``name`` (``default`` when unset).

    A bad value ends the process with exit code 2 and a message naming the variable.
    """
    try:
        value = _env_limit(name)
    except ValueError as bad:
        text = str(bad)
        print(
            f"error: {name} must be a positive integer (got {text!r}); unset it for the default {default}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    return default if value is None else value


def local_executor(workers: int, workdir: Path, slots_per_worker: int, max_steps: int) -> LocalExecutor:
    """The warm local worker pool (not started) with these limits."""
    from bobrapet.executors.local.executor import LocalExecutor

    return LocalExecutor(
        workers=workers,
        python_path=[str(workdir)],
        slots_per_worker=slots_per_worker,
        max_steps=max_steps,
    )


async def start_early(workers: int | None = None, workdir: Path | None = None) -> LocalExecutor | None:
    """Start the pool an EngineHost with these arguments (and defaults) would start.

    Returns once the processes exist (they import in parallel). None when a limit in the
    environment is invalid: the EngineHost reports that itself, at the usual point.
    The caller owns the pool: it hands it to the EngineHost and closes it in any case
    (closing twice is harmless).
    """
    from bobrapet.executors.local.executor import DEFAULT_MAX_STEPS, DEFAULT_SLOTS_PER_WORKER

    try:
        slots = _env_limit(SLOTS_VARIABLE) or DEFAULT_SLOTS_PER_WORKER
        max_steps = _env_limit(MAX_STEPS_VARIABLE) or DEFAULT_MAX_STEPS
    except ValueError:
        return None
    pool = local_executor(workers or default_workers(), workdir or Path.cwd(), slots, max_steps)
    try:
        await pool.start()
    except BaseException:
        await pool.close()
        raise
    return pool
