"""Where a StepRun's log lives: ``<home>/logs/<namespace>/<steprun>.log``.

Invariant: the engine (which writes logs through its executor) and the CLI (which reads
them for ``bobrapet logs`` / ``wait``) build the path with :func:`step_log_path` only. This
module imports nothing heavy, so reading it costs the CLI no start-up time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: Directory of step logs under the home directory.
LOG_DIR: Final = "logs"


def step_log_path(home: Path, namespace: str | None, step_run: str) -> Path:
    """The log file of StepRun ``step_run`` (an empty namespace is ``default``)."""
    return home / LOG_DIR / (namespace or "default") / f"{step_run}.log"
