"""Rendering objects for humans (tables, describe) and machines (json, yaml)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yaml
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from rich.table import Table  # imported where a table is built (not by `run -o json`)

from bobrapet.api.kinds import Kind

OUTPUT_FORMATS = ("table", "wide", "json", "yaml", "name", "jsonpath=TEMPLATE")
#: Tables are laid out as if the terminal were this wide: cells are never cut.
TABLE_MAX_WIDTH = 4096
#: Kinds whose objects are runs: an empty phase means nobody started them yet.
RUN_KINDS = ("StoryRun", "StepRun")
#: Extra ``-o wide`` columns (name, JSONPath) beyond the kind's printer columns.
WIDE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "StoryRun": (
        ("Steps", ".status.stepsComplete"),
        ("Total", ".status.stepsTotal"),
        ("Started", ".status.startedAt"),
        ("Finished", ".status.finishedAt"),
        ("Message", ".status.message"),
    ),
    "StepRun": (
        ("Engram", ".spec.engramRef.name"),
        ("Duration", ".status.duration"),
        ("Exit", ".status.exitCode"),
        ("Started", ".status.startedAt"),
        ("Engine", ".status.podName"),
        ("Message", ".status.lastFailureMsg"),
    ),
    "Story": (
        ("Version", ".spec.version"),
        ("Pattern", ".spec.pattern"),
        ("Queue", ".spec.policy.queue"),
    ),
    "Engram": (("Version", ".spec.version"),),
}


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


def _cell(value: Any, type_: str, path: str, kind: Kind | None = None) -> str:
    if path == ".metadata.creationTimestamp" or type_ == "date":
        return age(value)
    if value is None and path == ".status.phase" and kind is not None and kind.kind in RUN_KINDS:
        return "Pending"
    if value is None:
        return "<none>" if type_ != "integer" else "0"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


Column = tuple[str, str, str]  # (header, type, JSONPath)


def table_columns(kind: Kind, *, wide: bool) -> list[Column]:
    """The kind's printer columns after NAME (``wide`` adds the low-priority and extra ones)."""
    columns = [(name, type_, path) for name, type_, path, priority in kind.columns if wide or priority == 0]
    if wide:
        columns += [(name, "string", path) for name, path in WIDE_COLUMNS.get(kind.kind, ())]
    return columns


def header_cells(columns: Sequence[Column], *, show_namespace: bool) -> list[str]:
    """The header line's cells of a table with ``columns``."""
    return [*(["NAMESPACE"] if show_namespace else []), "NAME", *(name.upper() for name, _, _ in columns)]


def row_cells(
    kind: Kind, item: dict[str, Any], columns: Sequence[Column], *, show_namespace: bool
) -> list[str]:
    """One object's cells in a table with ``columns``."""
    meta = item.get("metadata", {})
    row = [meta.get("namespace", "")] if show_namespace else []
    row.append(meta.get("name", ""))
    row.extend(_cell(json_path(item, path), type_, path, kind) for _, type_, path in columns)
    return row


def rows_table(head: Sequence[str], rows: Iterable[Sequence[str]], *, headers: bool = True) -> Table:
    """A kubectl-style table (no borders, two spaces between columns) of text cells."""
    from rich.table import Table

    tbl = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", show_header=headers)
    for name in head:
        tbl.add_column(name)
    for row in rows:
        tbl.add_row(*(Text(cell) for cell in row))  # values are data, never rich markup
    return tbl


def table(
    kind: Kind, items: Sequence[dict[str, Any]], *, wide: bool, show_namespace: bool, headers: bool = True
) -> Table:
    columns = table_columns(kind, wide=wide)
    return rows_table(
        header_cells(columns, show_namespace=show_namespace),
        (row_cells(kind, item, columns, show_namespace=show_namespace) for item in items),
        headers=headers,
    )


def print_table(console: Console, tbl: Table) -> None:
    """Print ``tbl`` without ever truncating a cell to fit the terminal (scripts read these lines)."""
    unbounded = Console(
        file=console.file,
        width=max(console.width, TABLE_MAX_WIDTH),
        force_terminal=console.is_terminal,
        no_color=console.no_color,
    )
    unbounded.print(tbl)


def check_format(fmt: str) -> str | None:
    """None when ``fmt`` is a known ``-o`` value, else the problem (also for bad JSONPath)."""
    if fmt.startswith("jsonpath="):
        from bobrapet.cli.jsonpath import JsonPathError, parse_template

        try:
            parse_template(_unquote(fmt.removeprefix("jsonpath=")))
        except JsonPathError as err:
            return f"-o jsonpath: {err}"
        return None
    if fmt in OUTPUT_FORMATS:
        return None
    if fmt == "jsonpath":
        return "-o jsonpath needs a template, e.g. -o jsonpath='{.items[*].metadata.name}'"
    return f'unknown output format "{fmt}"; use one of: {", ".join(OUTPUT_FORMATS)}'


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def jsonpath_text(fmt: str, data: Any) -> str:
    """What ``-o jsonpath=TEMPLATE`` (``fmt``, already checked) prints for ``data``."""
    from bobrapet.cli.jsonpath import render

    return render(_unquote(fmt.removeprefix("jsonpath=")), data)


def print_objects(
    console: Console,
    kind: Kind,
    items: list[dict[str, Any]],
    fmt: str,
    *,
    single: bool,
    show_namespace: bool,
    headers: bool = True,
) -> None:
    list_obj = {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {}}
    if fmt in ("json", "yaml"):
        data: Any = items[0] if single else list_obj
        text = dump_json(data) if fmt == "json" else dump_yaml(data)
        console.out(text.rstrip("\n"), highlight=False)
    elif fmt.startswith("jsonpath="):
        text = jsonpath_text(fmt, items[0] if single else list_obj)
        console.file.write(text)  # exactly the template's text, like kubectl (no newline added)
        console.file.flush()
    elif fmt == "name":
        for item in items:
            console.out(f"{kind.singular}/{item['metadata']['name']}", highlight=False)
    else:
        print_table(
            console, table(kind, items, wide=fmt == "wide", show_namespace=show_namespace, headers=headers)
        )


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
    if kind.kind in RUN_KINDS and not (obj.get("status") or {}).get("phase"):
        lines.append("Phase:        Pending (no engine has started it yet)")
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


#: Inputs previews: strings longer than this are cut, lists and objects show this many entries.
PREVIEW_CHARS = 200
PREVIEW_ITEMS = 20


def preview(value: Any, chars: int = PREVIEW_CHARS, items: int = PREVIEW_ITEMS) -> Any:
    """``value`` with long strings cut (``… (N chars)``) and long lists/objects shortened."""
    if isinstance(value, str):
        return value if len(value) <= chars else f"{value[:chars]}… ({len(value)} chars)"
    if isinstance(value, list):
        shown = [preview(v, chars, items) for v in value[:items]]
        return shown + ([f"… ({len(value) - items} more items)"] if len(value) > items else [])
    if isinstance(value, dict):
        keys = list(value)
        result = {str(k): preview(value[k], chars, items) for k in keys[:items]}
        if len(keys) > items:
            result["…"] = f"{len(keys) - items} more keys"
        return result
    return value


def describe_inputs(record: dict[str, Any] | None) -> list[str]:
    """The ``Inputs:`` section of ``describe steprun`` from the step's inputs record."""
    if record is None:
        return ["Inputs:       <not recorded: the step has not started in an engine yet>"]
    when = f"attempt {record.get('attempt')} at {record.get('at')}"
    head = f"Inputs:       (as received by {when}; secrets redacted)"
    inputs = record.get("inputs")
    if not inputs:
        return [head, "  {}"]
    return [head, *("  " + line for line in dump_yaml(preview(inputs)).rstrip("\n").splitlines())]
