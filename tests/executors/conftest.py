"""Fixtures for the local executor tests: a warm pool importing tests/executors/engrams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bobrapet.execution.request import ExecutionRequest
from bobrapet.execution.secrets import StepSecrets
from bobrapet.executors.local import LocalExecutor

HERE = Path(__file__).resolve().parent

MakeRequest = Callable[..., ExecutionRequest]


@pytest.fixture
async def executor() -> AsyncIterator[LocalExecutor]:
    ex = LocalExecutor(workers=2, python_path=[str(HERE)], kill_grace=0.2)
    await ex.start()
    try:
        yield ex
    finally:
        await ex.close()


@pytest.fixture
def make_request(tmp_path: Path) -> MakeRequest:
    """Build an ExecutionRequest; the step log goes to tmp_path/logs/<key>.log."""

    def build(
        key: str,
        entrypoint: str | None = None,
        *,
        command: list[str] | None = None,
        inputs: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 10.0,
        debug: bool = False,
        secrets: StepSecrets | None = None,
        workdir: Path | None = None,
    ) -> ExecutionRequest:
        return ExecutionRequest(
            key=key,
            entrypoint=entrypoint,
            command=command,
            inputs=inputs if inputs is not None else {},
            config=config if config is not None else {},
            env=env or {},
            timeout=timeout,
            log_path=tmp_path / "logs" / f"{key}.log",
            workdir=workdir or tmp_path,
            debug=debug,
            secrets=secrets or StepSecrets(),
        )

    return build
