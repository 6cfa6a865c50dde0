"""Command engrams: env in, output file out, exit codes, timeouts, cancellation."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from bobrapet.executors.local import LocalExecutor

PY = sys.executable


async def test_command_success_with_output_file(
    executor: LocalExecutor, make_request, tmp_path: Path
) -> None:
    script = (
        "import json, os, sys;"
        "inputs = json.loads(os.environ['BUBU_TRIGGER_DATA']);"
        "config = json.loads(os.environ['BUBU_STEP_CONFIG']);"
        "print('hello from', os.getcwd());"
        "print('to stderr', file=sys.stderr);"
        "out = {'sum': inputs['a'] + inputs['b'], 'c': config};"
        "open(os.environ['BUBU_OUTPUT_PATH'], 'w').write(json.dumps(out))"
    )
    request = make_request("cmd", command=[PY, "-c", script], inputs={"a": 1, "b": 2}, config={"k": 1})
    result = await executor.run(request)
    assert result.phase == "Succeeded", result.message
    assert result.output == {"sum": 3, "c": {"k": 1}}
    assert result.exit_code == 0 and result.error is None
    log = request.log_path.read_text()
    assert f"hello from {tmp_path}" in log and "to stderr" in log


async def test_command_using_sdk_helpers(executor: LocalExecutor, make_request) -> None:
    script = (
        "from bobrapet.sdk.command import read_inputs, write_output;"
        "inputs = read_inputs(); write_output({'double': inputs['n'] * 2})"
    )
    request = make_request("sdk", command=[PY, "-c", script], inputs={"n": 21}, debug=True)
    result = await executor.run(request)
    assert result.output == {"double": 42}
    assert '[bobrapet debug] inputs: {"n":21}' in request.log_path.read_text()


async def test_missing_output_file_is_empty_object(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(make_request("none", command=["true"]))
    assert (result.phase, result.output) == ("Succeeded", {})


async def test_invalid_output_json_is_serialization_error(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(
        make_request("bad", command=["sh", "-c", 'echo "{nope" > "$BUBU_OUTPUT_PATH"'])
    )
    assert result.phase == "Failed"
    assert result.error is not None and result.error["type"] == "serialization_error"


async def test_non_zero_exit_fails_with_that_code(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(make_request("x", command=["sh", "-c", "echo oops >&2; exit 7"]))
    assert result.phase == "Failed"
    assert result.exit_code == 7
    assert result.message == "command exited with code 7"
    assert result.error is not None and result.error["exitCode"] == 7


async def test_missing_program(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(make_request("m", command=["/nonexistent/program"]))
    assert (result.phase, result.exit_code) == ("Failed", 127)


async def test_command_timeout_kills_the_process_group(
    executor: LocalExecutor, make_request, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child.pid"
    request = make_request("t", command=["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"], timeout=0.5)
    t0 = time.monotonic()
    result = await executor.run(request)
    assert time.monotonic() - t0 < 10  # killed, not waited for: `wait` alone takes 30 s
    assert result.phase == "Timeout"
    assert result.exit_code == 124
    assert result.error is not None and result.error["type"] == "timeout"
    child = int(pidfile.read_text())
    await asyncio.sleep(0.1)
    assert not _running(child), "the background child of the command survived"


async def test_bubu_env_reaches_command(executor: LocalExecutor, make_request) -> None:
    script = (
        "import json, os;"
        "open(os.environ['BUBU_OUTPUT_PATH'], 'w').write(json.dumps("
        "{k: v for k, v in os.environ.items() if k.startswith('BUBU_') and k != 'BUBU_OUTPUT_PATH'}))"
    )
    request = make_request(
        "env", command=[PY, "-c", script], env={"BUBU_STEPRUN_NAME": "r-s"}, inputs={"q": 1}
    )
    result = await executor.run(request)
    assert result.output["BUBU_STEPRUN_NAME"] == "r-s"
    assert result.output["BUBU_TRIGGER_DATA"] == '{"q":1}'
    assert result.output["BUBU_DEBUG"] == "false"


async def test_cancel_running_command(executor: LocalExecutor, make_request) -> None:
    task = asyncio.ensure_future(executor.run(make_request("c", command=["sleep", "30"])))
    await asyncio.sleep(0.2)
    await executor.cancel("c")
    result = await asyncio.wait_for(task, 3)
    assert (result.phase, result.message) == ("Failed", "canceled")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False
