"""The ``file`` blob store: one file per key under a root directory (embedded default).

Invariants:

* ``<root>/<key>`` holds the blob; ``<root>/<key>.sha256`` its SHA-256 (hex), written before
  the blob is renamed into place: a blob is written to a temporary file in its directory and
  renamed (atomic on POSIX), so readers never see a partial blob;
* every key is checked (:func:`~bobrapet.storage.refs.check_key`) and the resolved path must
  stay under the resolved root (symlinks included): nothing is read or written outside it;
* ``read`` verifies the recorded checksum (read once more if the blob was replaced while it
  was read); a blob without a recorded checksum (placed by hand) is read as it is.

Standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bobrapet.storage.backend import DEFAULT_TIMEOUT, Deadline, too_large
from bobrapet.storage.errors import BlobNotFound, IntegrityError, InvalidReference, StorageError
from bobrapet.storage.refs import check_key

CHECKSUM_SUFFIX = ".sha256"
_READ_CHUNK = 1 << 20


class FileStore:
    """Blobs as files under ``root`` (created on first write)."""

    def __init__(self, root: Path | str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.root = Path(root)
        self.timeout = timeout
        self.description = f"file:{self.root}"

    def _path(self, key: str) -> Path:
        check_key(key)
        if key.endswith(CHECKSUM_SUFFIX):
            raise InvalidReference(f"storage key {key!r} ends with {CHECKSUM_SUFFIX!r}, which is reserved")
        root = os.path.realpath(self.root)
        path = os.path.realpath(os.path.join(root, key))
        if not path.startswith(root + os.sep):
            raise InvalidReference(f"storage reference {key!r} resolves outside the storage root {root}")
        return Path(path)

    def write(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        deadline = Deadline(self.timeout, f"writing {key!r} to {self.description}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            size = 0
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        deadline.check()
                _write_small(path.with_name(path.name + CHECKSUM_SUFFIX), digest.hexdigest().encode())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write {key!r} to {self.description}: {exc}") from None
        return size

    def read(self, key: str, *, limit: int | None = None) -> bytes:
        path = self._path(key)
        for attempt in range(2):
            data, actual = self._read_once(key, path, limit)
            recorded = _read_checksum(path)
            if recorded is None or recorded == actual:
                return data
            if attempt == 0:
                continue  # replaced while it was read: read the new one
            raise IntegrityError(
                f"blob {key!r} in {self.description} does not match its recorded SHA-256 "
                f"(recorded {recorded}, read {actual}): it was modified or corrupted; re-run the "
                "step that produced it"
            )
        raise AssertionError("unreachable")

    def _read_once(self, key: str, path: Path, limit: int | None) -> tuple[bytes, str]:
        deadline = Deadline(self.timeout, f"reading {key!r} from {self.description}")
        try:
            with path.open("rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if limit is not None and size > limit:
                    raise too_large(key, size, limit)
                data = fh.read()
            deadline.check()
            digest = hashlib.sha256()
            view = memoryview(data)
            for start in range(0, len(data), _READ_CHUNK):
                digest.update(view[start : start + _READ_CHUNK])
        except FileNotFoundError:
            raise BlobNotFound(
                f"no blob {key!r} in {self.description}: it was deleted, or the reference was not "
                "written by this storage"
            ) from None
        except IsADirectoryError:
            raise InvalidReference(f"storage reference {key!r} names a directory, not a blob") from None
        except OSError as exc:
            raise StorageError(f"cannot read {key!r} from {self.description}: {exc}") from None
        return data, digest.hexdigest()

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            return path.stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {key!r} in {self.description}") from None
        except OSError as exc:
            raise StorageError(f"cannot stat {key!r} in {self.description}: {exc}") from None

    def delete(self, key: str) -> None:
        path = self._path(key)
        for victim in (path, path.with_name(path.name + CHECKSUM_SUFFIX)):
            with contextlib.suppress(FileNotFoundError):
                victim.unlink()


def _write_small(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_checksum(path: Path) -> str | None:
    try:
        return path.with_name(path.name + CHECKSUM_SUFFIX).read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return "(unreadable)"
