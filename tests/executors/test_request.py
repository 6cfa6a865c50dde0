"""ExecutionRequest validation, build_env and the executor-side failure results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bobrapet.execution.request import ExecutionRequest, build_env
from bobrapet.executors.outcomes import canceled, exit_status, failed, timed_out

T0 = datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)


def _env(**overrides: object) -> dict[str, str]:
    args: dict[str, object] = {
        "story": "etl",
        "story_version": None,
        "story_run": "etl-x1",
        "step": "fetch",
        "step_run": "etl-x1-fetch",
        "namespace": "default",
        "engram": "http",
        "engram_version": None,
        "started_at": T0,
        "timeout": 90,
        "debug": True,
        "max_inline_size": 1024,
    }
    args.update(overrides)
    return build_env(**args)  # type: ignore[arg-type]


def test_build_env_identity_and_execution_vars() -> None:
    env = _env()
    assert env == {
        "BUBU_STORY_NAME": "etl",
        "BUBU_STORYRUN_ID": "etl-x1",
        "BUBU_STEP_NAME": "fetch",
        "BUBU_STEPRUN_NAME": "etl-x1-fetch",
        "BUBU_STEPRUN_NAMESPACE": "default",
        "BUBU_ENGRAM_NAME": "http",
        "BUBU_STARTED_AT": "2026-05-01T10:00:00.123456Z",
        "BUBU_EXECUTION_MODE": "batch",
        "BUBU_HYBRID_BRIDGE": "false",
        "BUBU_MAX_INLINE_SIZE": "1024",
        "BUBU_STEP_TIMEOUT": "1m30s",
        "BUBU_DEBUG": "true",
    }


def test_build_env_versions_and_extra() -> None:
    env = _env(story_version="v2", engram_version="1.0", timeout=0.5, debug=False, extra={"BUBU_X": "y"})
    assert env["BUBU_STORY_VERSION"] == "v2"
    assert env["BUBU_ENGRAM_VERSION"] == "1.0"
    assert env["BUBU_STEP_TIMEOUT"] == "500ms"
    assert env["BUBU_DEBUG"] == "false"
    assert env["BUBU_X"] == "y"


def test_build_env_idempotency_key() -> None:
    assert _env(idempotency_key="ns/d/storyrun/r/step/s")["BUBU_IDEMPOTENCY_KEY"] == "ns/d/storyrun/r/step/s"
    assert "BUBU_IDEMPOTENCY_KEY" not in _env(idempotency_key="")


@pytest.mark.parametrize(
    ("entrypoint", "command", "timeout"),
    [(None, None, 1.0), ("m:f", ["x"], 1.0), (None, [], 1.0), ("m:f", None, 0.0)],
)
def test_request_validation(entrypoint: str | None, command: list[str] | None, timeout: float) -> None:
    with pytest.raises(ValueError):
        ExecutionRequest(
            key="k",
            entrypoint=entrypoint,
            command=command,
            inputs={},
            config={},
            env={},
            timeout=timeout,
            log_path=Path("l"),
            workdir=Path("."),
        )


def test_exit_status_mapping() -> None:
    assert exit_status(-11) == (139, "killed by signal 11")
    assert exit_status(3) == (3, "exited with code 3")
    assert exit_status(None) == (-1, "exited with an unknown status")


def test_failure_results_are_structured_errors() -> None:
    result = timed_out(2, started_at=T0, finished_at=T0)
    assert (result.phase, result.exit_code, result.message) == ("Timeout", 124, "timed out after 2s")
    assert result.error == {
        "version": "v1",
        "type": "timeout",
        "message": "timed out after 2s",
        "exitCode": 124,
    }
    cancel = canceled(started_at=T0, finished_at=T0)
    assert cancel.error == {
        "version": "v1",
        "type": "execution_error",
        "message": "canceled",
        "code": "Canceled",
        "retryable": False,
    }
    fail = failed("x", started_at=T0, finished_at=T0, exit_code=2, error_type="storage_error")
    assert fail.error == {"version": "v1", "type": "storage_error", "message": "x", "exitCode": 2}
