"""``webhook``: start a run per HTTP POST (``bobrapet.impulses.webhook:WebhookImpulse``).

``spec.with``: ``maxBodyBytes`` (default 10 MiB; larger bodies get 413), ``signatureHeader``
(default ``X-Signature-256``). ``spec.secrets.signing`` binds the Secret whose ``key`` signs
request bodies.

A request to ``POST /impulses/<namespace>/<impulse>`` on the ``bobrapet serve`` port is
handled in this order: body over the limit → 413 (the server stops reading at the limit);
with the signing secret bound, a missing or wrong ``sha256=<hex HMAC-SHA256 of the raw
body>`` signature → 401; a media type other than JSON → 415; a body that is not JSON → 400;
the inputs (``spec.mapping`` over ``body``, ``headers``, ``query`` and ``key``, or the body
when it is a JSON object) cannot be built → 400; then the StoryTrigger is stored and the
answer is 202 with ``{"storyTrigger", "namespace", "decision", "storyRun"}``. The delivery key
is the ``Idempotency-Key`` header (used as the dedupe token with ``mode: token``).

Invariants: nothing is stored for a refused request; the runtime itself holds no connection
(``run`` waits for ``stop``): the server calls :meth:`WebhookImpulse.handle` for each request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from bobrapet.api.types.base import WireModel
from bobrapet.impulses.config import parse_config
from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.delivery import Deliver, Delivery
from bobrapet.impulses.http import IDEMPOTENCY_KEY, HttpAnswer, HttpRequest, json_body
from bobrapet.impulses.signature import check_signature
from bobrapet.impulses.sink import TriggerSink

MIB = 1024 * 1024
SIGNING_SECRET = "signing"
SIGNING_KEY = "key"
KEY_HINT = "send an Idempotency-Key header"


class WebhookConfig(WireModel):
    """``spec.with`` of a ``webhook`` Impulse."""

    max_body_bytes: int = Field(
        10 * MIB, ge=1, le=100 * MIB, description="Largest accepted request body in bytes (larger: 413)."
    )
    signature_header: str = Field(
        "X-Signature-256",
        min_length=1,
        pattern=r"^[A-Za-z0-9-]+$",
        description="Header carrying sha256=<hex HMAC-SHA256 of the body> (with the signing secret).",
    )


def signing_key(context: ImpulseContext) -> str | None:
    """The signing secret's ``key`` when the Impulse binds one."""
    value = (context.secrets.get(SIGNING_SECRET) or {}).get(SIGNING_KEY)
    return value if isinstance(value, str) else None


class WebhookImpulse:
    """Turn HTTP POSTs into StoryTriggers (see the module docstring)."""

    def __init__(self, config: Mapping[str, Any] | None, context: ImpulseContext) -> None:
        self.config = parse_config(WebhookConfig, config, "webhook")
        self.context = context
        self.max_body_bytes = self.config.max_body_bytes
        self.key = signing_key(context)

    async def run(self, deliver: Deliver, stop: asyncio.Event) -> None:
        await stop.wait()

    def verify(self, request: HttpRequest) -> None:
        if self.key is not None:
            check_signature(request.body, request.headers, self.config.signature_header, self.key)

    async def handle(self, request: HttpRequest, sink: TriggerSink) -> HttpAnswer:
        self.verify(request)
        body = json_body(request)
        delivery = Delivery(
            body, request.headers, request.headers.get(IDEMPOTENCY_KEY), self.context.clock.now()
        )
        self.context.trace(delivery)
        accepted = await sink.accept(delivery, {"query": dict(request.query)}, key_hint=KEY_HINT)
        return HttpAnswer(202, accepted.to_json())
