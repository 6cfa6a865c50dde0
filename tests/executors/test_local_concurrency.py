"""Steps that wait on I/O overlap inside warm workers; each keeps its own log and environment."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bobrapet.execution.request import ExecutionResult
from bobrapet.executors.local import LocalExecutor

C = "engrams.concurrent"
HERE = Path(__file__).resolve().parent


def _max_overlap(results: list[ExecutionResult]) -> int:
    """Most steps whose code ran at the same moment (from the start/end they recorded)."""
    events = sorted(
        [(r.output["start"], 1) for r in results] + [(r.output["end"], -1) for r in results],
        key=lambda e: (e[0], e[1]),
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def _env(step_run: str) -> dict[str, str]:
    return {"BUBU_STEPRUN_NAME": step_run}


async def test_sync_and_async_sleeps_overlap_by_default(make_request) -> None:
    ex = LocalExecutor(workers=2, python_path=[str(HERE)])
    try:
        requests = [make_request(f"a{i}", f"{C}:sleep_async") for i in range(20)]
        requests += [make_request(f"s{i}", f"{C}:sleep_sync") for i in range(20)]
        results = await asyncio.gather(*(ex.run(r) for r in requests))
        assert all(r.phase == "Succeeded" for r in results), [r.message for r in results]
        assert _max_overlap(results[:20]) >= 20  # async: many tasks on the workers' loops
        assert _max_overlap(results[20:]) >= 20  # sync: threads inside the workers
        assert len({r.output["pid"] for r in results}) == 2  # spread over both processes
    finally:
        await ex.close()


async def test_per_worker_and_total_caps_bound_concurrency(make_request) -> None:
    ex = LocalExecutor(workers=2, python_path=[str(HERE)], slots_per_worker=2, max_steps=3)
    try:
        requests = [make_request(f"s{i}", f"{C}:sleep_sync", inputs={"seconds": 0.3}) for i in range(6)]
        results = await asyncio.gather(*(ex.run(r) for r in requests))
        assert all(r.phase == "Succeeded" for r in results)
        assert _max_overlap(results) == 3
    finally:
        await ex.close()


async def test_concurrent_steps_in_one_worker_keep_their_own_logs(make_request) -> None:
    ex = LocalExecutor(workers=1, python_path=[str(HERE)])
    try:
        a = make_request("a", f"{C}:talk_sync", inputs={"tag": "AAA"})
        b = make_request("b", f"{C}:talk_sync", inputs={"tag": "BBB"})
        c = make_request("c", f"{C}:talk_async", inputs={"tag": "CCC"})
        d = make_request("d", f"{C}:talk_async", inputs={"tag": "DDD"})
        results = await asyncio.gather(*(ex.run(r) for r in (a, b, c, d)))
        assert all(r.phase == "Succeeded" for r in results)
        assert len({r.output["pid"] for r in results}) == 1  # one process ran all four
        tags = {"AAA": a, "BBB": b, "CCC": c, "DDD": d}
        for tag, request in tags.items():
            log = request.log_path.read_text()
            assert f"{tag} line 9" in log and f"{tag} via logger 9" in log
            if tag in ("AAA", "BBB"):
                assert f"{tag} err 9" in log
            for other in tags.keys() - {tag}:
                assert other not in log, (tag, other)
    finally:
        await ex.close()


async def test_concurrent_steps_in_one_worker_see_their_own_environment(make_request) -> None:
    ex = LocalExecutor(workers=1, python_path=[str(HERE)])
    try:
        requests = [
            make_request("e1", f"{C}:env_sync", env=_env("run-one"), inputs={"tag": "one"}),
            make_request("e2", f"{C}:env_sync", env=_env("run-two"), inputs={"tag": "two"}),
            make_request("e3", f"{C}:env_async", env=_env("run-three"), inputs={"tag": "three"}),
            make_request("e4", f"{C}:env_async", env=_env("run-four"), inputs={"tag": "four"}),
        ]
        results = await asyncio.gather(*(ex.run(r) for r in requests))
        assert len({r.output["pid"] for r in results}) == 1
        for result, name in zip(results, ("one", "two", "three", "four"), strict=True):
            expected: dict[str, Any] = {
                "environ": f"run-{name}",
                "getenv": f"run-{name}",
                "ctx": f"run-{name}",
            }
            assert {k: result.output[k] for k in expected} == expected
            assert result.output["own"] == name  # a step's own os.environ write stays its own
        later = await ex.run(make_request("after", f"{C}:env_sync", inputs={"tag": "x"}))
        assert later.output["environ"] is None and later.output["ctx"] == ""
    finally:
        await ex.close()


async def test_sync_timeout_in_a_shared_worker_retires_it_without_killing_the_others(make_request) -> None:
    ex = LocalExecutor(workers=1, python_path=[str(HERE)], kill_grace=0.2)
    try:
        busy = asyncio.ensure_future(ex.run(make_request("busy", f"{C}:sleep_sync", inputs={"seconds": 1.5})))
        await asyncio.sleep(0.3)
        hung = await ex.run(make_request("hung", f"{C}:hang_sync", timeout=0.5))
        assert hung.phase == "Timeout" and hung.exit_code == 124
        done = await busy
        assert done.phase == "Succeeded"  # its worker was retired, not killed, while it ran
        shared_pid = done.output["pid"]
        for _ in range(300):
            if shared_pid not in ex.pids:
                break
            await asyncio.sleep(0.01)
        assert shared_pid not in ex.pids  # stopped once its other step had finished
        after = await ex.run(make_request("after", f"{C}:sleep_sync", inputs={"seconds": 0}))
        assert after.phase == "Succeeded" and after.output["pid"] != shared_pid
    finally:
        await ex.close()


async def test_async_timeout_in_a_shared_worker_cancels_the_task_only(make_request) -> None:
    ex = LocalExecutor(workers=1, python_path=[str(HERE)], kill_grace=0.5)
    try:
        busy = asyncio.ensure_future(ex.run(make_request("busy", f"{C}:sleep_async", inputs={"seconds": 1})))
        await asyncio.sleep(0.3)
        hung = await ex.run(make_request("hung", f"{C}:hang_async", timeout=0.3))
        assert hung.phase == "Timeout"
        done = await busy
        assert done.phase == "Succeeded"
        after = await ex.run(make_request("after", f"{C}:sleep_async", inputs={"seconds": 0}))
        assert after.output["pid"] == done.output["pid"]  # the worker was kept
    finally:
        await ex.close()


async def test_cancel_in_a_shared_worker_leaves_the_other_step_running(make_request) -> None:
    ex = LocalExecutor(workers=1, python_path=[str(HERE)], kill_grace=0.2)
    try:
        busy = asyncio.ensure_future(ex.run(make_request("busy", f"{C}:sleep_async", inputs={"seconds": 1})))
        victim = asyncio.ensure_future(ex.run(make_request("victim", f"{C}:hang_async", timeout=30)))
        await asyncio.sleep(0.3)
        await ex.cancel("victim")
        result = await victim
        assert (result.phase, result.message) == ("Failed", "canceled")
        assert (await busy).phase == "Succeeded"
    finally:
        await ex.close()


async def test_a_crash_fails_every_step_in_flight_on_that_worker(make_request) -> None:
    ex = LocalExecutor(workers=1, python_path=[str(HERE)])
    try:
        sleeper = make_request("sleeper", f"{C}:sleep_sync", inputs={"seconds": 5})
        crasher = make_request("crasher", f"{C}:crash", inputs={"after": 0.3})
        results = await asyncio.gather(ex.run(sleeper), ex.run(crasher))
        assert [(r.phase, r.exit_code) for r in results] == [("Failed", 7), ("Failed", 7)]
        assert "while running 2 steps" in sleeper.log_path.read_text()  # the step log says why it ended
        assert (
            await ex.run(make_request("next", f"{C}:sleep_sync", inputs={"seconds": 0}))
        ).phase == "Succeeded"
    finally:
        await ex.close()


async def test_reserve_then_wait_then_on_started(make_request) -> None:
    ex = LocalExecutor(workers=1, python_path=[str(HERE)], slots_per_worker=1)
    await ex.start()
    try:
        first = make_request("first", f"{C}:sleep_sync", inputs={"seconds": 0.3})
        second = make_request("second", f"{C}:sleep_sync", inputs={"seconds": 0})
        assert ex.reserve(first) is True
        assert ex.reserve(second) is False  # no free slot: the caller records "waiting"
        assert ex.capacity == (1, 256)
        seen: list[str] = []

        async def started() -> bool:
            seen.append("started")
            return True

        one = asyncio.ensure_future(ex.run(first))
        two = asyncio.ensure_future(ex.run(second, on_started=started))
        r1 = await one
        assert seen == [] or r1.phase == "Succeeded"
        r2 = await two
        assert seen == ["started"]
        assert r2.output["start"] >= r1.output["end"]  # it waited for the slot

        third = make_request("third", f"{C}:sleep_sync", inputs={"seconds": 0})

        async def refuse() -> bool:
            return False

        refused = await ex.run(third, on_started=refuse)
        assert refused.message == "canceled" and not third.log_path.exists()  # nothing ran

        assert ex.reserve(third) is True
        ex.release("third")
        assert ex.capacity == (0, 256)
    finally:
        await ex.close()


async def test_a_reserved_attempt_canceled_before_run_does_not_run(make_request) -> None:
    ex = LocalExecutor(workers=1, python_path=[str(HERE)])
    await ex.start()
    try:
        request = make_request("r", f"{C}:sleep_sync", inputs={"seconds": 0})
        assert ex.reserve(request) is True
        await ex.cancel("r")
        assert ex.capacity[0] == 0  # the slot is free again
        result = await ex.run(request)
        assert result.message == "canceled" and not request.log_path.exists()
    finally:
        await ex.close()
