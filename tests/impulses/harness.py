"""An in-process home for supervisor tests: the SQLite store with admission, the built-in
templates, the controllers that decide triggers and count (no step execution), and an
:class:`~bobrapet.impulses.supervisor.ImpulseSupervisor`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bobrapet.api.builtin_catalog import builtin_documents
from bobrapet.api.errors import AlreadyExists
from bobrapet.api.kinds import IMPULSE, STORY_RUN
from bobrapet.controllers.registry import setup_all
from bobrapet.host.embedded import ControlPlane
from bobrapet.impulses.supervisor import ImpulseSupervisor
from bobrapet.runtime.clock import Clock
from bobrapet.runtime.manager import Manager
from bobrapet.store.client import Resource

WAIT = 30.0
"""Upper bound of any wait (a safety net, never a timing assertion)."""


def story(name: str = "s", **spec: Any) -> Resource:
    steps = [{"name": "wait", "type": "sleep", "with": {"duration": "1h"}}]
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Story",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"steps": steps, **spec},
    }


def impulse(name: str, template: str, story_name: str = "s", **spec: Any) -> Resource:
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Impulse",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"templateRef": {"name": template}, "storyRef": {"name": story_name}, **spec},
    }


def secret(name: str, **values: str) -> Resource:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        "stringData": values,
    }


@dataclass
class Home:
    plane: ControlPlane
    manager: Manager
    supervisor: ImpulseSupervisor

    @property
    def client(self) -> Any:
        return self.plane.client

    async def until(self, check: Callable[[], Awaitable[Any]], what: str, timeout: float = WAIT) -> Any:
        """Poll ``check`` until it returns something truthy."""
        async with asyncio.timeout(timeout):
            while True:
                value = await check()
                if value:
                    return value
                await asyncio.sleep(0.02)
        raise AssertionError(what)  # pragma: no cover

    async def impulse(self, name: str) -> Resource:
        return await self.client.get(IMPULSE, name, "default")

    async def runs(self) -> list[Resource]:
        return list(await self.client.list(STORY_RUN, "default"))

    async def status_of(self, name: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            status = (await self.impulse(name)).get("status") or {}
            return status if predicate(status) else None

        value: dict[str, Any] = await self.until(check, f"impulse {name} status")
        return value


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions") or [] if c["type"] == kind)


@contextlib.asynccontextmanager
async def home(tmp_path: Path, *, clock: Clock | None = None, **options: Any) -> AsyncIterator[Home]:
    plane = ControlPlane(tmp_path / "home")
    await plane.open()
    for doc in builtin_documents():
        with contextlib.suppress(AlreadyExists):
            await plane.client.create(doc.obj)
    manager = Manager(plane.client, settle=0.05)
    setup_all(manager)
    await manager.start()
    options.setdefault("status_interval", 0.05)
    options.setdefault("restart_base", 0.05)
    supervisor = ImpulseSupervisor(plane.client, clock=clock, workdir=tmp_path, **options)
    try:
        await supervisor.start()
        yield Home(plane, manager, supervisor)
    finally:
        await supervisor.stop()
        await manager.stop()
        await plane.__aexit__(None, None, None)
