"""The engine host takes any Executor: a non-local executor plugs in without touching controllers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.controllers.ctrl_objects import engram, engram_template, step, story, story_run

from bobrapet.execution.request import ExecutionRequest, ExecutionResult
from bobrapet.executors.protocol import Executor, OnStarted
from bobrapet.host.embedded import ControlPlane
from bobrapet.host.engine_host import EngineHost


class RemoteLikeExecutor:
    """Stands in for e.g. a Kubernetes Job executor: every attempt succeeds, echoing its inputs."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")

    async def close(self) -> None:
        self.events.append("close")

    @property
    def capacity(self) -> tuple[int, int]:
        return 0, 1

    def reserve(self, request: ExecutionRequest) -> bool:
        return True

    def release(self, key: str) -> None:
        return None

    async def run(self, request: ExecutionRequest, on_started: OnStarted | None = None) -> ExecutionResult:
        self.events.append(f"run {request.key}")
        now = datetime.now(UTC)
        return ExecutionResult("Succeeded", {"got": request.inputs["n"]}, 0, None, None, None, [], now, now)

    async def cancel(self, key: str) -> None:
        return None


async def test_a_run_executes_on_the_executor_the_host_was_given(tmp_path: Path) -> None:
    executor = RemoteLikeExecutor()

    def factory() -> Executor:
        return executor

    plane = ControlPlane(tmp_path / "home")
    async with plane:
        await plane.client.create(engram_template("tpl", image=None, entrypoint="m:f"))
        await plane.client.create(engram("e"))
        await plane.client.create(story("s", [step("a", "e", with_={"n": 7})]))
        await plane.client.create(story_run("r", "s"))
        async with EngineHost(plane, workdir=tmp_path, executor_factory=factory) as host:
            assert host.executor is executor
            final = await host.wait_for_run("default", "r", timeout=30)
    assert final["status"]["phase"] == "Succeeded", final["status"]
    assert executor.events == ["start", "run default/r-a#0", "close"]


async def test_the_host_compiles_known_stories_before_it_is_ready(tmp_path: Path) -> None:
    """A Story stored before the engine starts is parsed and compiled during start-up, once:
    its first run reuses that model (the compiled graph is memoised per model object)."""
    from bobrapet.controllers import storyrun
    from bobrapet.engine.dag import _CACHE

    plane = ControlPlane(tmp_path / "home")
    async with plane:
        await plane.client.create(engram_template("tpl", image=None, entrypoint="m:f"))
        await plane.client.create(engram("e"))
        await plane.client.create(story("s", [step("a", "e", with_={"n": 7})]))
        async with EngineHost(plane, workdir=tmp_path, executor_factory=RemoteLikeExecutor) as host:
            assert host.manager is not None
            reconciler = host.manager.controller(storyrun.NAME).reconciler
            assert isinstance(reconciler, storyrun.StoryRunReconciler)
            stored = await plane.client.get(storyrun.STORY, "s", "default")
            model = reconciler.caches.snapshots.prepare(stored)
            assert model is not None and any(ref() is model for ref, _ in _CACHE.values())
            await plane.client.create(story_run("r", "s"))
            final = await host.wait_for_run("default", "r", timeout=30)
            assert reconciler.caches.snapshots.prepare(stored) is model
    assert final["status"]["phase"] == "Succeeded", final["status"]
