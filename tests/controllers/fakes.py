"""Test doubles of the executor seam for controller tests."""

from __future__ import annotations

from datetime import UTC, datetime

from bobrapet.execution.request import ExecutionRequest, ExecutionResult

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class EchoExecutor:
    """Every attempt succeeds at once with its inputs as output; ``requests`` records them."""

    def __init__(self) -> None:
        self.requests: list[ExecutionRequest] = []

    @property
    def keys(self) -> list[str]:
        return [r.key for r in self.requests]

    async def run(self, request: ExecutionRequest) -> ExecutionResult:
        self.requests.append(request)
        return ExecutionResult("Succeeded", dict(request.inputs), 0, None, None, None, [], NOW, NOW)

    async def cancel(self, key: str) -> None:
        return None

    def reserve(self, request: ExecutionRequest) -> bool:
        return True

    def release(self, key: str) -> None:
        return None
