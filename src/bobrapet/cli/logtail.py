"""Reading a growing step log by complete lines (``bobrapet logs -f``).

A :class:`LogTail` remembers how far it has read one file. Invariants:

* :meth:`LogTail.read` returns only complete lines (up to the last newline); the
  unterminated rest is kept and returned once its newline arrives, or by
  ``read(final=True)`` when the log can grow no more;
* every byte of the file is returned exactly once, in order, while the file only grows
  (step logs are append-only: retries and redrives append);
* a file that shrank (deleted and written anew) is read again from its start;
* a missing file is "nothing yet", never an error; reading never creates it.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path


@dataclass
class LogTail:
    path: Path
    offset: int = 0
    partial: bytes = b""

    def read(self, *, final: bool = False) -> bytes:
        """The new complete lines (with ``final``: everything new, the unterminated rest too)."""
        data = self._read_new()
        if final:
            data, self.partial = self.partial + data, b""
            return data
        end = data.rfind(b"\n") + 1
        if end == 0:
            self.partial += data
            return b""
        lines, self.partial = self.partial + data[:end], data[end:]
        return lines

    def skip_to_tail(self, lines: int) -> bytes:
        """Start at the file's last ``lines`` complete lines and return them (``logs --tail N``)."""
        everything = self.read()
        if lines == 0:
            return b""
        kept = deque(everything.splitlines(keepends=True), maxlen=lines)
        return b"".join(kept)

    def _read_new(self) -> bytes:
        try:
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < self.offset:  # replaced by a new, shorter file: start over
                    self.offset, self.partial = 0, b""
                if size == self.offset:
                    return b""
                handle.seek(self.offset)
                data = handle.read(size - self.offset)
        except FileNotFoundError:
            return b""
        self.offset += len(data)
        return data
