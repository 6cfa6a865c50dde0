"""Webhook and GitHub request handling without a server: signatures, media types, JSON, filters."""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.delivery import Delivery
from bobrapet.impulses.github import GitHubImpulse
from bobrapet.impulses.http import HttpRequest, json_body
from bobrapet.impulses.signature import check_signature, sign
from bobrapet.impulses.sink import Accepted, Refused
from bobrapet.impulses.webhook import WebhookImpulse

SECRET = "s3cr3t-signing-key"
BODY = b'{"order": 7}'


def refused(call: Any, *args: Any) -> Refused:
    with pytest.raises(Refused) as info:
        call(*args)
    return info.value


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    expected = "sha256=" + hmac.new(SECRET.encode(), BODY, "sha256").hexdigest()
    assert sign(BODY, SECRET) == expected
    check_signature(BODY, {"x-signature-256": expected}, "X-Signature-256", SECRET)
    check_signature(
        BODY,
        {"x-signature-256": " " + expected.upper().replace("SHA256=", "sha256=")},
        "X-Signature-256",
        SECRET,
    )


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing signature header; send X-Signature-256: sha256=<hex HMAC-SHA256"),
        ({"x-signature-256": "sha256=00"}, "invalid signature in X-Signature-256"),
        ({"x-signature-256": sign(BODY + b" ", SECRET)}, "invalid signature in X-Signature-256"),
        ({"x-signature-256": sign(BODY, "other")}, "invalid signature in X-Signature-256"),
    ],
)
def test_a_missing_or_wrong_signature_is_401(headers: dict[str, str], message: str) -> None:
    error = refused(check_signature, BODY, headers, "X-Signature-256", SECRET)
    assert (error.code, error.reason) == (401, "Unauthorized")
    assert error.message.startswith(message)
    assert SECRET not in error.message and sign(BODY, SECRET) not in error.message


@pytest.mark.parametrize(
    "media", ["", "application/json", "application/json; charset=utf-8", "application/vnd.x+json"]
)
def test_json_media_types_are_accepted(media: str) -> None:
    assert json_body(HttpRequest(BODY, {"content-type": media} if media else {})) == {"order": 7}


def test_other_media_types_are_415_and_bad_json_400() -> None:
    error = refused(json_body, HttpRequest(b"<a/>", {"content-type": "text/xml"}))
    assert (error.code, error.reason) == (415, "UnsupportedMediaType")
    error = refused(json_body, HttpRequest(b"{nope", {}))
    assert (error.code, error.message) == (
        400,
        "the body is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    )
    error = refused(json_body, HttpRequest(b'{"a": NaN}', {}))
    assert error.code == 400 and "NaN is not a JSON number" in error.message
    assert json_body(HttpRequest(b"  ", {})) is None


class Sink:
    """Records what a handler accepts."""

    def __init__(self) -> None:
        self.accepted: list[tuple[Delivery, dict[str, Any]]] = []

    async def accept(self, delivery: Delivery, extra: Any = None, *, key_hint: str = "") -> Accepted:
        self.accepted.append((delivery, dict(extra or {})))
        return Accepted("default", "t", None, "r")


def context(secret: str | None = None) -> ImpulseContext:
    secrets = {"signing": {"key": secret}} if secret else {}
    return ImpulseContext("default", "hook", secrets=secrets)


async def test_webhook_checks_the_signature_before_parsing_and_passes_query_and_idempotency_key() -> None:
    hook = WebhookImpulse({"signatureHeader": "X-Sig"}, context(SECRET))
    sink = Sink()
    with pytest.raises(Refused) as info:
        await hook.handle(HttpRequest(b"not json", {"x-signature-256": sign(b"not json", SECRET)}), sink)  # type: ignore[arg-type]
    assert info.value.code == 401, "the configured header is the one checked, before the body is parsed"
    headers = {"x-sig": sign(BODY, SECRET), "idempotency-key": "abc"}
    answer = await hook.handle(HttpRequest(BODY, headers, {"a": ["1", "2"]}), sink)  # type: ignore[arg-type]
    assert (answer.status, answer.body) == (
        202,
        {"storyTrigger": "t", "namespace": "default", "decision": "Pending", "storyRun": "r"},
    )
    delivery, extra = sink.accepted[0]
    assert (delivery.body, delivery.key, extra) == ({"order": 7}, "abc", {"query": {"a": ["1", "2"]}})


def github_request(
    event: str, payload: dict[str, Any], *, secret: str | None = None, form: bool = False
) -> HttpRequest:
    raw = json.dumps(payload).encode()
    headers = {"x-github-event": event, "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    if form:
        raw = urlencode({"payload": raw.decode()}).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    else:
        headers["content-type"] = "application/json"
    if secret:
        headers["x-hub-signature-256"] = sign(raw, secret)
    return HttpRequest(raw, headers)


async def test_github_filters_events_and_actions_and_answers_200_ignored() -> None:
    hub = GitHubImpulse({"events": ["pull_request", "push"], "actions": ["opened"]}, context())
    sink = Sink()
    cases = {
        ("ping", None): "ping: GitHub checks the webhook; no run is started",
        ("issues", "opened"): "event 'issues' is not in spec.with.events (pull_request, push)",
        ("pull_request", "closed"): "action 'closed' is not in spec.with.actions (opened)",
    }
    for (event, action), reason in cases.items():
        answer = await hub.handle(github_request(event, {"action": action} if action else {}), sink)  # type: ignore[arg-type]
        assert (answer.status, answer.body) == (200, {"ignored": True, "reason": reason})
    assert sink.accepted == []
    for event, payload in (
        ("pull_request", {"action": "opened", "number": 1}),
        ("push", {"ref": "refs/heads/main"}),
    ):
        answer = await hub.handle(github_request(event, payload), sink)  # type: ignore[arg-type]
        assert answer.status == 202
    (first, extra), (second, _) = sink.accepted
    assert first.key == "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-GitHub-Delivery is the dedupe key"
    assert extra == {"query": {}, "event": "pull_request", "action": "opened", "delivery": first.key}
    assert second.body == {"ref": "refs/heads/main"}


async def test_github_signature_headers_and_form_payloads() -> None:
    hub = GitHubImpulse(None, context(SECRET))
    sink = Sink()
    good = github_request("push", {"ref": "x"}, secret=SECRET, form=True)
    assert (await hub.handle(good, sink)).status == 202  # type: ignore[arg-type]
    assert sink.accepted[0][0].body == {"ref": "x"}
    bad = github_request("push", {"ref": "x"}, secret="wrong")
    with pytest.raises(Refused) as info:
        await hub.handle(bad, sink)  # type: ignore[arg-type]
    assert (info.value.code, info.value.message.split(";")[0]) == (
        401,
        "invalid signature in X-Hub-Signature-256",
    )
    unsigned = github_request("ping", {})
    with pytest.raises(Refused) as info:
        await hub.handle(unsigned, sink)  # type: ignore[arg-type]
    assert info.value.code == 401, "the signature is checked before any filter"
    open_hub = GitHubImpulse(None, context())
    missing = HttpRequest(b"{}", {"x-github-event": "push"})
    with pytest.raises(Refused) as info:
        await open_hub.handle(missing, sink)  # type: ignore[arg-type]
    assert (info.value.code, info.value.message) == (
        400,
        "missing X-GitHub-Delivery header: this endpoint receives GitHub webhook deliveries",
    )
