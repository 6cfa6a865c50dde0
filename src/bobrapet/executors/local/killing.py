"""Stopping a child process and its whole process group.

Invariant: children are started with ``start_new_session=True`` so their pid is their process
group id; ``terminate_group`` sends SIGTERM to the group, waits ``grace`` seconds for the
leader, then SIGKILLs the group, and always returns after the leader has been reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def terminate_group(proc: asyncio.subprocess.Process, grace: float) -> int | None:
    """Stop ``proc``'s process group (SIGTERM, then SIGKILL after ``grace``); its returncode."""
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
    _signal_group(proc.pid, signal.SIGKILL)  # stragglers the leader left behind
    return proc.returncode
