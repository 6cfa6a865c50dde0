"""``meta.k8s.io/v1`` ``Table`` responses, built from a kind's printer columns (what ``kubectl get`` prints).

A client asks for a table with ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``.
Invariants, as the API server converts custom resources: the first column is ``Name``
(format ``name``); then the kind's printer columns in order (``priority`` > 0 only shown by
``-o wide``); a ``date`` cell is the age of the timestamp in Kubernetes' human form
(``5m3s``, ``2d``), a missing value is ``null`` (``<none>``); every row carries the object's
``PartialObjectMetadata`` (or the whole object with ``includeObject=Object``), which is where
``kubectl get -A`` finds the namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from bobrapet.api.kinds import Kind
from bobrapet.api.timestamps import parse_timestamp
from bobrapet.store.selectors import lookup_path

TABLE_GROUP = "meta.k8s.io"
TABLE_VERSIONS = ("v1", "v1beta1")

_NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}


def wants_table(accept: str) -> str | None:
    """The Table version (``v1``/``v1beta1``) the ``Accept`` header asks for first, or None."""
    for media_range in accept.split(","):
        kind, *params = (part.strip() for part in media_range.split(";"))
        if kind not in ("application/json", "*/*"):
            continue
        values = dict(p.split("=", 1) for p in params if "=" in p)
        if values.get("as") == "Table" and values.get("g") == TABLE_GROUP:
            version = values.get("v", "v1")
            if version in TABLE_VERSIONS:
                return version
        elif not values.get("as"):
            return None  # plain JSON is preferred over any later table range
    return None


def human_duration(seconds: float) -> str:
    """Kubernetes' ``duration.HumanDuration``: ``42s``, ``5m3s``, ``2h10m``, ``3d4h``, ``200d``, ``2y30d``."""
    total = int(seconds)
    if total < 0:
        return "<invalid>"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = total // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    days = hours // 24
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"


def _cell(value: Any, type_: str, now: datetime) -> Any:
    if value is None:
        return None
    if type_ == "date":
        moment = parse_timestamp(str(value))
        return None if moment is None else human_duration((now - moment).total_seconds())
    if type_ == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if type_ == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, dict | list):
        return None
    return value if isinstance(value, str) else str(value)


def column_definitions(kind: Kind) -> list[dict[str, Any]]:
    columns = [dict(_NAME_COLUMN)]
    for name, type_, path, priority in kind.columns:
        columns.append(
            {
                "name": name,
                "type": type_,
                "format": "",
                "description": f"{path} of the object",
                "priority": priority,
            }
        )
    return columns


def _row_object(obj: Mapping[str, Any], include: str, version: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return dict(obj)
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"{TABLE_GROUP}/{version}",
        "metadata": obj.get("metadata") or {},
    }


def table(
    kind: Kind,
    objects: Iterable[Mapping[str, Any]],
    *,
    version: str = "v1",
    include: str = "Metadata",
    list_meta: Mapping[str, Any] | None = None,
    columns: bool = True,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A ``Table`` of ``objects`` (``columns=False`` leaves the definitions out: watch events)."""
    moment = now or datetime.now(UTC)
    rows = []
    for obj in objects:
        cells: list[Any] = [str((obj.get("metadata") or {}).get("name") or "")]
        cells.extend(
            _cell(lookup_path(obj, path.lstrip(".")), type_, moment) for _, type_, path, _ in kind.columns
        )
        row: dict[str, Any] = {"cells": cells}
        attached = _row_object(obj, include, version)
        if attached is not None:
            row["object"] = attached
        rows.append(row)
    body: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": f"{TABLE_GROUP}/{version}",
        "metadata": dict(list_meta or {}),
    }
    if columns:
        body["columnDefinitions"] = column_definitions(kind)
    body["rows"] = rows
    return body
