"""``github``: start a run per GitHub webhook delivery (``bobrapet.impulses.github:GitHubImpulse``).

``spec.with``: ``events`` (accepted ``X-GitHub-Event`` names; empty or missing: all),
``actions`` (accepted payload ``action`` values; empty or missing: all; a payload without an
action passes), ``maxBodyBytes`` (default 25 MiB, GitHub's own limit). ``spec.secrets.signing``
binds the Secret whose ``key`` is the webhook secret set on GitHub.

Handled like a ``webhook`` request (413, 401, 415, 400, 202), with these differences: the
signature is ``X-Hub-Signature-256``; ``X-GitHub-Event`` and ``X-GitHub-Delivery`` are
required (400); the payload may also come form-encoded (GitHub's
``application/x-www-form-urlencoded`` content type: the JSON is the ``payload`` field); the
delivery key — the dedupe token of the template's ``mode: token`` — is ``X-GitHub-Delivery``,
so a redelivery starts no second run; the mapping also sees ``event``, ``action`` and
``delivery``.

Filtered deliveries are answered **200** ``{"ignored": true, "reason": ...}`` and store
nothing (202 would say the delivery was accepted for processing; GitHub counts any 2xx as
delivered, so it does not retry them): ``ping`` (sent when the hook is created), an event not
in ``events``, an action not in ``actions``. A signature is checked before any filter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from pydantic import Field

from bobrapet.api.types.base import WireModel
from bobrapet.impulses.config import parse_config
from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.delivery import Deliver, Delivery
from bobrapet.impulses.http import HttpAnswer, HttpRequest, is_json_type, parse_json, unsupported
from bobrapet.impulses.signature import check_signature
from bobrapet.impulses.sink import Refused, TriggerSink
from bobrapet.impulses.webhook import MIB, signing_key

SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "x-github-event"
DELIVERY_HEADER = "x-github-delivery"
FORM = "application/x-www-form-urlencoded"
NAME_PATTERN = r"^[a-z_]+$"


class GitHubConfig(WireModel):
    """``spec.with`` of a ``github`` Impulse."""

    events: list[str] | None = Field(None, description="Event names to accept (X-GitHub-Event); empty: all.")
    actions: list[str] | None = Field(None, description="Payload actions to accept; empty: all.")
    max_body_bytes: int = Field(
        25 * MIB, ge=1, le=100 * MIB, description="Largest accepted payload in bytes (larger: 413)."
    )


def ignored(reason: str) -> HttpAnswer:
    return HttpAnswer(200, {"ignored": True, "reason": reason})


def _required(request: HttpRequest, header: str) -> str:
    value = request.headers.get(header, "").strip()
    if not value:
        name = "-".join(part.capitalize() for part in header.split("-")).replace("Github", "GitHub")
        raise Refused(f"missing {name} header: this endpoint receives GitHub webhook deliveries")
    return value


def payload(request: HttpRequest) -> Any:
    """The delivery's JSON payload (JSON body, or the ``payload`` field of a form)."""
    media = request.media_type
    if media == FORM:
        fields = parse_qs(request.body.decode("utf-8", errors="replace"), keep_blank_values=True)
        values = fields.get("payload")
        if not values:
            raise Refused("the form has no payload field (GitHub sends the JSON payload in it)")
        return parse_json(values[0])
    if not is_json_type(media):
        raise unsupported(media, f"application/json (or {FORM})")
    return parse_json(request.body)


class GitHubImpulse:
    """Turn GitHub webhook deliveries into StoryTriggers (see the module docstring)."""

    def __init__(self, config: Mapping[str, Any] | None, context: ImpulseContext) -> None:
        self.config = parse_config(GitHubConfig, config, "github")
        self.context = context
        self.max_body_bytes = self.config.max_body_bytes
        self.key = signing_key(context)
        self.events = frozenset(self.config.events or ())
        self.actions = frozenset(self.config.actions or ())

    async def run(self, deliver: Deliver, stop: asyncio.Event) -> None:
        await stop.wait()

    def filtered(self, event: str, action: str | None) -> str | None:
        """Why a delivery of ``event``/``action`` starts no run (``None``: it does)."""
        if event == "ping":
            return "ping: GitHub checks the webhook; no run is started"
        if self.events and event not in self.events:
            return f"event {event!r} is not in spec.with.events ({', '.join(sorted(self.events))})"
        if self.actions and action is not None and action not in self.actions:
            return f"action {action!r} is not in spec.with.actions ({', '.join(sorted(self.actions))})"
        return None

    async def handle(self, request: HttpRequest, sink: TriggerSink) -> HttpAnswer:
        if self.key is not None:
            check_signature(request.body, request.headers, SIGNATURE_HEADER, self.key)
        event = _required(request, EVENT_HEADER)
        delivery_id = _required(request, DELIVERY_HEADER)
        body = payload(request)
        action = body.get("action") if isinstance(body, dict) else None
        action = action if isinstance(action, str) else None
        reason = self.filtered(event, action)
        if reason is not None:
            if self.context.debug:
                self.context.log.info("delivery %s ignored: %s", delivery_id, reason)
            return ignored(reason)
        delivery = Delivery(body, request.headers, delivery_id, self.context.clock.now())
        self.context.trace(delivery)
        extra = {"query": dict(request.query), "event": event, "action": action, "delivery": delivery_id}
        accepted = await sink.accept(delivery, extra)
        return HttpAnswer(202, accepted.to_json())
