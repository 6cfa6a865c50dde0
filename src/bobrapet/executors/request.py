"""What the engine asks an executor to run, and what comes back.

The types live in :mod:`bobrapet.execution.request` (below the engine, which must not import
executors); this module re-exports them for executor code.
"""

from bobrapet.execution.request import ExecutionRequest, ExecutionResult, Phase, build_env, rfc3339_nano

__all__ = ["ExecutionRequest", "ExecutionResult", "Phase", "build_env", "rfc3339_nano"]
