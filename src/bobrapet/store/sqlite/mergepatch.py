"""JSON merge patches (RFC 7396) between two versions of an object's status.

A status write of a long run changes a few keys of a large map (``status.stepStates``);
storing and logging only those keys keeps the bytes written per write independent of the
run's size (see :meth:`bobrapet.store.sqlite.client.SqliteClient.patch_status`).

Invariants:

* ``apply(old, diff(old, new)) == new`` whenever :func:`diff` returns a patch;
* :func:`diff` returns ``None`` when a merge patch cannot say it: a changed value holding
  ``null`` (a merge patch's ``null`` means "remove"), or a non-mapping at the top;
* :func:`diff` descends only into maps that are different objects: an unchanged subtree
  that is the very same object costs nothing, so a writer that keeps unchanged values
  (as the engine keeps unchanged step states) pays for what changed only;
* :func:`apply` never mutates its arguments; the result shares the values the patch does
  not touch with ``target`` (copy on write along the patched paths).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class _Unpatchable(Exception):
    """A changed value holds ``null``: a merge patch would remove it instead."""


def _check_no_null(value: Any) -> None:
    if value is None:
        raise _Unpatchable
    if isinstance(value, Mapping):
        for item in value.values():
            _check_no_null(item)
    elif isinstance(value, list):
        for item in value:
            _check_no_null(item)


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key, value in new.items():
        if key in old:
            before = old[key]
            if before is value:
                continue
            if isinstance(before, Mapping) and isinstance(value, Mapping):
                sub = _diff(before, value)
                if sub:
                    patch[key] = sub
                continue
            if type(before) is type(value) and before == value:
                continue
        _check_no_null(value)
        patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


def diff(old: Any, new: Any) -> dict[str, Any] | None:
    """The merge patch turning ``old`` into ``new`` (``{}``: equal), or ``None`` if none can."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return None
    try:
        return _diff(old, new)
    except _Unpatchable:
        return None


def apply(target: Any, patch: Any) -> Any:
    """``target`` with the merge patch ``patch`` applied (RFC 7396), as a new value."""
    if not isinstance(patch, Mapping):
        return patch
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply(result.get(key), value)
    return result
