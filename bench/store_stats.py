"""Store writes of a benchmark run, read from the embedded SQLite file.

Every write to the store (create, update, status update, delete) allocates the next
resourceVersion, a global monotonic counter (the newest ``events`` row's); the change log ``events``
holds one row per resourceVersion with the full object written. So the writes a run caused
are ``rv_after - rv_before``, and ``events`` rows above ``rv_before`` break them down by kind
and size (unless the log was pruned past ``rv_before``: ``complete`` is then false).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

STATE_FILE = "state.db"


def _connect(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{home / STATE_FILE}?mode=ro", uri=True, timeout=30)


def _current_rv(conn: sqlite3.Connection) -> int:
    from bobrapet.store.sqlite.schema import current_rv

    return current_rv(conn)


def resource_version(home: Path) -> int:
    """The last allocated resourceVersion of ``home``'s store (0 for a fresh home)."""
    if not (home / STATE_FILE).exists():
        return 0
    with _connect(home) as conn:
        return _current_rv(conn)


@dataclass
class Writes:
    """Writes after ``since``: total count, bytes of the objects written, per kind."""

    since: int
    count: int = 0
    bytes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    bytes_by_kind: dict[str, int] = field(default_factory=dict)
    complete: bool = True


def writes_since(home: Path, since: int) -> Writes:
    """What was written to ``home``'s store after resourceVersion ``since``."""
    result = Writes(since=since)
    with _connect(home) as conn:
        rv = _current_rv(conn)
        compacted = int(conn.execute("SELECT value FROM meta WHERE key = 'compacted'").fetchone()[0])
        result.count = rv - since
        result.complete = compacted <= since
        rows = conn.execute(
            "SELECT kind, count(*), sum(length(data)) FROM events WHERE rv > ? GROUP BY kind ORDER BY kind",
            (since,),
        ).fetchall()
    for kind, count, size in rows:
        short = str(kind).split(".", 1)[0]
        result.by_kind[short] = int(count)
        result.bytes_by_kind[short] = int(size or 0)
        result.bytes += int(size or 0)
    return result
