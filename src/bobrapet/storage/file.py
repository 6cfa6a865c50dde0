"""The ``file`` blob store: one file per key under a root directory (embedded default).

Invariants:

* ``<root>/<key>`` holds the blob; ``<root>/<key>.sha256`` its SHA-256 (hex), written before
  the blob is renamed into place: a blob is written to a temporary file in its directory and
  renamed (atomic on POSIX), so readers never see a partial blob;
* every key is checked (:func:`~bobrapet.storage.refs.check_key`) and the resolved path must
  stay under the resolved root (symlinks included): nothing is read or written outside it;
* ``read`` verifies the recorded checksum (read once more if the blob was replaced while it
  was read); a blob without a recorded checksum (placed by hand) is read as it is;
* ``delete`` also removes the directories it leaves empty (up to the root), so deleted runs
  leave no directories behind; a write that finds its directory removed meanwhile creates it
  again;
* ``copy`` hard-links the blob (and its checksum) when it can, else copies it in chunks.

Standard library only.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from bobrapet.storage.backend import DEFAULT_TIMEOUT, BlobInfo, Deadline, too_large
from bobrapet.storage.errors import BlobNotFound, IntegrityError, InvalidReference, StorageError
from bobrapet.storage.refs import check_key

CHECKSUM_SUFFIX = ".sha256"
#: Name prefix of a blob (or checksum) being written; renamed into place once complete.
TEMP_PREFIX = ".tmp-"
_READ_CHUNK = 1 << 20
#: Attempts at creating a blob's temporary file when its directory vanishes meanwhile.
_CREATE_ATTEMPTS = 3


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
            digest = hashlib.sha256()
            size = 0
            fd, tmp = _temporary(path.parent)
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
        self._prune_dirs(path.parent)

    def _prune_dirs(self, directory: Path) -> None:
        """Remove ``directory`` and its parents while they are empty (never the root)."""
        root = Path(os.path.realpath(self.root))
        while directory != root and root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return  # not empty (or gone, or not ours): its parents are not empty either
            directory = directory.parent

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        check_key(prefix)
        root = os.path.realpath(self.root)
        top = os.path.join(root, prefix)
        if not os.path.realpath(top).startswith(root + os.sep):
            raise InvalidReference(f"storage prefix {prefix!r} resolves outside the storage root {root}")
        pending = [top]
        while pending:
            directory = pending.pop()
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise StorageError(f"cannot list {directory} in {self.description}: {exc}") from None
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.name.startswith(TEMP_PREFIX) or entry.name.endswith(CHECKSUM_SUFFIX):
                    continue
                else:
                    with contextlib.suppress(FileNotFoundError):
                        info = entry.stat(follow_symlinks=False)
                        key = os.path.relpath(entry.path, root).replace(os.sep, "/")
                        yield BlobInfo(key, info.st_size, info.st_mtime)

    def stale_temporaries(self, before: float) -> builtins.list[Path]:
        """Temporary files of writes that never finished (a crash), last modified before
        ``before`` (seconds since the epoch)."""
        found: builtins.list[Path] = []
        for directory, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    path = Path(directory, name)
                    with contextlib.suppress(FileNotFoundError):
                        if path.stat().st_mtime < before:
                            found.append(path)
        return found

    def copy(self, source: str, key: str) -> None:
        src, dst = self._path(source), self._path(key)
        if not src.is_file():
            raise BlobNotFound(f"no blob {source!r} in {self.description}")
        try:
            for suffix in ("", CHECKSUM_SUFFIX):
                origin = src.with_name(src.name + suffix)
                if suffix and not origin.exists():
                    continue
                self._link_or_copy(origin, dst.with_name(dst.name + suffix))
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {source!r} in {self.description}") from None
        except OSError as exc:
            raise StorageError(f"cannot copy {source!r} to {key!r} in {self.description}: {exc}") from None

    @staticmethod
    def _link_or_copy(origin: Path, target: Path) -> None:
        """``target`` becomes ``origin``'s content atomically (a hard link, else a copy)."""
        fd, tmp = _temporary(target.parent)
        os.close(fd)
        try:
            os.unlink(tmp)
            try:
                os.link(origin, tmp)
            except OSError:
                shutil.copyfile(origin, tmp)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _temporary(directory: Path) -> tuple[int, str]:
    """A new temporary file in ``directory`` (created first; created again when a delete
    removed it meanwhile)."""
    for attempt in range(_CREATE_ATTEMPTS):
        directory.mkdir(parents=True, exist_ok=True)
        try:
            return tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
        except FileNotFoundError:
            if attempt == _CREATE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _write_small(path: Path, data: bytes) -> None:
    fd, tmp = _temporary(path.parent)
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
