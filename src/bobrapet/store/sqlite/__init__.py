"""The embedded store: SQLite (WAL) with Kubernetes API semantics.

Entry point: :class:`SqliteClient`. See :mod:`.client` for the invariants,
:mod:`.schema` for the tables, :mod:`.watch` for cross-process watches and
:mod:`.gc` for finalizers and cascading deletion.
"""

from bobrapet.store.sqlite.client import SqliteClient, StoreLookup

__all__ = ["SqliteClient", "StoreLookup"]
