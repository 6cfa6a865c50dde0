"""Delivering a step attempt's secrets on this machine (reference §8.3, embedded mode).

:func:`mounted` yields the request to run: its ``env`` gains the secret variables (the
request's own ``BUBU_*`` variables win on a clash) and, when the step has file-mounted
secrets, ``BUBU_SECRETS_DIR`` plus ``BUBU_SECRET_<name>=file:<dir>``. Files are written
before the attempt starts and removed when it ends, whatever the outcome.

Invariants: the attempt directory is created by ``mkdtemp`` (mode 0700, a fresh unique name)
under ``/dev/shm`` when that is a writable directory (memory, like a Kubernetes secret
volume), else the system temporary directory; each file is created exclusively with mode
0600; nothing of it remains after :func:`mounted` exits. The directory's name carries the
engine's pid, so :func:`sweep_stale` (called when an executor starts) removes what an engine
killed mid-step left behind. :func:`redacted` hides secret values in the result's message and
error (never in the output: steps may pass a token on on purpose).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bobrapet.execution.request import ExecutionRequest, ExecutionResult
from bobrapet.execution.secrets import SECRET_ENV_PREFIX, SECRETS_DIR_ENV
from bobrapet.sdk.redact import redact

_SHM = Path("/dev/shm")
_PREFIX = "bobrapet-secrets-"


class SecretMountError(Exception):
    """The secret files could not be written (the attempt fails without running)."""


def _base_dir() -> str | None:
    if _SHM.is_dir() and os.access(_SHM, os.W_OK | os.X_OK):
        return str(_SHM)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> None:
    """Remove attempt directories of engines that are gone (killed before they cleaned up)."""
    base = Path(_base_dir() or tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in base.glob(f"{_PREFIX}*-*"):
            pid = entry.name[len(_PREFIX) :].split("-", 1)[0]
            if not pid.isdigit() or _pid_alive(int(pid)):
                continue
            info = entry.lstat()
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
                shutil.rmtree(entry, ignore_errors=True)


def _write_private(path: Path, value: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)


@contextlib.contextmanager
def mounted(request: ExecutionRequest) -> Iterator[ExecutionRequest]:
    """``request`` with its secrets delivered; raises :class:`SecretMountError` before yielding."""
    secrets = request.secrets
    if not secrets.env and not secrets.files:
        yield request
        return
    env = dict(secrets.env)
    root: Path | None = None
    try:
        if secrets.files:
            try:
                root = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=_base_dir()))
                for mount in secrets.files:
                    directory = root / mount.path
                    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                    for key, value in mount.values.items():
                        _write_private(directory / key, value)
                    if mount.descriptor:
                        env[f"{SECRET_ENV_PREFIX}{mount.name}"] = f"file:{directory}"
            except OSError as exc:
                problem = exc.strerror or str(exc)
                raise SecretMountError(f"cannot write the step's secret files: {problem}") from None
            env[SECRETS_DIR_ENV] = str(root)
        yield dataclasses.replace(request, env={**env, **request.env})
    finally:
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def redacted(result: ExecutionResult, request: ExecutionRequest) -> ExecutionResult:
    """``result`` with the request's secret values hidden in ``message`` and ``error.message``."""
    terms = request.secrets.redaction_terms()
    if not terms:
        return result
    error = result.error
    if error is not None and isinstance(error.get("message"), str):
        error = {**error, "message": redact(error["message"], terms)}
    message = redact(result.message, terms) if result.message else result.message
    return dataclasses.replace(result, message=message, error=error)
