"""Errors of the storage layer: every message names the reference (or setting) and the fix.

``retryable`` says whether trying again could succeed (a backend fault) or not (a malformed
reference, a checksum mismatch, a missing blob, storage disabled): executors map it to the
step's exit class. Standard library only.
"""

from __future__ import annotations


class StorageError(Exception):
    """A storage operation failed; ``retryable``: the same operation may succeed later."""

    retryable = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidReference(StorageError):
    """A reference map or key that must never be used: malformed, absolute or traversing."""

    retryable = False


class SelectorError(StorageError):
    """A ``$bubuStoragePath`` selector that is malformed or does not match the stored value."""

    retryable = False


class BlobNotFound(StorageError):
    """No blob is stored under the key."""

    retryable = False


class IntegrityError(StorageError):
    """The stored bytes do not match their recorded checksum, or are not a valid envelope."""

    retryable = False


class StorageDisabled(StorageError):
    """A value needs offloading (or hydrating) but no storage provider is configured."""

    retryable = False


class PayloadTooLarge(StorageError):
    """Hydrating would load more than the caller's size cap."""

    retryable = False


class StorageConfigError(StorageError):
    """A storage setting (environment variable or config key) that cannot be used."""

    retryable = False
