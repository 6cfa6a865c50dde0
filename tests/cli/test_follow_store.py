"""``get -w`` and ``logs -f`` against a real SQLite store, in one process: the store's watch
drives them while the test writes objects and log files as an engine would."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bobrapet.api import runmeta
from bobrapet.api.errors import StatusError
from bobrapet.api.kinds import CONFIG_MAP, STEP_RUN, STORY_RUN, Kind
from bobrapet.cli.following import LogFollower
from bobrapet.cli.watching import Selection, WatchPrinter, watch_objects
from bobrapet.executors.logpath import step_log_path
from bobrapet.runtime.informer import bookmark
from bobrapet.store.client import WatchEvent
from bobrapet.store.sqlite import SqliteClient


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[SqliteClient]:
    async with SqliteClient(tmp_path / "state.db", poll_interval=0.01) as store:
        yield store


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


def rows(out: io.StringIO) -> list[list[str]]:
    return [line.split()[:2] for line in out.getvalue().splitlines()]


async def test_watch_prints_the_list_then_each_change_of_the_selection(client: SqliteClient) -> None:
    await client.create(cm("a", app="x"))
    await client.create(cm("b", app="y"))
    out = io.StringIO()
    printer = WatchPrinter(Console(file=out, width=200), CONFIG_MAP, "table", events=True)
    task = asyncio.create_task(
        watch_objects(client, Selection(CONFIG_MAP, "default", labels="app=x"), printer)
    )
    await until(lambda: len(rows(out)) == 2)
    await client.create(cm("c", app="x"))
    a = await client.get(CONFIG_MAP, "a")
    a["metadata"]["labels"] = {"app": "y"}
    await client.update(a)  # no longer selected: DELETED
    await client.delete(CONFIG_MAP, "c")
    b = await client.get(CONFIG_MAP, "b")
    b["metadata"]["labels"] = {"app": "x"}
    await client.update(b)  # now selected: ADDED
    await until(lambda: len(rows(out)) == 6)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert rows(out) == [
        ["EVENT", "NAME"],
        ["ADDED", "a"],
        ["ADDED", "c"],
        ["DELETED", "a"],
        ["DELETED", "c"],
        ["ADDED", "b"],
    ]


async def test_watch_only_skips_the_list_and_a_named_watch_shows_one_object(client: SqliteClient) -> None:
    await client.create(cm("a"))
    await client.create(cm("b"))
    out = io.StringIO()
    printer = WatchPrinter(Console(file=out, width=200), CONFIG_MAP, "name")
    selection = Selection(CONFIG_MAP, "default", name="b")
    task = asyncio.create_task(watch_objects(client, selection, printer, watch_only=True))
    await asyncio.sleep(0.05)
    for name in ("a", "b"):
        obj = await client.get(CONFIG_MAP, name)
        obj["data"] = {"k": "v"}
        await client.update(obj)
    await until(lambda: out.getvalue() != "")
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert out.getvalue() == "configmap/b\n"


class ExpiringOnce:
    """The store, but its first watch fails with 410 Expired (as after pruned events)."""

    def __init__(self, store: SqliteClient, before: Callable[[], Any]) -> None:
        self.store = store
        self.before = before
        self.expired = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def watch(self, kind: Kind, namespace: str | None = None, since: str | None = None) -> Any:
        if not self.expired:
            self.expired = True
            await self.before()
            raise StatusError("too old resource version", reason="Expired", code=410)
        async for event in self.store.watch(kind, namespace, since):
            yield event


async def test_watch_prints_the_difference_after_lost_events(client: SqliteClient) -> None:
    await client.create(cm("a"))
    await client.create(cm("b"))

    async def meanwhile() -> None:  # changes whose events the watch never gets
        await client.create(cm("c"))
        await client.delete(CONFIG_MAP, "a")

    out = io.StringIO()
    printer = WatchPrinter(Console(file=out, width=200), CONFIG_MAP, "table", events=True, headers=False)
    flaky: Any = ExpiringOnce(client, meanwhile)
    task = asyncio.create_task(watch_objects(flaky, Selection(CONFIG_MAP, "default"), printer))
    await until(lambda: len(rows(out)) == 4)
    await client.create(cm("d"))
    await until(lambda: len(rows(out)) == 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert rows(out) == [["ADDED", "a"], ["ADDED", "b"], ["ADDED", "c"], ["DELETED", "a"], ["ADDED", "d"]]


# ---------------------------------------------------------------------------------- logs -f


def story_run(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StoryRun",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"storyRef": {"name": "s"}},
    }


def step_run(run: str, step: str) -> dict[str, Any]:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StepRun",
        "metadata": {"name": f"{run}-{step}", "namespace": "default", "labels": {runmeta.STORYRUN: run}},
        "spec": {"stepId": step, "storyRunRef": {"name": run}},
    }


async def set_phase(client: SqliteClient, kind: Kind, name: str, phase: str) -> None:
    obj = await client.get(kind, name, "default")
    obj["status"] = {"phase": phase}
    await client.update_status(obj)


def append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(text)


class Follow:
    """A LogFollower of run ``r`` whose output is collected."""

    def __init__(self, client: SqliteClient, home: Path, *, headers: bool = True) -> None:
        self.out: list[str] = []
        self.follower = LogFollower(
            client,
            home,
            "default",
            "r",
            matches=lambda s: True,
            header=(lambda s: f"== {s['spec']['stepId']} ==") if headers else None,
            write=self.out.append,
            tail_interval=0.02,
        )

    @property
    def text(self) -> str:
        return "".join(self.out)


async def test_follow_prints_new_lines_and_new_steps_until_the_run_ends(
    client: SqliteClient, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    await client.create(story_run("r"))
    await client.create(step_run("r", "a"))
    await set_phase(client, STORY_RUN, "r", "Running")
    await set_phase(client, STEP_RUN, "r-a", "Running")
    log_a, log_b = step_log_path(home, "default", "r-a"), step_log_path(home, "default", "r-b")
    append(log_a, "=== attempt 1 ===\nold 1\nold 2\nold 3\n")
    since = await bookmark(client)
    follow = Follow(client, home)
    task = asyncio.create_task(
        follow.follower.follow(
            since,
            await client.get(STORY_RUN, "r", "default"),
            [await client.get(STEP_RUN, "r-a", "default")],
            2,
        )
    )
    await until(lambda: "old 3" in follow.text)
    append(log_a, "new 1\npart")  # an unterminated line waits for its end
    await until(lambda: "new 1" in follow.text)
    await client.create(step_run("r", "b"))  # a step that starts later
    append(log_b, "=== attempt 1 ===\nb 1\n")
    await set_phase(client, STEP_RUN, "r-b", "Running")
    await until(lambda: "b 1" in follow.text)
    append(log_a, "ial\n")
    await until(lambda: "partial" in follow.text)
    append(log_b, "b 2 without newline")
    await set_phase(client, STEP_RUN, "r-b", "Succeeded")
    await set_phase(client, STEP_RUN, "r-a", "Succeeded")
    await set_phase(client, STORY_RUN, "r", "Succeeded")
    assert await asyncio.wait_for(task, 10) == "finished"
    assert follow.text == (
        "== a ==\nold 2\nold 3\nnew 1\n"
        "== b ==\n=== attempt 1 ===\nb 1\n"
        "== a ==\npartial\n"
        "== b ==\nb 2 without newline\n"
    )


async def test_follow_of_a_finished_run_prints_everything_and_returns(
    client: SqliteClient, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    await client.create(story_run("r"))
    await client.create(step_run("r", "a"))
    await set_phase(client, STEP_RUN, "r-a", "Failed")
    await set_phase(client, STORY_RUN, "r", "Failed")
    append(step_log_path(home, "default", "r-a"), "only\nlast")
    follow = Follow(client, home, headers=False)
    since = await bookmark(client)
    run, step_runs = await client.get(STORY_RUN, "r", "default"), await client.list(STEP_RUN, "default")
    assert await asyncio.wait_for(follow.follower.follow(since, run, step_runs), 10) == "finished"
    assert follow.text == "only\nlast\n"


async def test_follow_goes_on_while_a_redrive_is_pending_and_ends_when_the_run_is_deleted(
    client: SqliteClient, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    run = story_run("r")
    run["metadata"]["annotations"] = {runmeta.REDRIVE_TOKEN: "1"}
    await client.create(run)
    await set_phase(client, STORY_RUN, "r", "Failed")
    follow = Follow(client, home)
    since = await bookmark(client)
    task = asyncio.create_task(follow.follower.follow(since, await client.get(STORY_RUN, "r", "default"), []))
    await asyncio.sleep(0.1)
    assert not task.done()
    await client.delete(STORY_RUN, "r", "default")
    assert await asyncio.wait_for(task, 10) == "deleted"


async def test_follow_ends_with_the_error_of_a_failed_watch(client: SqliteClient, tmp_path: Path) -> None:
    await client.create(story_run("r"))

    class Broken:
        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[WatchEvent]:
            raise StatusError("the store is gone", reason="ServiceUnavailable", code=503)
            yield  # pragma: no cover

    follower = LogFollower(
        Broken(),  # type: ignore[arg-type]
        tmp_path,
        "default",
        "r",
        matches=lambda s: True,
        header=None,
        write=lambda text: None,
    )
    with pytest.raises(StatusError, match="the store is gone"):
        await asyncio.wait_for(follower.follow(None, await client.get(STORY_RUN, "r", "default"), []), 10)
