"""``<home>/serve.json``: where a running ``bobrapet serve`` of a home listens, and whether it is up.

Invariants: the file is written (atomically: a temporary file renamed into place) once the
serve process's engine is up, and removed when it begins to shut down, by that process only
(:func:`remove` leaves a file of another process alone). A record counts as live only while
the engine lease it names is held (:meth:`~bobrapet.runtime.lease.EngineLease.is_alive`: an
``flock`` the kernel drops when the process dies, even by SIGKILL) and its pid exists, so a
file left behind by a killed process is ignored. The bearer token is never written here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from bobrapet.runtime.lease import EngineLease

SERVE_FILE = "serve.json"
ENGINES_DIR = "engines"


@dataclass(frozen=True)
class ServeRecord:
    """One serve process: its API address, pid and engine lease."""

    address: str
    host: str
    port: int
    pid: int
    lease: str
    started_at: str


def path_of(home: Path) -> Path:
    return home / SERVE_FILE


def write(home: Path, record: ServeRecord) -> None:
    home.mkdir(parents=True, exist_ok=True)
    target = path_of(home)
    tmp = target.with_name(f".{SERVE_FILE}.{os.getpid()}.tmp")
    data = asdict(record)
    data["startedAt"] = data.pop("started_at")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def read(home: Path) -> ServeRecord | None:
    """The record in ``home`` (live or not); None when absent or unreadable."""
    try:
        data = json.loads(path_of(home).read_text(encoding="utf-8"))
        return ServeRecord(
            address=str(data["address"]),
            host=str(data["host"]),
            port=int(data["port"]),
            pid=int(data["pid"]),
            lease=str(data["lease"]),
            started_at=str(data.get("startedAt") or ""),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_live(home: Path, record: ServeRecord) -> bool:
    """Whether the process of ``record`` still runs its engine on ``home``."""
    return _pid_exists(record.pid) and EngineLease.is_alive(home / ENGINES_DIR, record.lease)


def live(home: Path) -> ServeRecord | None:
    """The running serve of ``home``, or None (no file, or a stale one)."""
    record = read(home)
    return record if record is not None and is_live(home, record) else None


def remove(home: Path, pid: int | None = None) -> None:
    """Remove the file if it belongs to process ``pid`` (default: this one)."""
    record = read(home)
    if record is not None and record.pid == (os.getpid() if pid is None else pid):
        path_of(home).unlink(missing_ok=True)
