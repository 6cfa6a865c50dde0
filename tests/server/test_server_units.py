"""Pure parts of the HTTP API: patches, tables, paths, tokens, bind checks."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from bobrapet.api.errors import StatusError
from bobrapet.api.kinds import CONFIG_MAP, STORY, STORY_RUN
from bobrapet.server import patch
from bobrapet.server.auth import token_matches
from bobrapet.server.service import ServeError, bind, check_bind, is_loopback
from bobrapet.server.table import human_duration, table, wants_table
from bobrapet.server.targets import resolve

# ----------------------------------------------------------------------------- JSON patch


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": 1}
    ops = [
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "add", "path": "/a/b/0", "value": 0},
        {"op": "replace", "path": "/c", "value": 2},
        {"op": "copy", "from": "/c", "path": "/d"},
        {"op": "move", "from": "/d", "path": "/e~1f"},
        {"op": "remove", "path": "/a/b/1"},
        {"op": "test", "path": "/e~1f", "value": 2},
    ]
    assert patch.apply(patch.JSON_PATCH, doc, ops) == {"a": {"b": [0, 2, 3]}, "c": 2, "e/f": 2}
    assert doc == {"a": {"b": [1, 2]}, "c": 1}  # never mutated


@pytest.mark.parametrize(
    ("ops", "code"),
    [
        ([{"op": "remove", "path": "/missing"}], 422),
        ([{"op": "replace", "path": "/missing", "value": 1}], 422),
        ([{"op": "test", "path": "/c", "value": 2}], 422),
        ([{"op": "add", "path": "/a/b/9", "value": 1}], 422),
        ([{"op": "add", "path": "/a/b/01", "value": 1}], 422),
        ([{"op": "frobnicate", "path": "/c"}], 400),
        ([{"op": "add", "path": "c", "value": 1}], 400),
        ([{"op": "add", "path": "/c"}], 400),
        (["not an object"], 400),
    ],
)
def test_json_patch_errors(ops: list[object], code: int) -> None:
    with pytest.raises(StatusError) as caught:
        patch.apply(patch.JSON_PATCH, {"a": {"b": [1]}, "c": 1}, ops)
    assert caught.value.code == code
    assert "operation 0" in caught.value.message


def test_merge_and_strategic_patches() -> None:
    target = {"data": {"a": "1", "b": "2"}, "list": [1, 2]}
    assert patch.apply(patch.MERGE, target, {"data": {"a": None}, "list": [3]}) == {
        "data": {"b": "2"},
        "list": [3],
    }
    strategic = {
        "data": {"a": None, "$retainKeys": ["b"]},
        "$setElementOrder/list": [],
        "extra": {"$patch": "delete"},
    }
    assert patch.apply(patch.STRATEGIC, target, strategic) == {"data": {"b": "2"}, "list": [1, 2]}
    replaced = patch.apply(patch.STRATEGIC, target, {"data": {"$patch": "replace", "z": "9"}})
    assert replaced["data"] == {"z": "9"}


def test_patch_types_by_kind() -> None:
    assert patch.patch_type("application/merge-patch+json; charset=utf-8", STORY) == patch.MERGE
    assert patch.patch_type("application/strategic-merge-patch+json", CONFIG_MAP) == patch.STRATEGIC
    for media, words in (
        ("application/strategic-merge-patch+json", "--type merge"),
        ("application/apply-patch+yaml", "server-side apply"),
        ("text/plain", "accepted media types"),
    ):
        with pytest.raises(StatusError) as caught:
            patch.patch_type(media, STORY)
        assert caught.value.code == 415 and words in caught.value.message
    with pytest.raises(StatusError) as bad:
        patch.parse(b"[1]", patch.MERGE)
    assert bad.value.code == 400


# ----------------------------------------------------------------------------- tables


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (10 * 3600, "10h"),
        (50 * 3600, "2d2h"),
        (30 * 86400, "30d"),
        (800 * 86400, "2y70d"),
        (-1, "<invalid>"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_wants_table() -> None:
    assert wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json") == "v1"
    assert wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io") == "v1beta1"
    assert wants_table("application/json") is None
    assert wants_table("application/json, application/json;as=Table;v=v1;g=meta.k8s.io") is None
    assert wants_table("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io") is None


def test_table_cells_follow_the_column_types() -> None:
    run = {
        "metadata": {"name": "r", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"storyRef": {"name": "s"}},
        "status": {"phase": "Running"},
    }
    body = table(STORY_RUN, [run], now=datetime(2026, 1, 1, 0, 2, 5, tzinfo=UTC), include="Object")
    assert body["rows"][0]["cells"] == ["r", "s", "Running", None, "2m5s"]
    assert body["rows"][0]["object"] == run


# ----------------------------------------------------------------------------- paths, auth, bind


def test_resolve_paths() -> None:
    assert resolve("runs.bubustack.io", "v1alpha1", "storyruns", namespace="a", name="b").kind is STORY_RUN
    assert resolve("", "v1", "configmaps", namespace="a").is_collection
    for args, kwargs in (
        (("runs.bubustack.io", "v1alpha1", "nope"), {}),
        (("catalog.bubustack.io", "v1alpha1", "engramtemplates"), {"namespace": "a"}),
        (("runs.bubustack.io", "v1alpha1", "storyruns"), {"name": "x"}),
        (("", "v1", "configmaps"), {"namespace": "a", "name": "x", "subresource": "status"}),
        (
            ("runs.bubustack.io", "v1alpha1", "storyruns"),
            {"namespace": "a", "name": "x", "subresource": "scale"},
        ),
    ):
        with pytest.raises(StatusError) as caught:
            resolve(*args, **kwargs)
        assert caught.value.code == 404


def test_token_matches() -> None:
    assert token_matches(b"Bearer abc", b"abc")
    assert token_matches(b"bearer   abc ", b"abc")
    assert not token_matches(b"Bearer abd", b"abc")
    assert not token_matches(b"Basic abc", b"abc")
    assert not token_matches(b"", b"abc")


def test_bind_rules() -> None:
    assert (
        is_loopback("127.0.0.1")
        and is_loopback("::1")
        and is_loopback("localhost")
        and is_loopback("127.1.2.3")
    )
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "token")
    with pytest.raises(ServeError, match="--token"):
        check_bind("0.0.0.0", None)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_accepted_connections_send_small_writes_at_once(host: str) -> None:
    """The listener says it is TCP (asyncio turns Nagle's algorithm off only then) and sets
    TCP_NODELAY, which accepted connections inherit: a response written as head then body
    must not wait for the client's delayed ACK (40 ms per answer)."""
    listener = bind(host, 0)
    try:
        assert listener.proto == socket.IPPROTO_TCP
        with socket.create_connection(listener.getsockname()[:2]):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        listener.close()
