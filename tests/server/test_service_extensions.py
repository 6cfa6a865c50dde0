"""The service in process: extension routers and tasks, readiness, request_stop."""

from __future__ import annotations

import asyncio
import http.client
import json
from pathlib import Path

from fastapi import APIRouter

from bobrapet.host import serve_file
from bobrapet.host.serve_file import ServeRecord
from bobrapet.server.service import Extensions, ServeContext, ServeOptions, Service


def fetch(port: int, path: str, token: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST" if path.startswith("/extension") else "GET",
            path,
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


async def test_extensions_get_routes_behind_the_token_and_tasks_with_the_engine(tmp_path: Path) -> None:
    router = APIRouter()

    @router.post("/extension/{namespace}/{impulse}")
    async def hook(namespace: str, impulse: str) -> dict[str, str]:
        return {"received": f"{namespace}/{impulse}"}

    seen: list[ServeContext] = []
    cancelled = asyncio.Event()

    async def task(context: ServeContext) -> None:
        seen.append(context)
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async def failing(context: ServeContext) -> None:
        raise RuntimeError("this task fails at once; the service goes on")

    ready: list[ServeRecord] = []
    options = ServeOptions(home=tmp_path / "home", port=0, token="t0ken", grace=1.0, workers=1)
    service = Service(
        options,
        extensions=Extensions(routers=[router], tasks=[task, failing]),
        on_ready=lambda record, took: ready.append(record),
    )
    running = asyncio.create_task(service.run())
    for _ in range(600):
        if ready or running.done():
            break
        await asyncio.sleep(0.05)
    assert ready, running
    port = ready[0].port
    assert serve_file.live(options.home) == ready[0]
    assert seen and seen[0].engine.lease is not None and seen[0].engine.lease.id == ready[0].lease
    status, body = await asyncio.to_thread(fetch, port, "/extension/default/github", "t0ken")
    assert status == 200 and json.loads(body) == {"received": "default/github"}
    status, body = await asyncio.to_thread(fetch, port, "/extension/default/github")
    assert status == 401 and json.loads(body)["reason"] == "Unauthorized"
    assert (await asyncio.to_thread(fetch, port, "/readyz"))[0] == 200
    service.request_stop()
    await asyncio.wait_for(running, timeout=60)
    assert cancelled.is_set()
    assert not (options.home / "serve.json").exists()
