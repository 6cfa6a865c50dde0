"""Running a command engram as a subprocess (DESIGN "Execution", reference §8.3).

Invariants: argv runs with ``cwd=workdir`` in a new session, env = engine env + request env +
``BUBU_TRIGGER_DATA`` (inputs JSON), ``BUBU_STEP_CONFIG``, ``BUBU_OUTPUT_PATH``,
``BUBU_DEBUG``; stdout and stderr are appended to the step log. Exit 0 = Succeeded with the
JSON in the output file (missing -> ``{}``; invalid -> Failed serialization_error); non-zero =
Failed with that exit code; timeout -> the group is killed, Timeout/124. The output file is
removed afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bobrapet.execution.request import ExecutionRequest, ExecutionResult
from bobrapet.executors.local.killing import terminate_group
from bobrapet.executors.logpath import append_inputs_record, open_attempt_log
from bobrapet.executors.outcomes import canceled, exit_status, failed, timed_out


def _now() -> datetime:
    return datetime.now(UTC)


def command_env(request: ExecutionRequest, output_path: Path) -> dict[str, str]:
    """The environment of a command engram."""
    env = dict(os.environ)
    env.update(request.env)
    env["BUBU_TRIGGER_DATA"] = json.dumps(request.inputs, separators=(",", ":"))
    env["BUBU_STEP_CONFIG"] = json.dumps(request.config, separators=(",", ":"))
    env["BUBU_OUTPUT_PATH"] = str(output_path)
    env["BUBU_DEBUG"] = "true" if request.debug else "false"
    return env


def _read_output(path: Path) -> tuple[Any, str | None]:
    """(output, error message) from the output file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read the output file: {exc}"
    if not raw.strip():
        return {}, None
    try:
        return json.loads(raw), None
    except ValueError as exc:
        return None, f"output file is not valid JSON: {exc}"


async def run_command(
    request: ExecutionRequest,
    output_path: Path,
    grace: float,
    on_started: Callable[[asyncio.subprocess.Process], None],
    is_canceled: Callable[[], bool],
) -> ExecutionResult:
    """Run ``request.command`` to completion, timeout or cancellation."""
    assert request.command is not None
    started = _now()
    try:
        env = command_env(request, output_path)
    except (TypeError, ValueError) as exc:
        return failed(
            f"inputs are not JSON-serializable: {exc}",
            started_at=started,
            finished_at=_now(),
            error_type="serialization_error",
        )
    log_fd = open_attempt_log(request.log_path, request.log_header)
    append_inputs_record(request.inputs_log, request.inputs_record)
    try:
        proc = await asyncio.create_subprocess_exec(
            *request.command,
            cwd=request.workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        return failed(f"command not found: {exc}", started_at=started, finished_at=_now(), exit_code=127)
    except PermissionError as exc:
        return failed(f"command not executable: {exc}", started_at=started, finished_at=_now(), exit_code=126)
    finally:
        os.close(log_fd)
    on_started(proc)
    try:
        try:
            async with asyncio.timeout(request.timeout):
                returncode = await proc.wait()
        except TimeoutError:
            await terminate_group(proc, grace)
            return timed_out(request.timeout, started_at=started, finished_at=_now())
        except BaseException:
            await terminate_group(proc, grace)
            raise
        if is_canceled():
            code, _ = exit_status(returncode)
            return canceled(started_at=started, finished_at=_now(), exit_code=code)
        if returncode != 0:
            code, text = exit_status(returncode)
            return failed(f"command {text}", started_at=started, finished_at=_now(), exit_code=code)
        output, problem = _read_output(output_path)
        if problem is not None:
            return failed(problem, started_at=started, finished_at=_now(), error_type="serialization_error")
        return ExecutionResult(
            phase="Succeeded",
            output=output,
            exit_code=0,
            exit_class=None,
            error=None,
            message=None,
            signals=[],
            started_at=started,
            finished_at=_now(),
        )
    finally:
        output_path.unlink(missing_ok=True)
