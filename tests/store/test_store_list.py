"""Listing with namespaces, label selectors and field selectors."""

from __future__ import annotations

import pytest

from bobrapet.api.errors import BadRequest
from bobrapet.api.kinds import ENGRAM_TEMPLATE, STEP_RUN, STORY
from bobrapet.store.sqlite import SqliteClient

from .store_helpers import step_run, story


async def _names(client: SqliteClient, **kwargs: str) -> list[str]:
    return [o["metadata"]["name"] for o in await client.list(STORY, **kwargs)]


@pytest.fixture
async def labelled(client: SqliteClient) -> SqliteClient:
    await client.create(story("a", metadata={"labels": {"env": "prod", "tier": "web"}}))
    await client.create(story("b", metadata={"labels": {"env": "dev", "tier": "db"}}))
    await client.create(story("c", metadata={"labels": {"env": "test"}}))
    await client.create(story("d"))
    return client


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", ["a"]),
        ("env==prod", ["a"]),
        ("env!=prod", ["b", "c", "d"]),
        ("env in (prod,dev)", ["a", "b"]),
        ("env notin (prod)", ["b", "c", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("env in (prod, dev),tier!=web", ["b"]),
        ("env=prod,tier=db", []),
        ("", ["a", "b", "c", "d"]),
    ],
)
async def test_label_selectors(labelled: SqliteClient, selector: str, expected: list[str]) -> None:
    assert await _names(labelled, labels=selector) == expected


async def test_label_selector_follows_updates(labelled: SqliteClient) -> None:
    obj = await labelled.get(STORY, "d")
    obj["metadata"]["labels"] = {"env": "prod"}
    await labelled.update(obj)
    assert await _names(labelled, labels="env=prod") == ["a", "d"]
    obj = await labelled.get(STORY, "a")
    del obj["metadata"]["labels"]
    await labelled.update(obj)
    assert await _names(labelled, labels="env=prod") == ["d"]


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("env in prod", "must be followed by a parenthesised list"),
        ("env=(x)", "expected a label value"),
        ("Bad Key=x", "found 'Key'"),
        ("-bad=x", "must start and end with an alphanumeric"),
        ("env in ()", "must not be empty"),
        ("a=b,", "trailing ','"),
    ],
)
async def test_bad_label_selector_is_bad_request(client: SqliteClient, selector: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message) as info:
        await client.list(STORY, labels=selector)
    assert info.value.to_status()["code"] == 400
    assert selector in info.value.message


@pytest.fixture
async def steps(client: SqliteClient) -> SqliteClient:
    await client.create(step_run("r1-a", "a", "r1"))
    await client.create(step_run("r1-b", "b", "r1"))
    await client.create(step_run("r2-a", "a", "r2"))
    await client.create(step_run("x", "a", "r3", namespace="other"))
    for name, phase in (("r1-a", "Succeeded"), ("r2-a", "Failed")):
        obj = await client.get(STEP_RUN, name)
        await client.update_status(dict(obj, status={"phase": phase}))
    return client


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("spec.stepId=a", ["r1-a", "r2-a", "x"]),
        ("spec.stepId==a,spec.storyRunRef.name=r1", ["r1-a"]),
        ("status.phase=Succeeded", ["r1-a"]),
        ("status.phase!=Succeeded", ["r1-b", "r2-a", "x"]),
        ("status.phase=", ["r1-b", "x"]),
        ("metadata.name=r1-b", ["r1-b"]),
        ("metadata.name!=r1-b,spec.stepId=a", ["r1-a", "r2-a", "x"]),
        ("metadata.namespace=other", ["x"]),
        ("metadata.namespace!=other", ["r1-a", "r1-b", "r2-a"]),
    ],
)
async def test_field_selectors(steps: SqliteClient, selector: str, expected: list[str]) -> None:
    found = await steps.list(STEP_RUN, fields=selector)
    assert sorted(o["metadata"]["name"] for o in found) == expected


async def test_field_selector_follows_status_changes(steps: SqliteClient) -> None:
    obj = await steps.get(STEP_RUN, "r1-a")
    await steps.update_status(dict(obj, status={"phase": "Running"}))
    assert await steps.list(STEP_RUN, fields="status.phase=Succeeded") == []
    assert [o["metadata"]["name"] for o in await steps.list(STEP_RUN, fields="status.phase=Running")] == [
        "r1-a"
    ]


async def test_unsupported_field_is_bad_request(steps: SqliteClient) -> None:
    with pytest.raises(BadRequest, match=r"field label not supported: 'spec\.input'") as info:
        await steps.list(STEP_RUN, fields="spec.input=x")
    assert "spec.stepId" in info.value.message
    with pytest.raises(BadRequest, match="field label not supported"):
        await steps.list(STORY, fields="status.phase=x")


async def test_malformed_field_selector_is_bad_request(steps: SqliteClient) -> None:
    with pytest.raises(BadRequest, match="expected 'field=value'"):
        await steps.list(STEP_RUN, fields="spec.stepId")


async def test_field_and_label_selectors_combine(client: SqliteClient) -> None:
    await client.create(step_run("r1-a", "a", "r1", labels={"bubustack.io/storyrun": "r1"}))
    await client.create(step_run("r1-b", "b", "r1", labels={"bubustack.io/storyrun": "r1"}))
    await client.create(step_run("r2-a", "a", "r2", labels={"bubustack.io/storyrun": "r2"}))
    found = await client.list(STEP_RUN, labels="bubustack.io/storyrun=r1", fields="spec.stepId=b")
    assert [o["metadata"]["name"] for o in found] == ["r1-b"]


async def test_list_filters_by_namespace_and_orders(client: SqliteClient) -> None:
    for ns, name in (("b", "z"), ("a", "y"), ("b", "a"), ("a", "x")):
        await client.create(story(name, namespace=ns))
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in await client.list(STORY)] == [
        ("a", "x"),
        ("a", "y"),
        ("b", "a"),
        ("b", "z"),
    ]
    assert [o["metadata"]["name"] for o in await client.list(STORY, "b")] == ["a", "z"]


async def test_list_only_returns_the_requested_kind(client: SqliteClient) -> None:
    await client.create(story("a"))
    await client.create(step_run("a", "s"))
    await client.create(
        {"apiVersion": "catalog.bubustack.io/v1alpha1", "kind": "EngramTemplate", "metadata": {"name": "a"}}
    )
    assert [o["kind"] for o in await client.list(STORY)] == ["Story"]
    assert [o["kind"] for o in await client.list(ENGRAM_TEMPLATE, "ignored-for-cluster-kinds")] == [
        "EngramTemplate"
    ]


async def test_listed_objects_are_fresh(client: SqliteClient) -> None:
    await client.create(story("a"))
    (obj,) = await client.list(STORY)
    obj["spec"]["steps"].clear()
    assert (await client.get(STORY, "a"))["spec"]["steps"] == [{"name": "a"}]
