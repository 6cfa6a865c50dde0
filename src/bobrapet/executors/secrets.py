"""The secrets of one step attempt, as the engine hands them to an executor (reference §8.3).

The types live in :mod:`bobrapet.execution.secrets` (below the engine, which must not import
executors); this module re-exports them for executor code.
"""

from bobrapet.execution.secrets import SECRET_ENV_PREFIX, SECRETS_DIR_ENV, SecretFiles, StepSecrets

__all__ = ["SECRETS_DIR_ENV", "SECRET_ENV_PREFIX", "SecretFiles", "StepSecrets"]
