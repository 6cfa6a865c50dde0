"""A 50 MB step output through the file and S3 backends: the engine never holds the payload.

The engine's peak RSS (VmHWM) must stay below 3x the payload; the numbers (wall time, peak
RSS of the engine and of its workers) are printed for the benchmark report.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import Project
from tests.e2e.test_storage import catalog
from tests.s3server import running

pytestmark = pytest.mark.slow

PAYLOAD = 50_000_000
ENGRAMS = """
def make(inputs, ctx):
    return {"big": "x" * int(inputs["n"])}

def read(inputs, ctx):
    return {"len": len(inputs["data"])}
"""
STORY = f"""
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {{name: fifty}}
spec:
  steps:
    - name: a
      ref: {{name: make}}
      with: {{n: {PAYLOAD}}}
    - name: b
      needs: [a]
      ref: {{name: read}}
      with: {{data: "{{{{ steps.a.output.big }}}}"}}
"""


def _hwm(pid: int) -> int:
    """Peak resident set size of ``pid`` in bytes (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.update(int(c) for c in (task / "children").read_text().split())
    except OSError:
        pass
    return found


def measure(project: Project, env: dict[str, str]) -> dict[str, Any]:
    project.write("big.py", ENGRAMS)
    project.write("engrams.yaml", catalog(["make", "read"]))
    project.write("story.yaml", STORY)
    started = time.monotonic()
    proc = project.popen(
        "run", "-f", "engrams.yaml", "-f", "story.yaml", "--name", "m", "-o", "json", env=env
    )
    peaks: dict[int, int] = {}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            for pid in {proc.pid, *_children(proc.pid)}:
                peaks[pid] = max(peaks.get(pid, 0), _hwm(pid))
            time.sleep(0.01)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, err = proc.communicate(timeout=300)
    wall = time.monotonic() - started
    done.set()
    watcher.join()
    assert proc.returncode == 0, err
    assert json.loads(out)["status"]["phase"] == "Succeeded"
    engine = peaks.pop(proc.pid)
    return {"wall": wall, "engine": engine, "worker": max(peaks.values(), default=0)}


def report(backend: str, numbers: dict[str, Any]) -> None:
    print(
        f"\n50 MB through {backend}: wall {numbers['wall']:.2f}s, engine peak RSS "
        f"{numbers['engine'] / 1e6:.0f} MB, worker peak RSS {numbers['worker'] / 1e6:.0f} MB"
    )


def test_50mb_through_the_file_backend(project: Project) -> None:
    numbers = measure(project, {})
    report("file", numbers)
    assert numbers["engine"] < 3 * PAYLOAD
    b = json.loads(project.cli("get", "steprun", "m-b", "-o", "json").stdout)
    assert b["status"]["output"] == {"len": PAYLOAD}


def test_50mb_through_s3(project: Project) -> None:
    with running() as server:
        numbers = measure(project, server.env(server.bucket()))
    report("s3", numbers)
    assert numbers["engine"] < 3 * PAYLOAD
