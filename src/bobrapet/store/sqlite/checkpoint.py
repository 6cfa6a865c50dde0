"""Checkpointing the write-ahead log off the writer's thread.

SQLite copies the WAL back into the database file (a *checkpoint*) from inside the COMMIT
that crosses ``wal_autocheckpoint`` frames, so one write in every few dozen pays for copying
hundreds of pages and two fsyncs. A client hands that work to a :class:`Checkpointer`: every
``every`` committed write transactions it wakes a background thread which, on its own
connection, runs a ``PASSIVE`` checkpoint (it never waits for, nor blocks, writers or
readers; it copies what no reader still needs). The client's connection keeps automatic
checkpoints at :data:`BACKSTOP_FRAMES` as a backstop, so the WAL stays bounded even if the
thread lags. The GIL is released while SQLite works, so the checkpoint runs beside the
event loop instead of inside one of its writes.

Invariants:

* checkpointing never changes what a transaction commits (it is SQLite's own crash-safe
  operation: one interrupted by a crash is redone from the WAL on the next open);
* the thread starts only after the first ``every`` commits (a short-lived command never
  starts it) and :meth:`Checkpointer.close` ends it, waiting for a checkpoint in progress;
* a failed checkpoint (busy, I/O error) is ignored: the next wake-up, or the backstop,
  does the work.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

#: ``wal_autocheckpoint`` of a connection whose checkpoints a :class:`Checkpointer` runs.
BACKSTOP_FRAMES = 4000
#: Committed write transactions between two background checkpoints.
EVERY_COMMITS = 64


class Checkpointer:
    """Runs ``PASSIVE`` checkpoints of ``path`` on a background thread, every ``every`` commits."""

    def __init__(self, path: Path, every: int = EVERY_COMMITS) -> None:
        self.path = path
        self.every = every
        self.runs = 0
        self._pending = 0
        self._stopping = False
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    def committed(self, transactions: int = 1) -> None:
        """Count committed write transactions; wake the thread every ``every`` of them."""
        self._pending += transactions
        if self._pending < self.every or self._stopping:
            return
        self._pending = 0
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"sqlite-checkpoint {self.path.name}", daemon=True
            )
            self._thread.start()
        self._wakeup.set()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running)."""
        self._stopping = True
        thread, self._thread = self._thread, None
        if thread is not None:
            self._wakeup.set()
            thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wakeup.wait()
                self._wakeup.clear()
                if self._stopping:
                    return
                try:
                    if conn is None:
                        conn = sqlite3.connect(
                            str(self.path), isolation_level=None, check_same_thread=False, timeout=1.0
                        )
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except sqlite3.Error:
                    if conn is not None:
                        with contextlib.suppress(sqlite3.Error):
                            conn.close()
                    conn = None
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
