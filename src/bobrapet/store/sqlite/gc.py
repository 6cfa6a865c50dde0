"""Deletion and ownerReference garbage collection (background propagation).

Rules (the Kubernetes garbage collector's, applied synchronously in the same
transaction as the owner's removal):

* an object is *removed* only when deletion was requested and it has no
  finalizers; otherwise deletion sets ``deletionTimestamp`` (once, with
  ``generation + 1``) and ``deletionGracePeriodSeconds: 0`` and the object stays until an update
  empties its finalizers;
* when an object is removed, every dependent naming its uid in
  ``ownerReferences`` is considered: if another owner of it still exists, only
  the dangling reference is dropped; otherwise the dependent is deleted by the
  same rules (recursively, so multi-level trees disappear, and dependents with
  finalizers are only marked);
* an object created or updated with ownerReferences naming absent uids is
  collected in the same transaction (:func:`collect_if_orphaned`: the watch
  shows it ``ADDED`` then ``DELETED``, as the collector would soon after), so a
  child created by a controller racing its owner's deletion never lingers;
* :func:`collect_orphans` applies the same rules to every object whose owners
  are absent (a sweep; a safety net for state written by older versions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bobrapet.api.kinds import Kind
from bobrapet.store.sqlite.indexing import owner_uids
from bobrapet.store.sqlite.writer import WriteTxn

Obj = dict[str, Any]


def mark_deleting(txn: WriteTxn, kind: Kind, oid: int, obj: Obj, now: str) -> Obj:
    """Set ``deletionTimestamp`` (first time only, bumping ``generation`` as the API server's
    markAsDeleting does) and return the stored state."""
    if obj["metadata"].get("deletionTimestamp"):
        return obj
    new: Obj = dict(obj)
    new["metadata"] = dict(obj["metadata"])
    new["metadata"]["generation"] = int(obj["metadata"].get("generation") or 0) + 1
    new["metadata"]["deletionTimestamp"] = now
    new["metadata"]["deletionGracePeriodSeconds"] = 0
    txn.replace(kind, oid, obj, new)
    return new


def delete_object(txn: WriteTxn, kind: Kind, oid: int, obj: Obj, now: str) -> Obj:
    """Delete ``obj`` honouring finalizers; cascade to dependents when removed."""
    if obj["metadata"].get("finalizers"):
        return mark_deleting(txn, kind, oid, obj, now)
    remove_and_cascade(txn, kind, oid, obj, now)
    return obj


def remove_and_cascade(
    txn: WriteTxn, kind: Kind, oid: int, obj: Obj, now: str, stored: Obj | None = None
) -> None:
    """Remove ``obj`` now, then collect its dependents (iteratively, any depth).

    ``stored``: the stored state, when ``obj`` is a newer one that was never written.
    """
    txn.remove(kind, oid, obj, stored)
    collect_dependents(txn, [str(obj["metadata"]["uid"])], now)


def collect_dependents(txn: WriteTxn, gone_uids: list[str], now: str) -> None:
    """Apply the garbage-collection rules to every dependent of the (absent) owners ``gone_uids``."""
    pending = list(gone_uids)
    while pending:
        owner_uid = pending.pop()
        for dep_oid in txn.dependents(owner_uid):
            found = txn.row_by_oid(dep_oid)
            if found is None:
                continue
            dep_kind, dep = found
            refs = dep["metadata"].get("ownerReferences") or []
            survivors = [r for r in refs if r.get("uid") != owner_uid and txn.uid_exists(str(r.get("uid")))]
            if survivors:
                new: Obj = dict(dep)
                new["metadata"] = dict(dep["metadata"])
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
                txn.replace(dep_kind, dep_oid, dep, new)
            elif dep["metadata"].get("finalizers"):
                mark_deleting(txn, dep_kind, dep_oid, dep, now)
            else:
                txn.remove(dep_kind, dep_oid, dep)
                pending.append(str(dep["metadata"]["uid"]))


def collect_if_orphaned(txn: WriteTxn, obj: Obj, now: Callable[[], str]) -> None:
    """Just stored ``obj``: apply the collection rules if any of its owners is absent
    (``now()`` is asked only then)."""
    dangling = sorted(uid for uid in owner_uids(obj) if not txn.uid_exists(uid))
    if dangling:
        collect_dependents(txn, dangling, now())


def collect_orphans(txn: WriteTxn, now: str) -> None:
    """Collect dependents of owners that do not exist (e.g. created after their owner was removed)."""
    collect_dependents(txn, txn.dangling_owner_uids(), now)
