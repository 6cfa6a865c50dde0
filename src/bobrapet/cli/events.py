"""The ``Events:`` section of ``bobrapet describe`` (like kubectl's).

Events about an object are found by its uid (field selector ``involvedObject.uid``), so an
Event left by an earlier object of the same name is never shown for a new one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bobrapet.api.kinds import EVENT, Kind
from bobrapet.cli.output import age
from bobrapet.store.client import Client

CLUSTER_EVENTS_NAMESPACE = "default"


async def events_of(client: Client, kind: Kind, obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Events about ``obj``, oldest last occurrence first."""
    metadata = obj.get("metadata") or {}
    uid = metadata.get("uid")
    if not uid:
        return []
    namespace = metadata.get("namespace") if kind.namespaced else CLUSTER_EVENTS_NAMESPACE
    items = await client.list(
        EVENT, namespace or CLUSTER_EVENTS_NAMESPACE, fields=f"involvedObject.uid={uid}"
    )
    return sorted(items, key=lambda e: str(e.get("lastTimestamp") or e.get("firstTimestamp") or ""))


def events_section(events: list[dict[str, Any]], now: datetime | None = None) -> str:
    """``Events:`` followed by a TYPE/REASON/AGE/FROM/MESSAGE table, or ``Events:  <none>``."""
    if not events:
        return "Events:       <none>"
    rows = [("TYPE", "REASON", "AGE", "FROM", "MESSAGE")]
    for event in events:
        count = int(event.get("count") or 1)
        last = age(event.get("lastTimestamp"), now)
        when = f"{last} (x{count} over {age(event.get('firstTimestamp'), now)})" if count > 1 else last
        source = (event.get("source") or {}).get("component") or event.get("reportingComponent") or ""
        rows.append(
            (
                str(event.get("type") or ""),
                str(event.get("reason") or ""),
                when,
                source,
                str(event.get("message") or ""),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["Events:"]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        lines.append("  " + "  ".join(cells) + "  " + row[4])
    return "\n".join(lines)
