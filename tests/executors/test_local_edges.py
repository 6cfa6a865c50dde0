"""Edge cases of Python engrams: per-config class instances, import failures, bad inputs/logs."""

from __future__ import annotations

from pathlib import Path

from bobrapet.executors.local import LocalExecutor

E = "engrams.basic"


async def test_class_instances_are_per_config(executor: LocalExecutor, make_request) -> None:
    a1 = await executor.run(make_request("a1", f"{E}:AsyncProcessor", config={"n": 1}))
    b1 = await executor.run(make_request("b1", f"{E}:AsyncProcessor", config={"n": 2}))
    a2 = await executor.run(make_request("a2", f"{E}:AsyncProcessor", config={"n": 1}))
    assert a1.phase == "Succeeded", a1.message
    assert a1.output["config"] == {"n": 1} and b1.output["config"] == {"n": 2}
    assert a1.output["instance"] == a2.output["instance"] != b1.output["instance"]


async def test_import_time_failure_is_initialization_error(executor: LocalExecutor, make_request) -> None:
    request = make_request("bi", "engrams.broken_import:run")
    result = await executor.run(request)
    assert result.phase == "Failed"
    assert result.error is not None and result.error["type"] == "initialization_error"
    assert "RuntimeError: cannot import me" in (result.message or "")
    assert "Traceback" in request.log_path.read_text()


async def test_non_json_inputs_fail_without_touching_a_worker(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(make_request("ni", f"{E}:echo", inputs={"s": {1, 2}}))
    assert result.phase == "Failed"
    assert result.error is not None and result.error["type"] == "serialization_error"


async def test_unwritable_log_fails_step_but_keeps_worker(
    executor: LocalExecutor, make_request, tmp_path: Path
) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log directory should be")
    result = await executor.run(make_request("ul", f"{E}:echo"))
    assert result.phase == "Failed"
    assert "cannot open the step log" in (result.message or "")
    pids = executor.pids
    blocker.unlink()
    ok = await executor.run(make_request("ok", f"{E}:echo"))
    assert ok.phase == "Succeeded" and ok.output["pid"] in pids


async def test_run_starts_the_pool_lazily(make_request) -> None:
    ex = LocalExecutor(workers=1, python_path=[str(Path(__file__).resolve().parent)])
    try:
        assert ex.pids == []
        assert (await ex.run(make_request("lazy", f"{E}:nothing"))).phase == "Succeeded"
        assert len(ex.pids) == 1
    finally:
        await ex.close()
