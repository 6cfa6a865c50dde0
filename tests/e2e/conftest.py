"""End-to-end helpers: a scratch project directory with a recording engram, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

BOBRAPET = str(Path(sys.executable).parent / "bobrapet")

RECORDER = '''
"""Engrams that record every execution (one JSON line per start and finish)."""
import json, os, time

def _log(path, **fields):
    with open(path, "a") as fh:
        fh.write(json.dumps(fields) + "\\n")
        fh.flush()
        os.fsync(fh.fileno())

def _starts(path):
    with open(path) as fh:
        return sum(1 for line in fh if '"event": "start"' in line)

def _await(ready, limit=60.0):
    deadline = time.monotonic() + limit  # never hang a test: give up and let it fail
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.02)

def record(inputs, ctx):
    """Log start/finish with the worker's pid and its engine's pid (the worker's parent).

    Optional inputs: ``barrier`` (wait until that many starts are logged), ``until`` (wait
    until that file exists), ``sleep`` (seconds), ``n`` (returns n + 1).
    """
    path = inputs["record"]
    step = inputs["step"]
    _log(path, step=step, event="start", pid=os.getpid(), engine=os.getppid())
    if inputs.get("barrier"):
        _await(lambda: _starts(path) >= int(inputs["barrier"]))
    if inputs.get("until"):
        _await(lambda: os.path.exists(inputs["until"]))
    time.sleep(float(inputs.get("sleep", 0)))
    _log(path, step=step, event="finish", pid=os.getpid(), engine=os.getppid())
    return {"n": int(inputs.get("n", 0)) + 1, "step": step}
'''

CATALOG = """
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {name: recorder}
spec:
  version: "1.0.0"
  supportedModes: [job]
  entrypoint: recorder:record
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {name: recorder}
spec:
  templateRef: {name: recorder}
"""


@dataclass
class Project:
    root: Path
    home: Path
    record: Path

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(text))
        return path

    def cli(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BOBRAPET, "--home", str(self.home), *args],
            cwd=self.root, capture_output=True, text=True, timeout=timeout, env=_env(env),
        )  # fmt: skip

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [BOBRAPET, "--home", str(self.home), *args],
            cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, env=_env(env),
        )  # fmt: skip

    def events(self) -> list[dict[str, object]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]

    def count(self, step: str, event: str) -> int:
        return sum(1 for e in self.events() if e["step"] == step and e["event"] == event)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BOBRAPET_HOME", None)
    env.update(extra or {})
    return env


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    (root / "recorder.py").write_text(RECORDER)
    (root / "catalog.yaml").write_text(CATALOG)
    return Project(root=root, home=tmp_path / "home", record=tmp_path / "record.jsonl")
