"""Rendering objects for humans (tables, describe) and machines (json, yaml)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from bobrapet.api.kinds import Kind

OUTPUT_FORMATS = ("table", "wide", "json", "yaml", "name")


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def json_path(obj: Any, path: str) -> Any:
    """Value at a simple ``.a.b.c`` path, or None."""
    current = obj
    for part in path.strip(".").split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """Kubernetes-style age: ``42s``, ``5m``, ``3h``, ``2d``."""
    if not timestamp:
        return "<unknown>"
    try:
        created = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    seconds = max(int(((now or datetime.now(UTC)) - created).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _cell(value: Any, type_: str, path: str) -> str:
    if path == ".metadata.creationTimestamp":
        return age(value)
    if value is None:
        return "<none>" if type_ != "integer" else "0"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def table(kind: Kind, items: Sequence[dict[str, Any]], *, wide: bool, show_namespace: bool) -> Table:
    columns = [c for c in kind.columns if wide or c[3] == 0]
    tbl = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    if show_namespace:
        tbl.add_column("NAMESPACE")
    tbl.add_column("NAME")
    for name, _, _, _ in columns:
        tbl.add_column(name.upper())
    for item in items:
        meta = item.get("metadata", {})
        row = [meta.get("namespace", "")] if show_namespace else []
        row.append(meta.get("name", ""))
        row.extend(_cell(json_path(item, path), type_, path) for _, type_, path, _ in columns)
        tbl.add_row(*row)
    return tbl


def print_objects(
    console: Console,
    kind: Kind,
    items: list[dict[str, Any]],
    fmt: str,
    *,
    single: bool,
    show_namespace: bool,
) -> None:
    if fmt in ("json", "yaml"):
        data: Any = (
            items[0] if single else {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {}}
        )
        text = dump_json(data) if fmt == "json" else dump_yaml(data)
        console.out(text.rstrip("\n"), highlight=False)
    elif fmt == "name":
        for item in items:
            console.out(f"{kind.singular}/{item['metadata']['name']}", highlight=False)
    else:
        console.print(table(kind, items, wide=fmt == "wide", show_namespace=show_namespace))


def _secret_size(value: Any) -> int:
    """Decoded length of one base64 ``Secret.data`` value (raw length if not base64)."""
    text = str(value)
    try:
        return len(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return len(text.encode())


def run_story_line(run: dict[str, Any]) -> str:
    """Which Story (generation, version, stored copy) a StoryRun executes."""
    ref = (run.get("spec") or {}).get("storyRef") or {}
    namespace = ref.get("namespace") or (run.get("metadata") or {}).get("namespace") or "default"
    story = f"{namespace}/{ref.get('name', '')}"
    pinned = (run.get("status") or {}).get("storySnapshot")
    if not isinstance(pinned, dict):
        wanted = f", version {ref['version']}" if ref.get("version") else ""
        return f"{story} (not started{wanted}: the run fixes its Story when it starts)"
    parts = [f"generation {pinned.get('generation', '?')}"]
    if pinned.get("version"):
        parts.append(f"version {pinned['version']}")
    parts.append(f"copy configmap/{pinned.get('name', '')}")
    return f"{story} ({', '.join(parts)})"


def describe(kind: Kind, obj: dict[str, Any]) -> str:
    """A readable, sectioned view of one object (like ``kubectl describe``)."""
    meta = obj.get("metadata", {})
    lines = [
        f"Name:         {meta.get('name', '')}",
    ]
    if kind.namespaced:
        lines.append(f"Namespace:    {meta.get('namespace', '')}")
    lines += [
        f"Kind:         {kind.kind}",
        f"API Version:  {kind.api_version}",
        f"Created:      {meta.get('creationTimestamp', '')} ({age(meta.get('creationTimestamp'))} ago)",
        f"Generation:   {meta.get('generation', '')}",
        f"UID:          {meta.get('uid', '')}",
    ]
    if kind.kind == "StoryRun":
        lines.append(f"Story:        {run_story_line(obj)}")
    for label in ("labels", "annotations"):
        values = meta.get(label) or {}
        rendered = ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "<none>"
        lines.append(f"{label.capitalize() + ':':<14}{rendered}")
    if meta.get("finalizers"):
        lines.append(f"Finalizers:   {', '.join(meta['finalizers'])}")
    if meta.get("deletionTimestamp"):
        lines.append(f"Deleting:     since {meta['deletionTimestamp']}")
    owners = meta.get("ownerReferences") or []
    if owners:
        lines.append("Owners:       " + ", ".join(f"{o.get('kind')}/{o.get('name')}" for o in owners))
    for section in ("spec", "data", "status"):
        value = obj.get(section)
        if value is None:
            continue
        if section == "data" and kind.kind == "Secret" and isinstance(value, dict):
            # Like kubectl: never print secret values, only their decoded sizes.
            lines.append("Data:")
            lines.extend(f"  {key}: {_secret_size(raw)} bytes" for key, raw in sorted(value.items()))
            continue
        if section == "status" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "conditions"}
            if not value:
                continue
        lines.append(f"{section.capitalize()}:")
        lines.extend("  " + line for line in dump_yaml(value).rstrip("\n").splitlines())
    conditions = (obj.get("status") or {}).get("conditions") or []
    if conditions:
        lines.append("Conditions:")
        lines.append(f"  {'TYPE':<14}{'STATUS':<8}{'REASON':<24}MESSAGE")
        for c in conditions:
            lines.append(
                f"  {c.get('type', ''):<14}{c.get('status', ''):<8}"
                f"{c.get('reason', ''):<24}{c.get('message', '')}"
            )
    return "\n".join(lines)
