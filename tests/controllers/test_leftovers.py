"""The engine's clean-up against a real store and a real file storage: what deleted runs leave
behind (blobs, logs, StoryTriggers) goes, what is still needed stays, leaks are swept."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.s3server import S3Server, running

from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import STEP_RUN, STORY_RUN, STORY_TRIGGER
from bobrapet.controllers.leftovers import Leftovers
from bobrapet.engine.config import EngineConfig
from bobrapet.executors.logpath import inputs_log_path, step_log_path
from bobrapet.runtime.manager import Manager
from bobrapet.storage.envelope import ENCODER, JSON, envelope_chunks
from bobrapet.storage.file import TEMP_PREFIX, FileStore
from bobrapet.storage.settings import StorageSettings, open_store
from bobrapet.store.sqlite import SqliteClient

OLD = time.time() - 7200
OWNER = {"apiVersion": "runs.bubustack.io/v1alpha1", "controller": True}


def ref(key: str) -> dict[str, str]:
    return {"$bubuStorageRef": key, "$bubuStorageContentType": "application/json"}


def story_run(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StoryRun",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"storyRef": {"name": "s"}, **spec},
    }


def step_run(name: str, run: dict[str, Any], **status: Any) -> dict[str, Any]:
    meta = run["metadata"]
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StepRun",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"bubustack.io/storyrun": meta["name"]},
            "ownerReferences": [{"kind": "StoryRun", "name": meta["name"], "uid": meta["uid"], **OWNER}],
        },
        "spec": {"storyRunRef": {"name": meta["name"]}, "stepId": name},
        "status": status,
    }


def trigger(name: str, run: dict[str, Any] | None, **spec: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"decision": "Rejected", "completedAt": "2020-01-01T00:00:00Z"}
    if run is not None:
        meta = run["metadata"]
        status = {"decision": "Created", "storyRunRef": {"name": meta["name"], "uid": meta["uid"]}}
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StoryTrigger",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "storyRef": {"name": "s"},
            "deliveryIdentity": {"mode": "none", "submissionId": name},
            **spec,
        },
        "status": status,
    }


class Home:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = FileStore(root / "storage")

    def blob(self, key: str, *, old: bool = True) -> str:
        self.store.write(key, envelope_chunks(JSON, '"x"'))
        if old:
            for path in (self.store.root / key, self.store.root / (key + ".sha256")):
                os.utime(path, (OLD, OLD))
        return key

    def blobs(self) -> set[str]:
        return {info.key for prefix in ("outputs", "inputs", "cache") for info in self.store.list(prefix)}

    def log(self, path: Path, *, old: bool = True) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("=== attempt 1 ===\n")
        if old:
            os.utime(path, (OLD, OLD))
        return path


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


@pytest.fixture
def config(home: Home) -> EngineConfig:
    return EngineConfig(
        storage=StorageSettings(provider="file", path=str(home.store.root)), retention_seconds=3600
    )


@pytest.fixture
async def cleanup(client: SqliteClient, home: Home, config: EngineConfig) -> AsyncIterator[Leftovers]:
    manager = Manager(client, settle=0.05)
    leftovers = Leftovers(manager, home.root, config)
    manager.add_runnable(leftovers)
    async with manager:
        yield leftovers


async def create(client: SqliteClient, obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.pop("status", None)
    created = await client.create(obj)
    if status:
        created = await client.update_status({**created, "status": status})
    return created


async def until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


async def test_a_deleted_run_leaves_no_blob_log_or_trigger(
    client: SqliteClient, home: Home, cleanup: Leftovers
) -> None:
    run_inputs = home.blob("inputs/default/4f2a/doc.json")
    r1 = await create(client, story_run("r1", inputs={"doc": ref(run_inputs)}))
    out = home.blob("outputs/default/r1-a/big.json")
    home.blob("inputs/r1-a/input.json")  # the engine offloaded r1-a's inputs
    trigger_inputs = home.blob("inputs/r1/doc.json")
    await create(client, step_run("r1-a", r1, output={"big": ref(out)}))
    await create(client, trigger("t1", r1, inputs={"doc": ref(trigger_inputs)}))
    logs = [
        home.log(step_log_path(home.root, "default", "r1-a")),
        home.log(inputs_log_path(home.root, "default", "r1")),
    ]
    r2 = await create(client, story_run("r2"))
    kept = home.blob("outputs/default/r2-a/big.json")
    await create(client, step_run("r2-a", r2, output={"big": ref(kept)}))
    kept_log = home.log(step_log_path(home.root, "default", "r2-a"))

    await client.delete(STORY_RUN, "r1", "default")  # cascades to r1-a
    assert await until(lambda: home.blobs() == {kept})
    assert not any(path.exists() for path in logs) and kept_log.exists()
    with pytest.raises(NotFound):
        await client.get(STORY_TRIGGER, "t1", "default")
    assert not (home.store.root / "outputs/default/r1-a").exists()  # no empty directories left
    # Counted once the clean-up's thread has returned (after the files are gone).
    assert await until(lambda: cleanup.removed["triggers"] == 1 and cleanup.removed["blobs"] == 4), dict(
        cleanup.removed
    )


async def test_what_is_still_referenced_or_rewritten_stays(
    client: SqliteClient, home: Home, cleanup: Leftovers
) -> None:
    shown = home.blob("outputs/default/r3-a/shown.json")
    home.blob("outputs/default/r3-a/dropped.json")
    r3 = await create(client, story_run("r3", status=None))
    r3 = await client.update_status({**r3, "status": {"phase": "Succeeded", "output": {"big": ref(shown)}}})
    await create(client, step_run("r3-a", r3))
    await client.delete(STEP_RUN, "r3-a", "default")  # the child TTL: the run stays, with its output
    assert await until(lambda: home.blobs() == {shown})

    r4 = await create(client, story_run("r4"))
    await create(client, step_run("r4-a", r4))
    old = home.blob("outputs/default/r4-a/old.json")
    await client.delete(STEP_RUN, "r4-a", "default")  # a redrive: deleted ...
    await create(client, step_run("r4-a", r4))  # ... and created again at once
    new = home.blob("outputs/default/r4-a/new.json", old=False)
    await asyncio.sleep(1.5)
    await cleanup.flush()
    assert {old, new} <= home.blobs()  # the successor owns the prefix; the sweep decides later


async def test_the_sweep_removes_leaks_no_engine_saw_deleted(
    client: SqliteClient, home: Home, cleanup: Leftovers
) -> None:
    r5 = await create(client, story_run("r5"))
    await create(client, step_run("r5-a", r5))
    alive = home.blob("outputs/default/r5-a/big.json")
    leaked = [home.blob("outputs/default/crashed-a/big.json"), home.blob("inputs/crashed-a/input.json"),
              home.blob("inputs/default/99/doc.json")]  # fmt: skip
    young = home.blob("outputs/default/crashed-b/big.json", old=False)
    by_hand = home.blob("outputs/notes.json")
    leaked_logs = [home.log(step_log_path(home.root, "default", "crashed-a")),
                   home.log(inputs_log_path(home.root, "default", "crashed"))]  # fmt: skip
    open_log = home.log(step_log_path(home.root, "default", "r5-b"))  # r5 may still create r5-b
    temporary = home.store.root / "outputs" / f"{TEMP_PREFIX}interrupted"
    temporary.write_bytes(b"half")
    os.utime(temporary, (OLD, OLD))
    gone_run = {"metadata": {"name": "gone", "namespace": "default", "uid": "no-such-uid"}}
    await create(client, trigger("t-gone", gone_run))
    await create(client, trigger("t-rejected", None))
    await create(client, trigger("t-live", r5))

    await cleanup.sweep()  # first sight: suspects only (temporaries go at once)
    assert set(leaked) <= home.blobs() and all(p.exists() for p in leaked_logs)
    assert not temporary.exists()
    await cleanup.sweep()
    assert home.blobs() == {alive, young, by_hand}
    assert not any(p.exists() for p in leaked_logs) and open_log.exists()
    remaining = {t["metadata"]["name"] for t in await client.list(STORY_TRIGGER, "default")}
    assert remaining == {"t-live"}


def entry(home: Home, key: str, ttl: int | None, output: Any) -> str:
    record = {"createdAt": "2020-01-01T00:00:00Z", "ttlSeconds": ttl, "output": output}
    home.store.write(key, envelope_chunks(JSON, ENCODER.encode(record)))
    return key


async def test_expired_cache_entries_and_their_copies_are_swept(
    client: SqliteClient, home: Home, cleanup: Leftovers
) -> None:
    stale_copy = home.blob("cache/default/e/latest/stale/1-big.json")
    used_copy = home.blob("cache/default/e/latest/used/1-big.json")
    fresh_copy = home.blob("cache/default/e/latest/fresh/1-big.json")
    stale = entry(home, "cache/default/e/latest/stale.json", 60, {"b": ref(stale_copy)})
    used = entry(home, "cache/default/e/latest/used.json", 60, {"b": ref(used_copy)})
    fresh = entry(home, "cache/default/e/latest/fresh.json", None, {"b": ref(fresh_copy)})
    run = await create(client, story_run("r6"))
    await create(client, step_run("r6-a", run, output={"b": ref(used_copy)}))  # a hit of the used entry

    await cleanup.sweep()
    assert stale not in home.blobs() and used not in home.blobs()  # expired entries go at once
    await cleanup.sweep()
    assert home.blobs() == {fresh, fresh_copy, used_copy}  # copies go when nothing references them
    assert json.loads(home.store.read(fresh))["data"]["output"] == {"b": ref(fresh_copy)}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with running() as server:
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("sweep_orphans", [False, True])
async def test_on_s3_deleted_runs_are_cleaned_and_orphans_only_when_asked(
    client: SqliteClient, tmp_path: Path, s3: S3Server, sweep_orphans: bool
) -> None:
    settings = StorageSettings.from_env(s3.env(s3.bucket()))
    store = open_store(settings)
    assert store is not None
    config = EngineConfig(storage=settings, sweep_s3_orphans=sweep_orphans)
    manager = Manager(client, settle=0.05)
    leftovers = Leftovers(manager, tmp_path, config, background=False)
    manager.add_runnable(leftovers)

    def keys() -> set[str]:
        return {info.key for info in store.list("outputs")}

    async with manager:
        run = await create(client, story_run("s1"))
        await create(client, step_run("s1-a", run))
        for key in ("outputs/default/s1-a/big.json", "outputs/default/orphan-a/big.json"):
            store.write(key, envelope_chunks(JSON, '"x"'))
        await client.delete(STORY_RUN, "s1", "default")
        assert await manager.wait_idle(timeout=10)
        await leftovers.flush()
        assert keys() == {"outputs/default/orphan-a/big.json"}  # the deletion it saw
        leftovers.wall = lambda: time.time() + 3600  # the orphan is old enough
        await leftovers.sweep()
        await leftovers.sweep()
        assert keys() == (set() if sweep_orphans else {"outputs/default/orphan-a/big.json"})
