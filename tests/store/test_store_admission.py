"""The admission hook: called on create/update (never status), warnings, dry-run, lookup."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bobrapet.api.errors import AlreadyExists, Cause, Conflict, Invalid
from bobrapet.api.kinds import CONFIG_MAP, STORY
from bobrapet.store.sqlite import SqliteClient

from .store_helpers import FakeClock, story


class Recorder:
    """An admission that records its calls, defaults a label and may reject or warn."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], dict[str, Any] | None, str | None]] = []
        self.reject = False
        self.store: SqliteClient | None = None
        self.seen_by_lookup: list[dict[str, Any] | None] = []

    async def __call__(
        self, obj: dict[str, Any], old: dict[str, Any] | None, *, subresource: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        self.calls.append((copy.deepcopy(obj), copy.deepcopy(old), subresource))
        if self.store is not None:
            self.seen_by_lookup.append(await self.store.lookup.get(STORY, "other"))
        if self.reject:
            raise Invalid("Story", obj["metadata"]["name"], [Cause("spec.steps", "must not be empty")])
        obj["metadata"].setdefault("labels", {})["defaulted"] = "yes"
        obj["metadata"]["uid"] = "admission-must-not-change-this"
        obj["status"] = {"phase": "admission-must-not-set-this"}
        return obj, [f"warning for {obj['metadata']['name']}"]


@pytest.fixture
async def admitted(db_path: Path, clock: FakeClock) -> AsyncIterator[tuple[SqliteClient, Recorder]]:
    recorder = Recorder()
    async with SqliteClient(db_path, admission=recorder, clock=clock) as client:
        yield client, recorder


async def test_create_calls_admission_with_prepared_object(admitted: tuple[SqliteClient, Recorder]) -> None:
    client, recorder = admitted
    warnings: list[str] = ["earlier"]
    created = await client.create(story("a", status={"phase": "x"}), warnings=warnings)
    ((obj, old, subresource),) = recorder.calls
    assert old is None and subresource is None
    assert obj["metadata"]["name"] == "a"
    assert obj["metadata"]["namespace"] == "default"
    assert obj["metadata"]["uid"] == created["metadata"]["uid"]
    assert "status" not in obj
    assert created["metadata"]["labels"] == {"defaulted": "yes"}
    assert created["metadata"]["uid"] != "admission-must-not-change-this"
    assert "status" not in created
    assert warnings == ["earlier", "warning for a"]


async def test_update_calls_admission_with_old_object(admitted: tuple[SqliteClient, Recorder]) -> None:
    client, recorder = admitted
    created = await client.create(story("a"))
    ready = await client.update_status(dict(created, status={"phase": "Ready"}))
    assert len(recorder.calls) == 1  # status writes skip admission
    body = story("a", spec={"steps": [{"name": "new"}]})
    body["metadata"]["resourceVersion"] = ready["metadata"]["resourceVersion"]
    warnings: list[str] = []
    updated = await client.update(body, warnings=warnings)
    obj, old, subresource = recorder.calls[-1]
    assert subresource is None
    assert old is not None and old["spec"] == created["spec"]
    assert obj["spec"] == {"steps": [{"name": "new"}]}
    assert obj["status"] == {"phase": "Ready"}  # the prepared object carries the stored status
    assert updated["status"] == {"phase": "Ready"}
    assert updated["metadata"]["generation"] == 2
    assert warnings == ["warning for a"]


async def test_rejected_create_and_update_store_nothing(admitted: tuple[SqliteClient, Recorder]) -> None:
    client, recorder = admitted
    created = await client.create(story("a"))
    recorder.reject = True
    writes = client.writes
    with pytest.raises(Invalid, match=r"spec\.steps: must not be empty"):
        await client.create(story("b"))
    with pytest.raises(Invalid):
        await client.update(dict(created, spec={"steps": []}))
    assert client.writes == writes
    assert [o["metadata"]["name"] for o in await client.list(STORY)] == ["a"]
    assert (await client.get(STORY, "a"))["spec"] == created["spec"]


async def test_dry_run_create_admits_but_stores_nothing(admitted: tuple[SqliteClient, Recorder]) -> None:
    client, _ = admitted
    warnings: list[str] = []
    would_be = await client.create(story("a"), dry_run=True, warnings=warnings)
    assert would_be["metadata"]["labels"] == {"defaulted": "yes"}
    assert "resourceVersion" not in would_be["metadata"]
    assert warnings == ["warning for a"]
    assert await client.list(STORY) == []
    assert client.writes == 0
    await client.create(story("a"))
    with pytest.raises(AlreadyExists):
        await client.create(story("a"), dry_run=True)


async def test_dry_run_update_stores_nothing(admitted: tuple[SqliteClient, Recorder]) -> None:
    client, _ = admitted
    created = await client.create(story("a"))
    would_be = await client.update(dict(created, spec={"steps": []}), dry_run=True)
    assert would_be["spec"] == {"steps": []}
    assert would_be["metadata"]["generation"] == 2
    assert would_be["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert await client.get(STORY, "a") == created


async def test_dry_run_without_admission_stores_nothing(client: SqliteClient) -> None:
    await client.create(story("a"), dry_run=True)
    assert await client.list(STORY) == []


async def test_update_conflict_detected_before_admission(admitted: tuple[SqliteClient, Recorder]) -> None:
    client, recorder = admitted
    created = await client.create(story("a"))
    await client.update(dict(created, spec={"steps": []}))
    calls = len(recorder.calls)
    with pytest.raises(Conflict):
        await client.update(dict(created, spec={"steps": [{"name": "stale"}]}))
    assert len(recorder.calls) == calls


async def test_admission_reads_through_lookup(admitted: tuple[SqliteClient, Recorder]) -> None:
    client, recorder = admitted
    recorder.store = client
    await client.create(story("a"))
    await client.create(story("other"))
    await client.create(story("b"))
    assert recorder.seen_by_lookup[0] is None
    seen = recorder.seen_by_lookup[-1]
    assert seen is not None and seen["metadata"]["name"] == "other"
    listed = await client.lookup.list(STORY)
    assert [o["metadata"]["name"] for o in listed] == ["a", "b", "other"]


async def test_unconditional_update_readmits_when_object_changes_meanwhile(db_path: Path) -> None:
    """A write landing while admission runs makes the store admit again against the new state.

    (Only core kinds such as ConfigMaps may be updated without a resourceVersion.)
    """
    holder: dict[str, SqliteClient] = {}

    class Racing:
        def __init__(self) -> None:
            self.olds: list[str] = []

        async def __call__(
            self, obj: dict[str, Any], old: dict[str, Any] | None, *, subresource: str | None
        ) -> tuple[dict[str, Any], list[str]]:
            if old is not None:
                self.olds.append(old["metadata"]["resourceVersion"])
                if len(self.olds) == 1:
                    current = await holder["other"].get(CONFIG_MAP, "a")
                    await holder["other"].update(dict(current, data={"x": "moved"}))
            return obj, []

    def config_map(value: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": value}}

    racing = Racing()
    async with SqliteClient(db_path, admission=racing) as client, SqliteClient(db_path) as other:
        holder["other"] = other
        await client.create(config_map("1"))
        updated = await client.update(config_map("2"))
        assert len(racing.olds) == 2 and racing.olds[0] != racing.olds[1]
        assert updated["data"] == {"x": "2"}
        assert int(updated["metadata"]["resourceVersion"]) > int(racing.olds[1])


async def test_status_admission_is_opt_in(db_path: Path) -> None:
    class StatusChecker:
        def __init__(self) -> None:
            self.subresources: list[str | None] = []

        async def __call__(
            self, obj: dict[str, Any], old: dict[str, Any] | None, *, subresource: str | None
        ) -> tuple[dict[str, Any], list[str]]:
            self.subresources.append(subresource)
            if subresource == "status":
                if obj["status"].get("phase") == "Bogus":
                    raise Invalid("Story", obj["metadata"]["name"], [Cause("status.phase", "unknown phase")])
                obj["status"]["checked"] = True
                obj["spec"] = {"steps": [{"name": "admission-cannot-change-spec-here"}]}
            return obj, []

    checker = StatusChecker()
    async with SqliteClient(db_path, admission=checker, admit_status=True) as client:
        created = await client.create(story("a"))
        updated = await client.update_status(dict(created, status={"phase": "Running"}))
        assert updated["status"] == {"phase": "Running", "checked": True}
        assert updated["spec"] == created["spec"]
        with pytest.raises(Invalid, match="unknown phase"):
            await client.update_status(dict(updated, status={"phase": "Bogus"}))
        assert checker.subresources == [None, "status", "status"]


class TrustingRecorder(Recorder):
    """A Recorder that also offers the short path for engine-built objects (Stories here)."""

    def __init__(self, short: bool = True) -> None:
        super().__init__()
        self.short = short
        self.trusted: list[dict[str, Any]] = []

    def admit_trusted(self, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
        self.trusted.append(copy.deepcopy(obj))
        if not self.short:
            return None
        obj["metadata"].setdefault("labels", {})["short"] = "yes"
        obj["metadata"]["uid"] = "admission-must-not-change-this"
        obj["status"] = {"phase": "admission-must-not-set-this"}
        return obj, ["short warning"]


async def test_trusted_create_takes_the_short_path(db_path: Path, clock: FakeClock) -> None:
    recorder = TrustingRecorder()
    async with SqliteClient(db_path, admission=recorder, clock=clock) as client:
        warnings: list[str] = []
        created = await client.create(story("a"), trusted=True, warnings=warnings)
        assert recorder.calls == [] and len(recorder.trusted) == 1
        assert recorder.trusted[0]["metadata"]["uid"] == created["metadata"]["uid"]
        assert created["metadata"]["labels"] == {"short": "yes"}
        assert "status" not in created  # system metadata and status stay the store's
        assert warnings == ["short warning"]
        assert await client.get(STORY, "a") == created
        # without the marker (what every user-facing path sends) admission runs in full
        await client.create(story("b"))
        assert len(recorder.calls) == 1 and len(recorder.trusted) == 1


async def test_trusted_create_falls_back_to_full_admission(db_path: Path, clock: FakeClock) -> None:
    declining = TrustingRecorder(short=False)
    async with SqliteClient(db_path, admission=declining, clock=clock) as client:
        created = await client.create(story("a"), trusted=True)
        assert len(declining.trusted) == 1 and len(declining.calls) == 1
        assert created["metadata"]["labels"] == {"defaulted": "yes"}
    plain = Recorder()  # an admission without a short path
    async with SqliteClient(db_path, admission=plain, clock=clock) as client:
        await client.create(story("b"), trusted=True)
        assert len(plain.calls) == 1
