"""Several processes on one database file: cross-process watch latency, no lost updates."""

from __future__ import annotations

import asyncio
import statistics
import sys
import textwrap
import time
from pathlib import Path

from bobrapet.api.kinds import CONFIG_MAP, STORY
from bobrapet.store.sqlite import SqliteClient

from .store_helpers import story

WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from bobrapet.store.sqlite import SqliteClient

    async def main() -> None:
        async with SqliteClient(sys.argv[1]) as client:
            for i in range(int(sys.argv[2])):
                await client.create({
                    "apiVersion": "bubustack.io/v1alpha1", "kind": "Story",
                    "metadata": {"name": f"remote-{i}"}, "spec": {"steps": []},
                })
                print(time.time(), flush=True)
                await asyncio.sleep(0.1)

    asyncio.run(main())
    """
)

COUNTER = textwrap.dedent(
    """
    import asyncio, sys, time
    from bobrapet.api.errors import Conflict
    from bobrapet.api.kinds import CONFIG_MAP
    from bobrapet.store.sqlite import SqliteClient

    async def main() -> None:
        who, n = sys.argv[2], int(sys.argv[3])
        async with SqliteClient(sys.argv[1]) as client:
            await asyncio.sleep(max(0.0, float(sys.argv[4]) - time.time()))  # start together
            conflicts = 0
            for i in range(n):
                await client.create({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": f"item-{who}-{i}"}, "data": {"who": who},
                })
                while True:
                    counter = await client.get(CONFIG_MAP, "counter")
                    counter["data"]["value"] = str(int(counter["data"]["value"]) + 1)
                    await asyncio.sleep(0.0005)  # "work" between read and write invites conflicts
                    try:
                        await client.update(counter)
                        break
                    except Conflict:
                        conflicts += 1
            print(conflicts, flush=True)

    asyncio.run(main())
    """
)


async def test_watch_sees_write_from_another_process_quickly(client: SqliteClient, db_path: Path) -> None:
    await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seed"}})
    stream = client.watch(STORY)
    count = 5
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(db_path), str(count), stdout=asyncio.subprocess.PIPE
    )
    received: list[float] = []
    names: list[str] = []
    for _ in range(count):
        event = await asyncio.wait_for(anext(stream), 30.0)
        received.append(time.time())
        names.append(event.object["metadata"]["name"])
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    committed = [float(line) for line in out.decode().split()]
    assert names == [f"remote-{i}" for i in range(count)]
    latencies = [r - c for r, c in zip(received, committed, strict=True)]
    print(
        f"cross-process watch latency: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    assert max(latencies) < 1.0


async def test_two_processes_increment_without_lost_updates(client: SqliteClient, db_path: Path) -> None:
    await client.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "counter"}, "data": {"value": "0"}}
    )
    n = 200
    start_at = str(time.time() + 1.0)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", COUNTER, str(db_path), who, str(n), start_at, stdout=asyncio.subprocess.PIPE
        )
        for who in ("p1", "p2")
    ]
    outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    counter = await client.get(CONFIG_MAP, "counter")
    assert counter["data"]["value"] == str(2 * n)
    items = [o for o in await client.list(CONFIG_MAP) if o["metadata"]["name"].startswith("item-")]
    assert len(items) == 2 * n
    versions = [int(o["metadata"]["resourceVersion"]) for o in items]
    assert len(set(versions)) == len(versions)
    assert len({o["metadata"]["uid"] for o in items}) == 2 * n
    print("conflicts retried:", [out.decode().strip() for out, _ in outputs])


async def test_second_process_sees_first_process_objects(client: SqliteClient, db_path: Path) -> None:
    await client.create(story("mine"))
    script = (
        "import asyncio, sys\n"
        "from bobrapet.api.kinds import STORY\n"
        "from bobrapet.store.sqlite import SqliteClient\n"
        "async def main():\n"
        "    async with SqliteClient(sys.argv[1]) as c:\n"
        "        print((await c.get(STORY, 'mine'))['metadata']['uid'])\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(db_path), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert out.decode().strip() == (await client.get(STORY, "mine"))["metadata"]["uid"]
