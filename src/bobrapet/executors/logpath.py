"""Where step logs live and how an attempt's part of them begins.

* ``<home>/logs/<namespace>/<steprun>.log``: a StepRun's stdout/stderr, every attempt's;
* ``<home>/logs/<namespace>/<storyrun>.inputs.jsonl``: a StoryRun's inputs log, one JSON
  line per attempt of its steps (what the attempt received; see
  :mod:`bobrapet.controllers.steplog`). One file per run, appended to, because creating a
  file costs far more than appending a line on common file systems.

Invariants:

* the engine (which writes logs through its executor) and the CLI (which reads them for
  ``bobrapet logs`` / ``wait`` / ``describe``) build the paths with :func:`step_log_path`
  and :func:`inputs_log_path` only;
* an executor calls :func:`open_attempt_log` and :func:`append_inputs_record` before the
  attempt's code can write, so the attempt header precedes every line the attempt writes;
* a step log appears under its name with its attempt header already in it when it comes
  from a pre-created anonymous inode (linked in only after the header was written to it,
  see :class:`SpareLogs`), right after its creation otherwise;
* a log is complete before its attempt's outcome can be seen: the executor writes the
  header and appends the inputs record before the attempt's code runs, flushes the
  attempt's output before it hands back the result (a worker: before it sends the result
  frame), and the engine records the outcome only from that result; so once a StepRun is
  finished, ``bobrapet logs`` shows the header and every line of each of its attempts;
* these writes are best effort: a full disk must not fail the step, whose own output
  would fail anyway.

This module imports nothing heavy, so reading it costs the CLI (and a worker) no start-up
time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from pathlib import Path
from typing import Final

#: Directory of step logs under the home directory.
LOG_DIR: Final = "logs"
#: Suffix of a run's inputs log (``<run>.inputs.jsonl``) beside its steps' logs.
INPUTS_SUFFIX: Final = ".inputs.jsonl"


def step_log_path(home: Path, namespace: str | None, step_run: str) -> Path:
    """The log file of StepRun ``step_run`` (an empty namespace is ``default``)."""
    return home / LOG_DIR / (namespace or "default") / f"{step_run}.log"


def inputs_log_path(home: Path, namespace: str | None, story_run: str) -> Path:
    """The inputs log of StoryRun ``story_run``: one JSON line per attempt of its steps."""
    return home / LOG_DIR / (namespace or "default") / f"{story_run}{INPUTS_SUFFIX}"


def open_attempt_log(
    log_path: str | os.PathLike[str], header: str = "", spares: SpareLogs | None = None
) -> int:
    """Open (create) the step log for appending and write ``header``; returns the fd.

    With ``spares``, a new log is a pre-created inode of that pool, linked in under
    ``log_path`` once ``header`` is in it (creating a file is what costs on common file
    systems; the pool creates the next one off the step's critical path). Raises
    ``OSError`` when the log cannot be opened (the attempt cannot run without it).
    """
    if spares is not None:
        fd = spares.link(os.fspath(log_path), header.encode() if header else b"")
        if fd is not None:
            return fd
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    if header:
        with contextlib.suppress(OSError):
            os.write(fd, header.encode())
    return fd


#: Errors of ``O_TMPFILE``/``linkat`` after which a directory gets no more spare inodes.
_NO_SPARES: Final = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.EXDEV, errno.EPERM})


class SpareLogs:
    """Anonymous (``O_TMPFILE``) inodes created ahead, per log directory, for new step logs.

    Creating a file on ext4 costs hundreds of microseconds of system time, almost all of it
    in allocating the inode; linking an already allocated anonymous inode under a name costs
    a tenth of that. A worker takes a spare with :meth:`link` when an attempt starts (on the
    step's critical path) and calls :meth:`refill` once the attempt's result is sent (off it).

    Invariants: a spare is empty and unnamed until :meth:`link` wrote the attempt header to
    it and linked it under the log's name, so a log never appears without its header; a
    spare that could not be linked (the log exists already: a retry appends to it) is
    emptied again and kept; at most :attr:`PER_DIR` spares per directory and
    :attr:`MAX_DIRS` directories are kept (fds held: at most their product); spares are
    freed by the kernel when the process exits. Where ``O_TMPFILE`` or ``/proc/self/fd`` is
    missing, :meth:`link` returns None and the caller creates the file as usual.
    Thread-safe.
    """

    #: Spares kept per directory: two, so a step that comes before the refill of its
    #: predecessor's spare is done still finds one.
    PER_DIR: Final = 2
    #: Directories with spares kept at most (the others lose theirs, oldest first).
    MAX_DIRS: Final = 8

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spares: dict[str, list[int]] = {}
        self._off: set[str] = set()  # directories where spares do not work
        #: ``/proc/self/fd``, where a spare's fd names its inode for ``linkat`` (None: no spares).
        self._proc_fd: int | None = None
        if hasattr(os, "O_TMPFILE"):
            with contextlib.suppress(OSError):
                self._proc_fd = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def link(self, log_path: str, header: bytes) -> int | None:
        """A spare of ``log_path``'s directory, named ``log_path`` and holding ``header``
        (None: no spare, or the log exists; the caller opens the log itself)."""
        directory = os.path.dirname(log_path)
        with self._lock:
            spares = self._spares.get(directory)
            if not spares:
                return None
            fd = spares.pop()
        try:
            if header:
                os.write(fd, header)
            os.link(str(fd), log_path, src_dir_fd=self._proc_fd, follow_symlinks=True)
        except OSError as exc:
            self._give_back(directory, fd, exc.errno)
            return None
        return fd

    def refill(self, directory: str) -> None:
        """Create ``directory``'s missing spares (best effort, never raises)."""
        if self._proc_fd is None or not directory:
            return
        while True:
            with self._lock:
                if directory in self._off or len(self._spares.get(directory, ())) >= self.PER_DIR:
                    return
            try:
                flags = os.O_TMPFILE | os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
                fd = os.open(directory, flags, 0o644)
            except OSError as exc:
                if exc.errno in _NO_SPARES:
                    with self._lock:
                        self._off.add(directory)
                return
            if not self._keep(directory, fd):
                return

    def _keep(self, directory: str, fd: int) -> bool:
        """Add ``fd`` to ``directory``'s spares (closed when they are full); False when closed."""
        evicted: list[int] = []
        with self._lock:
            spares = self._spares.get(directory)
            if spares is None:
                spares = self._spares[directory] = []
                while len(self._spares) > self.MAX_DIRS:
                    evicted += self._spares.pop(next(iter(self._spares)))
            kept = len(spares) < self.PER_DIR
            if kept:
                spares.append(fd)
        for old in evicted if kept else [*evicted, fd]:
            os.close(old)
        return kept

    def _give_back(self, directory: str, fd: int, error: int | None) -> None:
        """Keep an unlinked spare (emptied) unless spares do not work in ``directory``."""
        if error in _NO_SPARES:
            with self._lock:
                self._off.add(directory)
            os.close(fd)
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            os.close(fd)
            return
        self._keep(directory, fd)


def append_inputs_record(inputs_log: str | os.PathLike[str] | None, record: str | None) -> None:
    """Append ``record`` (one JSON object, no newline) as a line of the run's inputs log.

    One ``write`` of one line on an ``O_APPEND`` file: lines of concurrent writers (several
    workers) never interleave.
    """
    if inputs_log is None or record is None:
        return
    with contextlib.suppress(OSError):
        fd = os.open(inputs_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (record + "\n").encode())
        finally:
            os.close(fd)
