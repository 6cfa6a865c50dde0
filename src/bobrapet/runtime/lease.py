"""Engine liveness leases: one ``flock``-ed file per engine process sharing a home directory.

Invariants: while a lease is held, ``<dir>/<id>.lock`` exists and an exclusive ``flock`` is
held on it by the holder's open file (the kernel drops the lock when the holder dies, even
by SIGKILL). The file is created under a temporary name, locked, then renamed into place, so
no observer ever sees an unlocked lease file of a live holder. ``is_alive`` is True iff the
file exists and is locked; an unlocked (stale) file is removed.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
from pathlib import Path


class EngineLease:
    """Liveness of engine processes sharing one home."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.directory / f"{self.id}.lock"

    def acquire(self) -> None:
        """Create and lock this engine's lease file (idempotent)."""
        if self._fd is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{self.id}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.replace(tmp, self.path)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        self._fd = fd

    def release(self) -> None:
        """Remove the lease file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)  # closing the only descriptor releases the flock
        self._fd = None

    @staticmethod
    def is_alive(directory: Path, holder: str) -> bool:
        """True iff ``holder``'s lease file is still locked by some process."""
        if not holder or "/" in holder or holder.startswith("."):
            return False
        path = Path(directory) / f"{holder}.lock"
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            path.unlink(missing_ok=True)  # stale: its holder is gone
            return False
        finally:
            os.close(fd)
