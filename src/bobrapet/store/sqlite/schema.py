"""Schema, migrations and connection setup of the embedded store.

Tables:

* ``objects`` — one row per stored object: ``kind`` (the kind's qualified
  plural), ``namespace`` (``""`` for cluster-scoped kinds), ``name``, ``uid``,
  ``rv`` (its resourceVersion) and ``data`` (the whole object as compact JSON,
  including ``metadata.resourceVersion``). ``(kind, namespace, name)`` and
  ``uid`` are unique.
* ``idx`` — secondary index entries ``(kind, key, value, oid)``: ``l<label>``
  for each label and ``f<path>`` for each selectable field present, so
  selectors never scan other kinds or decode non-matching objects. There is no
  index by ``oid``: the writer removes an object's entries by their full key
  (it knows them from the object), so a write touches no extra index pages.
* ``owners`` — ``(owner_uid, oid)`` for every ownerReference (cascading delete);
  removed by full key too.
* ``events`` — the change log: one row per resourceVersion ever allocated
  (``ADDED``/``MODIFIED``/``DELETED`` with the object state). Pruned to the
  newest entries (never the newest one); ``meta.compacted`` is the highest
  pruned resourceVersion.
* ``meta`` — ``compacted``. The last allocated resourceVersion is not stored
  apart: it is the newest ``events`` row's, or ``compacted`` when every row was
  pruned (:data:`CURRENT_RV`), so a write does not rewrite a counter page.

The schema version lives in ``PRAGMA user_version``; :func:`migrate` brings a
file up to :data:`SCHEMA_VERSION` inside one ``BEGIN IMMEDIATE`` transaction,
so several processes may open the same file at once. Opening a brand-new file
races on the switch to WAL (SQLite reports "locked" at once, without waiting,
to avoid a deadlock between openers); :func:`connect` retries that setup until
the busy timeout.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

from bobrapet.api.errors import StatusError
from bobrapet.store.sqlite.errors import is_busy, translated

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 15000

_V1 = """
CREATE TABLE IF NOT EXISTS objects (
    oid INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL UNIQUE,
    rv INTEGER NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS idx (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    oid INTEGER NOT NULL,
    PRIMARY KEY (kind, key, value, oid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_by_oid ON idx (oid);
CREATE TABLE IF NOT EXISTS owners (
    owner_uid TEXT NOT NULL,
    oid INTEGER NOT NULL,
    PRIMARY KEY (owner_uid, oid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS owners_by_oid ON owners (oid);
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('rv', 0), ('compacted', 0);
"""

# v2: no by-oid indexes (entries are removed by full key); the resourceVersion counter is
# derived from the change log. If a v1 file's counter were ever ahead of its log (it cannot
# be: every resourceVersion has its event), ``compacted`` takes it, so no version is reused
# and watches from older bookmarks re-list.
_V2 = """
DROP INDEX IF EXISTS idx_by_oid;
DROP INDEX IF EXISTS owners_by_oid;
UPDATE meta SET value = (SELECT value FROM meta WHERE key = 'rv')
    WHERE key = 'compacted' AND (SELECT value FROM meta WHERE key = 'rv')
        > max(value, coalesce((SELECT max(rv) FROM events), 0));
DELETE FROM meta WHERE key = 'rv';
"""

_MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2}

#: The last allocated resourceVersion (0 for an empty store): the newest change-log row's, or
#: ``compacted`` if the log was pruned empty. Inside ``BEGIN IMMEDIATE`` it is the base of the
#: next allocation; anywhere else, a consistent bookmark of one snapshot.
CURRENT_RV = (
    "SELECT max(coalesce((SELECT max(rv) FROM events), 0), (SELECT value FROM meta WHERE key = 'compacted'))"
)


def current_rv(conn: sqlite3.Connection) -> int:
    """The store's last allocated resourceVersion (see :data:`CURRENT_RV`)."""
    return int(conn.execute(CURRENT_RV).fetchone()[0])


def connect(path: Path, busy_timeout: float = BUSY_TIMEOUT_MS / 1000) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with a busy timeout, migrated to the current schema.

    SQLite failures (unreadable file, lock held past ``busy_timeout`` seconds) raise
    :class:`StatusError` naming the file.
    """
    with translated(str(path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            deadline = time.monotonic() + busy_timeout
            while True:
                try:
                    _setup(conn, path)
                    break
                except sqlite3.OperationalError as exc:
                    if not is_busy(exc) or time.monotonic() >= deadline:
                        raise
                    time.sleep(random.uniform(0.005, 0.05))
        except BaseException:
            conn.close()
            raise
    return conn


def _setup(conn: sqlite3.Connection, path: Path) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StatusError(
            f"cannot enable WAL mode on {path} (journal_mode is {mode}); "
            "put the state directory on a local filesystem"
        )
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA temp_store = MEMORY")
    migrate(conn, path)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply pending migrations (idempotent, safe under concurrent openers)."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StatusError(
                f"{path} was written by a newer bobrapet (store schema {version}, this version "
                f"understands {SCHEMA_VERSION}); upgrade bobrapet or use another state directory"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
