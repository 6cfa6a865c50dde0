"""Peak memory of a process and of its descendants, sampled from ``/proc`` (Linux).

:class:`TreeMonitor` polls, in a background thread, the ``VmHWM`` (peak resident set) of a
root process and of every process below it. ``VmHWM`` is a high-water mark kept by the
kernel, so sampling only has to see each process late in its life; the known processes are
read every 50 ms and the process table is rescanned for new descendants every 50 ms during
the first second, then every 250 ms (a full
scan costs a few ms of CPU, which would disturb what is measured on a small machine), so a
process living less than that may be missed: the engine's workers are long-lived. The root's
peak is also available from ``os.wait4`` once it has exited (see :func:`wait_with_rusage`),
but that figure is the maximum over the root and the children it reaped.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")


@dataclass
class ProcessPeak:
    """Peak resident set of one process, in KiB, and what it was running."""

    pid: int
    cmdline: str
    peak_kb: int = 0


def read_peak_kb(pid: int) -> int | None:
    """``VmHWM`` (peak resident set, KiB) of a live process; ``None`` when it is gone."""
    try:
        text = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def _parent_map() -> dict[int, int]:
    """pid -> ppid of every process."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ..." — comm may contain spaces and parentheses.
        rest = stat[stat.rfind(")") + 2 :].split()
        if len(rest) > 1:
            parents[int(entry.name)] = int(rest[1])
    return parents


def _cmdline(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parent_map().items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


@dataclass
class TreeMonitor:
    """Polls the peak RSS of ``root`` and of its descendants until :meth:`stop`."""

    root: int
    interval: float = 0.05
    rescan_every: int = 5
    eager_ticks: int = 20
    peaks: dict[int, ProcessPeak] = field(default_factory=dict)
    _live: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeMonitor:
        self._thread = threading.Thread(target=self._loop, name="bench-procmon", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        tick = 0
        while not self._stop.is_set():
            # Workers appear during the first second of an engine's life: look for them often then.
            self.sample(rescan=tick < self.eager_ticks or tick % self.rescan_every == 0)
            tick += 1
            self._stop.wait(self.interval)

    def sample(self, rescan: bool = True) -> None:
        """Read the peak of every known process (after looking for new descendants if ``rescan``)."""
        if rescan:
            self._live = {self.root, *descendants(self.root)}
        for pid in list(self._live):
            peak = read_peak_kb(pid)
            if peak is None:
                self._live.discard(pid)
                continue
            known = self.peaks.get(pid)
            if known is None:
                known = self.peaks[pid] = ProcessPeak(pid, _cmdline(pid))
            known.peak_kb = max(known.peak_kb, peak)

    @property
    def root_peak_kb(self) -> int:
        known = self.peaks.get(self.root)
        return known.peak_kb if known else 0

    def children(self, marker: str = "") -> list[ProcessPeak]:
        """Descendants seen so far whose command line contains ``marker``."""
        return [p for pid, p in self.peaks.items() if pid != self.root and marker in p.cmdline]


def wait_with_rusage(
    proc: subprocess.Popen[bytes],
    timeout: float,
    progress: Callable[[], object] | None = None,
    stall: float = 0.0,
) -> tuple[int, int, str | None]:
    """Wait for ``proc``; its exit code, ``ru_maxrss`` (KiB) and why it was killed (or None).

    ``proc`` is killed after ``timeout`` s, or when ``progress()`` (polled every second)
    returned the same value for ``stall`` s (when both are given): a hung engine then costs
    ``stall`` seconds, not ``timeout``. ``ru_maxrss`` from ``wait4`` is the peak of the process
    *and* of the children it reaped.
    """
    done = threading.Event()
    killed: list[str] = []

    def watchdog() -> None:
        deadline = time.monotonic() + timeout
        last, since = (progress() if progress else None), time.monotonic()
        while not done.wait(1.0):
            now = time.monotonic()
            if now >= deadline:
                killed.append(f"killed after the {timeout:g} s timeout")
                break
            if progress is not None and stall > 0:
                current = progress()
                if current != last:
                    last, since = current, now
                elif now - since >= stall:
                    killed.append(f"killed: no progress for {stall:g} s")
                    break
        if killed:
            proc.kill()

    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, int(usage.ru_maxrss), (killed[0] if killed else None)
