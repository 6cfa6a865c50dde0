"""``bobrapet get KIND [NAME] -w``: the current objects, then one line per change, as kubectl.

The loop takes a bookmark (the store's resourceVersion) *before* it lists, then watches
from that bookmark, so no change is lost between the list and the watch. What it has shown
is kept as ``shown`` (object key → last object printed), which makes the stream exact:

* an event whose object is not newer than what was shown (the list already held it) is
  dropped, so nothing is printed twice;
* label and field selectors are applied to every event as the API server does for a
  selected watch: an object that starts matching is ``ADDED``, one that stops matching is
  ``DELETED``; a ``DELETED`` of an object never shown is dropped;
* when the store has pruned events the watch still needed (``410 Expired``), the loop
  lists again and prints the difference (added, modified, deleted) before it watches on.

The printer (:class:`WatchPrinter`) writes tables without repeating the header (columns
keep the widths of the first rows and only grow), ``json`` one object per line, ``yaml``
documents separated by ``---``; with ``--output-watch-events`` each line carries the event
type (an ``EVENT`` column, or ``{"type", "object"}`` documents). The loop runs until the
process is interrupted; it never writes to the store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from bobrapet.api.errors import NotFound, StatusError
from bobrapet.api.kinds import Kind
from bobrapet.cli.output import (
    Column,
    dump_yaml,
    header_cells,
    jsonpath_text,
    row_cells,
    table_columns,
)
from bobrapet.host.embedded import ControlPlane
from bobrapet.runtime.informer import bookmark
from bobrapet.store.client import Client, Resource
from bobrapet.store.selectors import parse_field_selector, parse_label_selector
from bobrapet.store.sqlite.indexing import field_set, selectable_paths

#: How often a watch looks for a home that does not exist yet (seconds).
HOME_POLL = 0.5
#: How late a change made by another process may be seen (seconds; the store polls its log).
WATCH_POLL = 0.1

Key = tuple[str, str]  # (namespace, name)
Change = tuple[str, Resource]  # (ADDED|MODIFIED|DELETED, object)


def key_of(obj: Resource) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def version_of(obj: Resource) -> int:
    value = (obj.get("metadata") or {}).get("resourceVersion")
    return int(value) if isinstance(value, str | int) and str(value).isdigit() else 0


@dataclass(frozen=True)
class Selection:
    """Which objects a watch shows: a kind, a namespace (None: all), a name, selectors."""

    kind: Kind
    namespace: str | None
    name: str | None = None
    labels: str | None = None
    fields: str | None = None

    def matcher(self) -> Callable[[Resource], bool]:
        """A test of one object (selectors are parsed once; bad ones raise BadRequest)."""
        label_sel = parse_label_selector(self.labels)
        allowed = ("metadata.name", "metadata.namespace", *selectable_paths(self.kind))
        field_sel = parse_field_selector(self.fields, allowed)

        def matches(obj: Resource) -> bool:
            meta = obj.get("metadata") or {}
            if self.name is not None and meta.get("name") != self.name:
                return False
            return label_sel.matches(meta.get("labels")) and field_sel.matches(field_set(self.kind, obj))

        return matches


def change_of(shown: dict[Key, Resource], event_type: str, obj: Resource, matches: bool) -> str | None:
    """The line to print for one watch event (None: nothing), updating ``shown``."""
    key = key_of(obj)
    before = shown.get(key)
    if before is not None and version_of(obj) <= version_of(before):
        return None  # already shown (the list held this state or a newer one)
    if event_type == "DELETED" or not matches:
        if before is None:
            return None
        del shown[key]
        return "DELETED"
    shown[key] = obj
    return "ADDED" if before is None else "MODIFIED"


def resync(shown: dict[Key, Resource], current: Iterable[Resource]) -> list[Change]:
    """The changes from ``shown`` to ``current`` (after lost events), updating ``shown``."""
    changes: list[Change] = []
    seen: set[Key] = set()
    for obj in current:
        key = key_of(obj)
        seen.add(key)
        before = shown.get(key)
        if before is None or version_of(obj) > version_of(before):
            changes.append(("ADDED" if before is None else "MODIFIED", obj))
            shown[key] = obj
    for key in [k for k in shown if k not in seen]:
        changes.append(("DELETED", shown.pop(key)))
    return changes


@dataclass
class WatchPrinter:
    """Prints the objects of a watch in one ``-o`` format (see the module docstring)."""

    console: Console
    kind: Kind
    fmt: str
    show_namespace: bool = False
    headers: bool = True
    events: bool = False
    _columns: list[Column] = field(default_factory=list)
    _widths: list[int] = field(default_factory=list)
    _documents: int = 0

    def __post_init__(self) -> None:
        self._columns = table_columns(self.kind, wide=self.fmt == "wide")

    def print(self, changes: Sequence[Change]) -> None:
        """Print ``changes`` (a table's columns fit all of them and every earlier row)."""
        if not changes:
            return
        if self.fmt in ("table", "wide"):
            self._rows(changes)
        else:
            for event_type, obj in changes:
                self._document(event_type, obj)
        self.console.file.flush()

    def _rows(self, changes: Sequence[Change]) -> None:
        rows = [self._cells(t, obj) for t, obj in changes]
        first = not self._widths
        if first and self.headers:
            head = header_cells(self._columns, show_namespace=self.show_namespace)
            rows.insert(0, (["EVENT"] if self.events else []) + head)
        for row in rows:
            if len(self._widths) < len(row):
                self._widths += [0] * (len(row) - len(self._widths))
            self._widths = [max(w, len(c)) for w, c in zip(self._widths, row, strict=False)]
        for row in rows:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, self._widths, strict=False))
            self._write(line.rstrip() + "\n")

    def _cells(self, event_type: str, obj: Resource) -> list[str]:
        cells = row_cells(self.kind, obj, self._columns, show_namespace=self.show_namespace)
        return [event_type, *cells] if self.events else cells

    def _document(self, event_type: str, obj: Resource) -> None:
        data: Any = {"type": event_type, "object": obj} if self.events else obj
        if self.fmt == "json":
            self._write(json.dumps(data, ensure_ascii=False) + "\n")
        elif self.fmt == "yaml":
            self._write(("---\n" if self._documents else "") + dump_yaml(data))
        elif self.fmt == "name":
            name = f"{self.kind.singular}/{obj['metadata']['name']}"
            self._write((f"{event_type} {name}" if self.events else name) + "\n")
        else:
            self._write(jsonpath_text(self.fmt, data))
        self._documents += 1

    def _write(self, text: str) -> None:
        self.console.file.write(text)


async def _current(client: Client, selection: Selection, *, missing_ok: bool = False) -> list[Resource]:
    """The selected objects now (a named one that does not exist: NotFound, or none)."""
    kind, ns = selection.kind, selection.namespace
    if selection.name is None:
        return await client.list(kind, ns, labels=selection.labels, fields=selection.fields)
    try:
        return [await client.get(kind, selection.name, ns)]
    except NotFound:
        if missing_ok:
            return []
        raise


async def open_home(plane: ControlPlane, poll: float = HOME_POLL) -> Client:
    """The home's store, once its state file exists (a watch started before the first run)."""
    while not plane.exists:
        await asyncio.sleep(poll)
    return plane.client


async def watch_objects(
    client: Client,
    selection: Selection,
    printer: WatchPrinter,
    *,
    watch_only: bool = False,
    arrange: Callable[[list[Resource]], list[Resource]] = list,
) -> None:
    """Print the selected objects (unless ``watch_only``), then every change, until cancelled.

    ``arrange`` orders the first list (``--sort-by``); changes come in the store's order.
    """
    matches = selection.matcher()
    since = await bookmark(client)
    first = await _current(client, selection)
    shown = {key_of(obj): obj for obj in first}
    if not watch_only:
        printer.print([("ADDED", obj) for obj in arrange(first)])
    while True:
        try:
            async for event in client.watch(selection.kind, selection.namespace, since=since):
                since = str(max(version_of(event.object), int(since or 0)))
                change = change_of(shown, event.type, event.object, matches(event.object))
                if change is not None:
                    printer.print([(change, event.object)])
            return  # the store was closed
        except StatusError as exc:
            if exc.code != 410:
                raise
            since = await bookmark(client)
            printer.print(resync(shown, await _current(client, selection, missing_ok=True)))
