"""Running a command engram as a subprocess (DESIGN "Execution", reference §8.3, §7).

Invariants:

* argv runs with ``cwd=workdir`` in a new session, env = engine env + request env +
  the inputs, ``BUBU_STEP_CONFIG``, ``BUBU_OUTPUT_PATH``, ``BUBU_DEBUG``; stdout and stderr
  are appended to the step log;
* inputs: a shell script cannot read storage references, so inputs holding references are
  hydrated first, by a helper process (``python -m bobrapet.storage.helper``: the engine
  never loads a large payload); inputs up to :data:`MAX_ENV_DATA` bytes of JSON are in
  ``BUBU_TRIGGER_DATA``, larger ones in the file named by ``BUBU_TRIGGER_DATA_PATH`` (then
  ``BUBU_TRIGGER_DATA`` is not set); ``BUBU_STEP_CONFIG``/``BUBU_STEP_CONFIG_PATH`` likewise;
* exit 0 = Succeeded with the JSON in the output file (missing -> ``{}``; invalid -> Failed
  serialization_error); an output file larger than the step's ``BUBU_MAX_INLINE_SIZE`` is
  dehydrated before it reaches the engine's result: in a thread up to
  :data:`IN_PROCESS_DEHYDRATE` bytes, by the helper process above; non-zero exit = Failed
  with that exit code; timeout -> the group is killed, Timeout/124;
* the output file and the input files are removed afterwards.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bobrapet.execution.request import ExecutionRequest, ExecutionResult
from bobrapet.executors.local.killing import terminate_group
from bobrapet.executors.local.process import worker_env
from bobrapet.executors.logpath import append_inputs_record, open_attempt_log
from bobrapet.executors.outcomes import canceled, exit_status, failed, timed_out
from bobrapet.storage.errors import StorageError
from bobrapet.storage.refs import contains_refs
from bobrapet.storage.settings import MAX_INLINE_SIZE
from bobrapet.storage.step import StepStorage

#: Largest inputs (JSON bytes) passed in ``BUBU_TRIGGER_DATA``; larger ones go in a file
#: (Linux refuses a single environment string above 128 KiB: "Argument list too long").
MAX_ENV_DATA = 64 * 1024
#: Output files up to this size are dehydrated in a thread of the engine; larger ones by the
#: storage helper process, so the engine never holds a large output.
IN_PROCESS_DEHYDRATE = 1 << 20
TRIGGER_DATA = "BUBU_TRIGGER_DATA"
STEP_CONFIG = "BUBU_STEP_CONFIG"
PATH_SUFFIX = "_PATH"
HELPER = "bobrapet.storage.helper"
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def _now() -> datetime:
    return datetime.now(UTC)


class _Refused(Exception):
    """The attempt fails before (or after) its command: ``result`` says why."""

    def __init__(self, message: str, *, error_type: str = "storage_error", retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.retryable = retryable

    def result(self, started: datetime) -> ExecutionResult:
        outcome = failed(self.message, started_at=started, finished_at=_now(), error_type=self.error_type)
        if self.retryable:
            return outcome
        error = {**(outcome.error or {}), "exitClass": "terminal"}
        return replace(outcome, exit_class="terminal", error=error)


def _base_env(request: ExecutionRequest, output_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(request.env)
    env["BUBU_OUTPUT_PATH"] = str(output_path)
    env["BUBU_DEBUG"] = "true" if request.debug else "false"
    return env


def _put(env: dict[str, str], name: str, text: str, path: Path, files: list[Path]) -> None:
    """``name`` = ``text`` when it is small, else ``text`` in ``path`` named by ``name_PATH``."""
    if len(text) <= MAX_ENV_DATA and len(text.encode()) <= MAX_ENV_DATA:
        env[name] = text
        return
    path.write_text(text, encoding="utf-8")
    files.append(path)
    env[name + PATH_SUFFIX] = str(path)


def _put_file(env: dict[str, str], name: str, path: Path) -> None:
    """``name`` from the JSON file ``path`` (written by the helper) when it is small."""
    if path.stat().st_size <= MAX_ENV_DATA:
        env[name] = path.read_text(encoding="utf-8")
    else:
        env[name + PATH_SUFFIX] = str(path)


def command_env(
    request: ExecutionRequest, output_path: Path, files: list[Path] | None = None
) -> dict[str, str]:
    """The environment of a command engram whose inputs hold no storage references."""
    files = files if files is not None else []
    env = _base_env(request, output_path)
    inputs_text = _COMPACT.encode(request.inputs)
    _put(env, TRIGGER_DATA, inputs_text, output_path.with_suffix(".inputs.json"), files)
    same = request.config is request.inputs
    config_text = inputs_text if same else _COMPACT.encode(request.config)
    config_path = output_path.with_suffix(".inputs.json" if same else ".config.json")
    if same and TRIGGER_DATA + PATH_SUFFIX in env:
        env[STEP_CONFIG + PATH_SUFFIX] = env[TRIGGER_DATA + PATH_SUFFIX]
    else:
        _put(env, STEP_CONFIG, config_text, config_path, files)
    return env


async def _helper(args: list[str], env: Mapping[str, str], stdin: bytes | None, timeout: float) -> bytes:
    """Run the storage helper; its stdout. Raises :class:`_Refused` when it fails."""
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", HELPER, *args,
        env=worker_env([], env), stdin=pipe if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=pipe, stderr=pipe, start_new_session=True,
    )  # fmt: skip
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(stdin)
    except BaseException:
        await terminate_group(proc, 0.2)
        raise
    if proc.returncode == 0:
        return out
    try:
        problem = json.loads(out)
        raise _Refused(
            str(problem["error"]), error_type=str(problem["type"]), retryable=bool(problem["retryable"])
        )
    except (ValueError, KeyError, TypeError):
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise _Refused(f"the storage helper failed: {tail[0]}", retryable=True) from None


async def prepare_env(request: ExecutionRequest, output_path: Path, files: list[Path]) -> dict[str, str]:
    """The command's environment, its inputs hydrated when they hold storage references."""
    if not (contains_refs(request.inputs) or contains_refs(request.config)):
        try:
            return command_env(request, output_path, files)
        except (TypeError, ValueError) as exc:
            raise _Refused(
                f"inputs are not JSON-serializable: {exc}", error_type="serialization_error"
            ) from None
    env = _base_env(request, output_path)
    inputs_file = output_path.with_suffix(".inputs.json")
    same = request.config is request.inputs
    config_file = inputs_file if same else output_path.with_suffix(".config.json")
    files.extend(dict.fromkeys((inputs_file, config_file)))
    payload = _COMPACT.encode({"inputs": request.inputs, "config": {} if same else request.config}).encode()
    await _helper(
        ["hydrate", str(inputs_file), os.devnull if same else str(config_file)], env, payload, request.timeout
    )
    _put_file(env, TRIGGER_DATA, inputs_file)
    _put_file(env, STEP_CONFIG, config_file)
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


def _dehydrate_here(path: Path, env: Mapping[str, str]) -> tuple[Any, str | None]:
    output, problem = _read_output(path)
    if problem is not None:
        return output, problem
    return StepStorage.from_env(env).dehydrate_output(output), None


async def collect_output(
    request: ExecutionRequest, path: Path, env: Mapping[str, str]
) -> tuple[Any, str | None]:
    """The command's output as the engine records it: small, large values offloaded."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return {}, None
    limit = (request.env.get(MAX_INLINE_SIZE) or "").strip()
    if not limit.isdigit() or size <= int(limit):
        return _read_output(path)
    try:
        if size <= IN_PROCESS_DEHYDRATE:
            return await asyncio.to_thread(_dehydrate_here, path, env)
    except StorageError as exc:
        raise _Refused(exc.message, retryable=exc.retryable) from None
    out = await _helper(["dehydrate", str(path)], env, None, request.timeout)
    return json.loads(out), None


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
    files: list[Path] = []
    try:
        try:
            env = await prepare_env(request, output_path, files)
        except _Refused as refused:
            return refused.result(started)
        return await _run(request, output_path, env, grace, on_started, is_canceled, started)
    finally:
        output_path.unlink(missing_ok=True)
        for path in files:
            path.unlink(missing_ok=True)


async def _run(
    request: ExecutionRequest,
    output_path: Path,
    env: dict[str, str],
    grace: float,
    on_started: Callable[[asyncio.subprocess.Process], None],
    is_canceled: Callable[[], bool],
    started: datetime,
) -> ExecutionResult:
    assert request.command is not None
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
    except OSError as exc:
        if exc.errno != errno.E2BIG:
            raise
        message = (
            "the command's environment is too large to start it (Argument list too long); "
            "pass large data through storage or files instead of environment variables"
        )
        return _Refused(message, error_type="execution_error").result(started)
    finally:
        os.close(log_fd)
    on_started(proc)
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
    try:
        output, problem = await collect_output(request, output_path, env)
    except _Refused as refused:
        return refused.result(started)
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
