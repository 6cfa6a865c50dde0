"""Timeouts, crashes and cancellation on the warm pool: the step fails, the pool recovers."""

from __future__ import annotations

import asyncio
import time

from bobrapet.executors.local import LocalExecutor

E = "engrams.basic"
HANG_S = 60  # how long engrams.basic:hang sleeps


async def _pool_refilled(executor: LocalExecutor, size: int = 2) -> list[int]:
    for _ in range(200):
        if len(executor.pids) == size:
            return executor.pids
        await asyncio.sleep(0.01)
    raise AssertionError(f"pool not refilled: {executor.pids}")


async def test_hang_times_out_and_worker_is_replaced(executor: LocalExecutor, make_request) -> None:
    warm = await executor.run(make_request("warm", f"{E}:echo"))
    hung_pid = warm.output["pid"]
    t0 = time.monotonic()
    result = await executor.run(make_request("hang", f"{E}:hang", timeout=0.5))
    elapsed = time.monotonic() - t0
    assert result.phase == "Timeout"
    assert result.exit_code == 124
    assert result.message == "timed out after 0.5s"
    assert result.error == {
        "version": "v1",
        "type": "timeout",
        "message": "timed out after 0.5s",
        "exitCode": 124,
    }
    # Not early; the upper bound only tells "the timeout fired" from "the 60 s hang ran out",
    # so a loaded machine cannot trip it (the precise figure is not a unit-test matter).
    assert 0.45 <= elapsed < HANG_S / 3
    pids = await _pool_refilled(executor)
    assert hung_pid not in pids  # the most recently used worker ran the hang and was replaced
    after = await executor.run(make_request("after", f"{E}:echo"))
    assert after.phase == "Succeeded"


async def test_os_exit_fails_step_and_pool_recovers(executor: LocalExecutor, make_request) -> None:
    request = make_request("exit3", f"{E}:exit3")
    result = await executor.run(request)
    assert result.phase == "Failed"
    assert result.exit_code == 3
    assert result.message == "worker exited with code 3"
    assert result.error is not None and result.error["exitCode"] == 3
    assert "exiting hard" in request.log_path.read_text()
    assert (await executor.run(make_request("next", f"{E}:echo"))).phase == "Succeeded"
    await _pool_refilled(executor)


async def test_segfault_fails_step_with_signal_and_pool_recovers(
    executor: LocalExecutor, make_request
) -> None:
    request = make_request("segv", f"{E}:segfault")
    result = await executor.run(request)
    assert result.phase == "Failed"
    assert result.exit_code == 128 + 11
    assert result.message == "killed by signal 11"
    assert "Segmentation fault" in request.log_path.read_text()  # faulthandler output in the step log
    outcomes = await asyncio.gather(*(executor.run(make_request(f"n{i}", f"{E}:echo")) for i in range(4)))
    assert all(r.phase == "Succeeded" for r in outcomes)


async def test_signals_emitted_before_a_crash_are_kept(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(make_request("sc", f"{E}:signal_then_crash"))
    assert result.exit_code == 5
    assert [s["key"] for s in result.signals] == ["before"]


async def test_a_crash_does_not_disturb_a_concurrent_step(executor: LocalExecutor, make_request) -> None:
    slow = make_request("slow", f"{E}:chatty", inputs={"tag": "S", "lines": 20})
    crash = make_request("crash", f"{E}:exit3")
    slow_result, crash_result = await asyncio.gather(executor.run(slow), executor.run(crash))
    assert slow_result.phase == "Succeeded"
    assert crash_result.exit_code == 3


async def test_cancel_running_python_step(executor: LocalExecutor, make_request) -> None:
    task = asyncio.ensure_future(executor.run(make_request("c", f"{E}:hang", timeout=30)))
    await asyncio.sleep(0.3)
    t0 = time.monotonic()
    await executor.cancel("c")
    result = await task
    assert time.monotonic() - t0 < HANG_S / 3  # the cancel stopped the 60 s hang
    assert result.phase == "Failed"
    assert result.message == "canceled"
    assert result.error is not None and result.error["retryable"] is False
    await _pool_refilled(executor)
    assert (await executor.run(make_request("after", f"{E}:echo"))).phase == "Succeeded"


async def test_cancel_queued_step(make_request) -> None:
    from pathlib import Path

    here = str(Path(__file__).resolve().parent)
    ex = LocalExecutor(workers=1, python_path=[here], kill_grace=0.2, slots_per_worker=1)
    try:
        running = asyncio.ensure_future(ex.run(make_request("busy", f"{E}:hang", timeout=30)))
        queued = asyncio.ensure_future(ex.run(make_request("queued", f"{E}:echo")))
        await asyncio.sleep(0.2)
        await ex.cancel("queued")
        result = await asyncio.wait_for(queued, 2)
        assert (result.phase, result.message) == ("Failed", "canceled")
        await ex.cancel("busy")
        assert (await running).message == "canceled"
        assert (await ex.run(make_request("after", f"{E}:echo"))).phase == "Succeeded"
    finally:
        await ex.close()


async def test_cancel_unknown_key_is_ignored(executor: LocalExecutor) -> None:
    await executor.cancel("nobody")


async def test_close_stops_workers(make_request) -> None:
    import os
    from pathlib import Path

    ex = LocalExecutor(workers=2, python_path=[str(Path(__file__).resolve().parent)])
    await ex.start()
    await ex.run(make_request("x", f"{E}:echo"))
    pids = ex.pids
    await ex.close()
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"worker {pid} still running")
