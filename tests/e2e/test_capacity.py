"""A step waiting for an execution slot is shown waiting (with the reason), never Running."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import BOBRAPET, Project, _env

pytestmark = pytest.mark.slow


def _objects(home: Path, kind: str) -> list[dict[str, Any]]:
    try:
        with sqlite3.connect(f"file:{home / 'state.db'}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute("SELECT data FROM objects WHERE kind LIKE ?", (f"{kind}.%",)).fetchall()
    except sqlite3.Error:
        return []
    return [json.loads(data) for (data,) in rows]


def _reason(obj: dict[str, Any]) -> str | None:
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return str(condition.get("reason"))
    return None


def _max_running(lines: list[str]) -> int:
    running: set[str] = set()
    peak = 0
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "step":
            if parts[2] == "Running":
                running.add(parts[1])
            else:
                running.discard(parts[1])
            peak = max(peak, len(running))
    return peak


def test_step_waiting_for_capacity_is_pending_with_a_reason(project: Project) -> None:
    steps = "".join(
        f"""
            - name: p{i}
              ref: {{name: recorder}}
              with: {{record: "{project.record}", step: p{i}, sleep: 1.2}}"""
        for i in range(3)
    )
    project.write(
        "story.yaml",
        f"""
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: narrow}}
        spec:
          steps:{steps}
        """,
    )
    env = {**_env(), "BOBRAPET_WORKER_SLOTS": "1"}
    argv = [BOBRAPET, "--home", str(project.home), "run", "-f", "catalog.yaml", "-f", "story.yaml"]
    proc = subprocess.Popen(
        [*argv, "-o", "json", "--workers", "1"],
        cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    most_running = 0
    waiting_messages: set[str] = set()
    run_states: set[tuple[str, str]] = set()
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        step_runs = _objects(project.home, "stepruns")
        most_running = max(
            most_running, sum(1 for s in step_runs if (s.get("status") or {}).get("phase") == "Running")
        )
        for step_run in step_runs:
            if (step_run.get("status") or {}).get("phase") == "Pending" and _reason(
                step_run
            ) == "WaitingForCapacity":
                for condition in step_run["status"]["conditions"]:
                    waiting_messages.add(str(condition.get("message")))
        for run in _objects(project.home, "storyruns"):
            for state in ((run.get("status") or {}).get("stepStates") or {}).values():
                run_states.add((str(state.get("phase")), str(state.get("message"))))
        time.sleep(0.05)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["status"]["phase"] == "Succeeded"
    assert most_running == 1  # one slot: never two StepRuns Running at once
    assert any(m.startswith("Waiting for a free execution slot") for m in waiting_messages), waiting_messages
    waiting_in_run = [m for phase, m in run_states if m.startswith("Waiting for a free execution slot")]
    assert waiting_in_run and all(
        phase == "Pending" for phase, m in run_states if m.startswith("Waiting for a free execution slot")
    )
    assert _max_running(err.splitlines()) <= 1  # the progress view agrees
    events = project.events()
    assert len(events) == 6
