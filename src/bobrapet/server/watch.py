"""Watch streams (``?watch=true``): newline-delimited ``{"type", "object"}`` events, as the API server.

Invariants:

* ``resourceVersion`` unset or ``"0"``: the objects matching the selectors first, as
  ``ADDED`` events, then every change after the store's resourceVersion taken before that
  list (no change is lost between them); any other value: the changes after it (an expired
  one ends the stream with an ``ERROR`` event holding a ``410 Expired`` Status);
* with selectors, an object that stops matching is sent as ``DELETED`` (if this stream sent
  it before) and one that starts matching as ``ADDED``, as the API server's watch cache does;
* ``sendInitialEvents=true`` ends the initial events with a ``BOOKMARK`` annotated
  ``k8s.io/initial-events-end``; other bookmarks are not sent (``allowWatchBookmarks`` is
  accepted and ignored);
* a stream ends after ``timeoutSeconds`` (default and ceiling: the context's
  ``max_watch_seconds``), when the service shuts down, or when the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from bobrapet.api.errors import StatusError
from bobrapet.runtime.informer import bookmark
from bobrapet.server.context import ApiContext
from bobrapet.server.responses import encode
from bobrapet.server.targets import Target
from bobrapet.store.client import Resource, WatchEvent
from bobrapet.store.selectors import FieldSelector, LabelSelector
from bobrapet.store.sqlite.indexing import field_set

INITIAL_EVENTS_END = "k8s.io/initial-events-end"

Render = Callable[[Resource], Any]


@dataclass(frozen=True)
class WatchRequest:
    target: Target
    labels: LabelSelector
    fields: FieldSelector
    resource_version: str | None
    timeout: float
    send_initial_events: bool
    render: Render


def _line(event_type: str, obj: Any) -> bytes:
    return encode({"type": event_type, "object": obj}) + b"\n"


class _Filter:
    """Turns store events into the events a selector-filtered watch sends."""

    def __init__(self, request: WatchRequest) -> None:
        self.request = request
        self.sent: set[tuple[str, str]] = set()

    def matches(self, obj: Resource) -> bool:
        kind = self.request.target.kind
        labels = (obj.get("metadata") or {}).get("labels")
        return self.request.labels.matches(labels) and self.request.fields.matches(field_set(kind, obj))

    def event(self, event: WatchEvent) -> str | None:
        metadata = event.object.get("metadata") or {}
        key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
        if not self.matches(event.object):
            if key in self.sent:
                self.sent.discard(key)
                return "DELETED"
            return None
        if event.type == "DELETED":
            self.sent.discard(key)
            return "DELETED"
        if key not in self.sent:
            self.sent.add(key)
            if event.type == "ADDED" or self.filtered:
                return "ADDED"  # with selectors: it starts matching
        return "MODIFIED"

    @property
    def filtered(self) -> bool:
        return bool(self.request.labels.requirements or self.request.fields.requirements)


async def _initial(ctx: ApiContext, request: WatchRequest, flt: _Filter) -> tuple[list[bytes], str | None]:
    """The initial ADDED lines and the resourceVersion to watch from."""
    target = request.target
    since = await bookmark(ctx.client)
    objects = await ctx.client.list(target.kind, target.namespace)
    lines = []
    for obj in objects:
        kind = flt.event(WatchEvent("ADDED", obj))
        if kind is not None:
            lines.append(_line(kind, request.render(obj)))
    if request.send_initial_events:
        mark = {
            "kind": target.kind.kind,
            "apiVersion": target.kind.api_version,
            "metadata": {"resourceVersion": since or "", "annotations": {INITIAL_EVENTS_END: "true"}},
        }
        lines.append(_line("BOOKMARK", mark))
    return lines, since


async def stream(ctx: ApiContext, request: WatchRequest) -> AsyncIterator[bytes]:
    """The event lines of one watch (see the module docstring)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request.timeout
    flt = _Filter(request)
    target = request.target
    try:
        if request.resource_version in (None, "", "0"):
            lines, since = await _initial(ctx, request, flt)
            for line in lines:
                yield line
        else:
            since = request.resource_version
        events = ctx.client.watch(target.kind, target.namespace, since)
    except StatusError as err:
        yield _line("ERROR", err.to_status())
        return
    stopping = asyncio.ensure_future(ctx.stopping.wait())
    try:
        while not ctx.stopping.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            upcoming = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait(
                {upcoming, stopping}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if upcoming not in done:
                upcoming.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, StatusError):
                    await upcoming
                return
            try:
                event = upcoming.result()
            except StopAsyncIteration:
                return
            except StatusError as err:
                yield _line("ERROR", err.to_status())
                return
            kind = flt.event(event)
            if kind is not None:
                yield _line(kind, request.render(event.object))
    finally:
        stopping.cancel()
        closer = getattr(events, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
