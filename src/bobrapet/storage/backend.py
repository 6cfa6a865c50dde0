"""The blob store seam (``file`` and ``s3`` backends) and the per-operation deadline.

Invariants every backend keeps:

* keys go through :func:`~bobrapet.storage.refs.check_key` on every call;
* ``write`` stores the bytes of ``chunks`` under ``key`` atomically (a reader sees the old
  blob or the new one, whole) and records their SHA-256; ``read`` verifies it and raises
  :class:`~bobrapet.storage.errors.IntegrityError` on a mismatch;
* ``read(key, limit=n)`` raises :class:`~bobrapet.storage.errors.PayloadTooLarge` before
  loading a blob larger than ``n`` bytes;
* each operation gives up with a :class:`~bobrapet.storage.errors.StorageError` once its
  :class:`Deadline` (``BUBU_STORAGE_TIMEOUT``) has passed.

Standard library only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol

from bobrapet.storage.errors import PayloadTooLarge, StorageError

#: Default bound of one storage operation, in seconds (``BUBU_STORAGE_TIMEOUT``).
DEFAULT_TIMEOUT = 300.0


class Deadline:
    """The end of one storage operation (monotonic clock)."""

    __slots__ = ("end", "seconds", "what")

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise StorageError(
                f"{self.what} did not finish within {self.seconds:g}s "
                "(BUBU_STORAGE_TIMEOUT / engram.default-storage-timeout-seconds)"
            )

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())


def too_large(key: str, size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"blob {key!r} is {size} bytes, more than the limit of {limit} bytes for loading it here"
    )


class BlobStore(Protocol):
    """Where offloaded values live."""

    #: ``file:<root>`` or ``s3://<bucket>``, for messages.
    description: str

    def write(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store ``chunks`` under ``key``; the number of bytes written."""
        ...

    def read(self, key: str, *, limit: int | None = None) -> bytes:
        """The verified bytes under ``key`` (``BlobNotFound`` when there are none)."""
        ...

    def size(self, key: str) -> int:
        """The size in bytes of the blob under ``key`` (``BlobNotFound`` when there is none)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob under ``key`` (no error when it is absent)."""
        ...
