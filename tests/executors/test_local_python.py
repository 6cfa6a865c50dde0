"""Python engrams on the warm pool: call shapes, failures, logs, env, reuse, reload."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bobrapet.execution.request import build_env
from bobrapet.execution.secrets import StepSecrets
from bobrapet.executors.local import LocalExecutor

E = "engrams.basic"
HERE = Path(__file__).resolve().parent


async def test_sync_function_returns_output(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(make_request("a", f"{E}:echo", inputs={"x": 1}, config={"c": True}))
    assert result.phase == "Succeeded"
    assert result.exit_code == 0
    assert result.error is None and result.message is None and result.exit_class is None
    assert result.output["inputs"] == {"x": 1}
    assert result.output["config"] == {"c": True}
    assert result.output["pid"] in executor.pids
    assert result.output["pid"] != os.getpid()
    assert result.started_at <= result.finished_at


async def test_none_output_is_empty_object(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(make_request("a", f"{E}:nothing"))
    assert (result.phase, result.output) == ("Succeeded", {})


async def test_async_function(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(make_request("a", f"{E}:async_echo", inputs={"y": [1, 2]}))
    assert result.phase == "Succeeded"
    assert result.output == {"async": True, "inputs": {"y": [1, 2]}}


async def test_class_entrypoint_is_initialised_once_per_worker(executor: LocalExecutor, make_request) -> None:
    outputs = []
    for i in range(3):
        request = make_request(
            f"c{i}", f"{E}:Counter", config={"k": "v"}, secrets=StepSecrets(values={"api": {"token": "s3"}})
        )
        outputs.append((await executor.run(request)).output)
    assert [o["inits"] for o in outputs] == [1, 1, 1]
    assert [o["calls"] for o in outputs] == [1, 2, 3]  # same (most recently used) worker each time
    assert outputs[0]["config"] == {"k": "v"}
    assert outputs[0]["secrets"] == {"api": {"token": "s3"}}


async def test_exception_fails_with_message_and_traceback_in_log(
    executor: LocalExecutor, make_request
) -> None:
    request = make_request("boom", f"{E}:boom")
    result = await executor.run(request)
    assert result.phase == "Failed"
    assert result.exit_code == 1
    assert result.message == "ValueError: bad input x"
    assert result.error == {
        "version": "v1",
        "type": "execution_error",
        "message": "ValueError: bad input x",
        "exitCode": 1,
    }
    assert result.exit_class is None
    log = request.log_path.read_text()
    assert "about to fail" in log
    assert "Traceback (most recent call last)" in log and "ValueError: bad input x" in log


async def test_structured_error_controls_exit_class(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(make_request("s", f"{E}:structured"))
    assert result.phase == "Failed"
    assert result.exit_class == "terminal"
    assert result.error == {
        "version": "v1",
        "type": "execution_error",
        "message": "quota exhausted",
        "exitCode": 1,
        "exitClass": "terminal",
        "retryable": False,
        "code": "Quota",
    }


async def test_non_json_output_is_serialization_error(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(make_request("n", f"{E}:not_json"))
    assert result.phase == "Failed"
    assert result.error is not None and result.error["type"] == "serialization_error"
    # the worker is still usable afterwards
    assert (await executor.run(make_request("ok", f"{E}:nothing"))).phase == "Succeeded"


async def test_an_output_that_is_not_a_dict_fails_with_how_to_fix_it(
    executor: LocalExecutor, make_request
) -> None:
    result = await executor.run(make_request("d", f"{E}:not_a_dict"))
    assert result.phase == "Failed"
    assert result.error is not None and result.error["type"] == "serialization_error"
    assert result.message is not None and "returned int, not a dict" in result.message


async def test_init_failure_and_bad_entrypoints_are_initialization_errors(
    executor: LocalExecutor, make_request
) -> None:
    for key, entrypoint, fragment in [
        ("i", f"{E}:FailingInit", "FailingInit.init failed: RuntimeError: no database"),
        ("m", "no_such_module:run", "cannot import 'no_such_module'"),
        ("a", f"{E}:missing", "has no attribute 'missing'"),
        ("f", "no-colon", "invalid entrypoint"),
    ]:
        result = await executor.run(make_request(key, entrypoint))
        assert result.phase == "Failed", key
        assert result.error is not None and result.error["type"] == "initialization_error", key
        assert fragment in (result.message or ""), key


async def test_worker_is_reused_across_steps(executor: LocalExecutor, make_request) -> None:
    first = await executor.run(make_request("1", f"{E}:echo"))
    second = await executor.run(make_request("2", f"{E}:echo"))
    assert first.output["pid"] == second.output["pid"]


async def test_concurrent_steps_keep_their_own_logs(executor: LocalExecutor, make_request) -> None:
    a = make_request("a", f"{E}:chatty", inputs={"tag": "AAA"})
    b = make_request("b", f"{E}:chatty", inputs={"tag": "BBB"})
    ra, rb = await asyncio.gather(executor.run(a), executor.run(b))
    assert (ra.phase, rb.phase) == ("Succeeded", "Succeeded")
    log_a, log_b = a.log_path.read_text(), b.log_path.read_text()
    assert "BBB" not in log_a and "AAA" not in log_b
    for tag, log in (("AAA", log_a), ("BBB", log_b)):
        assert f"{tag} line 19" in log  # print()
        assert f"{tag} raw 19" in log  # os.write on fd 1 (C-level output)
        assert f"{tag} err" in log  # stderr
        assert f"{tag} via logger" in log  # ctx.logger


async def test_worker_output_after_step_does_not_leak_into_log(executor: LocalExecutor, make_request) -> None:
    first = make_request("one", f"{E}:chatty", inputs={"tag": "ONE", "lines": 1})
    await executor.run(first)
    size = first.log_path.stat().st_size
    await executor.run(make_request("two", f"{E}:chatty", inputs={"tag": "TWO", "lines": 1}))
    assert first.log_path.stat().st_size == size


async def test_bubu_env_is_visible_and_restored(
    executor: LocalExecutor, make_request, tmp_path: Path
) -> None:
    env = build_env(
        story="s",
        story_version="v1",
        story_run="run-a",
        step="step1",
        step_run="run-a-step1",
        namespace="default",
        engram="echo",
        engram_version=None,
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        timeout=30,
        debug=False,
        max_inline_size=1024,
    )
    result = await executor.run(make_request("e", f"{E}:env", env=env, workdir=tmp_path))
    seen = result.output["env"]
    assert seen["BUBU_STEPRUN_NAME"] == "run-a-step1"
    assert seen["BUBU_STEP_TIMEOUT"] == "30s"
    assert seen["BUBU_DEBUG"] == "false"
    assert result.output["identity"] == ["s", "run-a", "step1", "run-a-step1", "default", "echo"]
    assert result.output["debug"] is False
    assert result.output["cwd_on_path"] == str(tmp_path)
    later = await executor.run(make_request("e2", f"{E}:env"))
    assert "BUBU_STEPRUN_NAME" not in later.output["env"]


async def test_signals_are_returned_in_order(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(make_request("sig", f"{E}:signals"))
    assert result.output["rejected"].startswith("signal 'big': value is")
    assert [(s["key"], s["payload"]) for s in result.signals] == [
        ("progress", {"pct": 50}),
        ("progress", {"pct": 100}),
    ]
    assert all(s["emittedAt"].endswith("Z") for s in result.signals)


async def test_debug_logs_previews_of_inputs_and_outputs(executor: LocalExecutor, make_request) -> None:
    request = make_request("d", f"{E}:echo", inputs={"big": "x" * 2000}, debug=True)
    result = await executor.run(request)
    assert result.phase == "Succeeded"
    log = request.log_path.read_text()
    inputs_line = next(line for line in log.splitlines() if "inputs: " in line)
    output_line = next(line for line in log.splitlines() if "output: " in line)
    assert len(inputs_line.split("inputs: ", 1)[1]) <= 512 + 20
    assert "…(" in inputs_line and "output: " in output_line
    quiet = make_request("q", f"{E}:echo", inputs={"a": 1})
    await executor.run(quiet)
    assert not quiet.log_path.exists() or "inputs: " not in quiet.log_path.read_text()


async def test_workdir_module_is_reloaded_when_changed(
    executor: LocalExecutor, make_request, tmp_path: Path
) -> None:
    module = tmp_path / "hot_engram.py"
    module.write_text("def run(inputs, ctx):\n    return {'v': 1}\n")
    first = await executor.run(make_request("h1", "hot_engram:run", workdir=tmp_path))
    assert first.output == {"v": 1}
    module.write_text("def run(inputs, ctx):\n    return {'v': 2}\n")
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = await executor.run(make_request("h2", "hot_engram:run", workdir=tmp_path))
    assert second.output == {"v": 2}
    assert first.started_at < second.started_at


async def test_requests_wait_when_all_workers_are_busy(make_request) -> None:
    ex = LocalExecutor(workers=1, python_path=[str(HERE)])
    try:
        results = await asyncio.gather(*(ex.run(make_request(f"w{i}", f"{E}:echo")) for i in range(5)))
        assert all(r.phase == "Succeeded" for r in results)
        assert len({r.output["pid"] for r in results}) == 1
        assert len(ex.pids) == 1  # they waited for the one worker; none was added
    finally:
        await ex.close()


async def test_max_tasks_per_worker_recycles_workers(make_request) -> None:
    ex = LocalExecutor(workers=1, python_path=[str(HERE)], max_tasks_per_worker=2)
    try:
        pids = [(await ex.run(make_request(f"r{i}", f"{E}:echo"))).output["pid"] for i in range(4)]
        assert pids[0] == pids[1] and pids[2] == pids[3] and pids[1] != pids[2]
    finally:
        await ex.close()


def test_worker_imports_stay_light() -> None:
    import subprocess

    code = (
        "import sys, bobrapet.executors.local.worker;"
        "print(','.join(m for m in ('pydantic','jinja2','jsonschema','bobrapet.api','asyncio','yaml') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


async def test_every_attempt_log_starts_with_its_header(
    executor: LocalExecutor, make_request, tmp_path: Path
) -> None:
    """Logs created from spare inodes or by open, first attempts and retries alike: each
    attempt's header comes before its lines, and its inputs record is written before its
    result comes back."""
    inputs_log = tmp_path / "logs" / "run.inputs.jsonl"

    def attempt(key: str, n: int, tag: str) -> Any:
        request = make_request(key, f"{E}:chatty", inputs={"tag": tag, "lines": 2})
        return dataclasses.replace(
            request,
            log_header=f"--- attempt {n}\n",
            inputs_record=json.dumps({"key": key, "attempt": n}),
            inputs_log=inputs_log,
        )

    for i in range(6):
        first = attempt(f"h{i}", 1, f"T{i}")
        assert (await executor.run(first)).phase == "Succeeded"
        assert first.log_path.read_text().startswith("--- attempt 1\n")
        retry = attempt(f"h{i}", 2, f"R{i}")
        assert (await executor.run(retry)).phase == "Succeeded"
        log = retry.log_path.read_text()
        assert log.count("--- attempt 1\n") == log.count("--- attempt 2\n") == 1
        head, tail = log.split("--- attempt 2\n")
        assert f"T{i} line 1" in head and f"R{i} line 1" in tail and f"R{i}" not in head
    together = [attempt(f"c{i}", 1, f"C{i}") for i in range(8)]
    results = await asyncio.gather(*(executor.run(r) for r in together))
    assert {r.phase for r in results} == {"Succeeded"}
    for request in together:
        assert request.log_path.read_text().startswith("--- attempt 1\n")
    records = [json.loads(line) for line in inputs_log.read_text().splitlines()]
    assert len(records) == 6 * 2 + 8
