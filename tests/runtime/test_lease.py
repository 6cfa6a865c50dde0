"""EngineLease: a live holder's lock is seen; a SIGKILLed holder's lease is stale and removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bobrapet.runtime.lease import EngineLease


def test_own_lease_is_alive_until_released(tmp_path: Path) -> None:
    lease = EngineLease(tmp_path)
    assert str(os.getpid()) in lease.id
    assert not EngineLease.is_alive(tmp_path, lease.id)
    lease.acquire()
    assert EngineLease.is_alive(tmp_path, lease.id)
    lease.release()
    assert not EngineLease.is_alive(tmp_path, lease.id)
    assert not (tmp_path / f"{lease.id}.lock").exists()


def test_other_process_lease_alive_then_dead_after_sigkill(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from bobrapet.runtime.lease import EngineLease\n"
        "lease = EngineLease(Path(sys.argv[1])); lease.acquire()\n"
        "print(lease.id, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        holder = proc.stdout.readline().strip()
        assert holder
        assert EngineLease.is_alive(tmp_path, holder)
        assert EngineLease.is_alive(tmp_path, holder)  # checking does not steal the lock
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        deadline = time.monotonic() + 2
        while EngineLease.is_alive(tmp_path, holder) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not EngineLease.is_alive(tmp_path, holder)
        assert not (tmp_path / f"{holder}.lock").exists()  # stale file cleaned up
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_unknown_or_malicious_holders_are_not_alive(tmp_path: Path) -> None:
    assert not EngineLease.is_alive(tmp_path, "nobody")
    assert not EngineLease.is_alive(tmp_path, "../etc/passwd")
    assert not EngineLease.is_alive(tmp_path / "missing-dir", "x")


def test_acquire_and_release_are_idempotent(tmp_path: Path) -> None:
    lease = EngineLease(tmp_path / "leases")
    lease.acquire()
    lease.acquire()
    assert EngineLease.is_alive(tmp_path / "leases", lease.id)
    lease.release()
    lease.release()
    assert list((tmp_path / "leases").iterdir()) == []
