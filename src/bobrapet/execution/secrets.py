"""The secrets of one step attempt, as the engine hands them to an executor (reference §8.3).

Built by :func:`bobrapet.engine.secrets.resolve_step_secrets` from the template's
``secretSchema`` and the bound Secret objects; delivered by the executor
(:mod:`bobrapet.executors.local.secrets`): ``env`` is added to the step's environment,
each :class:`SecretFiles` becomes one file per key in a private per-attempt directory, and
``values`` is what a Python engram sees as ``ctx.secrets``.

Invariants: every value is text (the Secret's base64 ``data`` already decoded);
``SecretFiles.path`` is a relative POSIX path without ``..`` and every file key is a
Kubernetes Secret key (``[-._a-zA-Z0-9]+``, not ``.``/``..``), so writing a mount never
leaves the attempt's directory; ``repr`` never shows a value.

It lives in :mod:`bobrapet.execution` so the pure engine builds it without importing
:mod:`bobrapet.executors`; ``bobrapet.execution.secrets`` re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bobrapet.sdk.redact import redaction_terms

#: Variable naming the attempt's private directory that holds the file-mounted secrets.
SECRETS_DIR_ENV = "BUBU_SECRETS_DIR"
#: ``BUBU_SECRET_<logical name>`` describes where a secret is (``env:<prefix>``/``file:<dir>``).
SECRET_ENV_PREFIX = "BUBU_SECRET_"


@dataclass(frozen=True, repr=False)
class SecretFiles:
    """One logical secret mounted as files: ``<attempt dir>/<path>/<key>`` holds ``values[key]``."""

    name: str
    path: str
    values: Mapping[str, str]
    #: Whether ``BUBU_SECRET_<name>`` is ``file:<dir>`` (mountType ``file``; ``both`` keeps ``env:``).
    descriptor: bool

    def __repr__(self) -> str:
        return f"SecretFiles(name={self.name!r}, path={self.path!r}, keys={sorted(self.values)!r})"


@dataclass(frozen=True, repr=False)
class StepSecrets:
    """Everything secret a step attempt receives; empty when the step binds no secrets."""

    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    files: tuple[SecretFiles, ...] = ()
    #: Further texts to hide (values of ``$bubuSecretRef`` references resolved into the inputs).
    redact: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.values or self.env or self.files or self.redact)

    def __repr__(self) -> str:
        keys = {name: sorted(keys) for name, keys in self.values.items()}
        return f"StepSecrets(keys={keys!r}, env={sorted(self.env)!r}, files={list(self.files)!r})"

    def wire(self) -> dict[str, dict[str, str]]:
        """``ctx.secrets`` as plain JSON: logical name -> key -> value."""
        return {name: dict(keys) for name, keys in self.values.items()}

    def redaction_terms(self) -> tuple[str, ...]:
        """The secret texts to hide from messages (:func:`bobrapet.sdk.redact.redact`)."""
        return redaction_terms(self.values, self.redact)
