"""Kill the engine while a step runs; `bobrapet wait` finishes the run without repeating work."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from tests.e2e.conftest import Project

pytestmark = pytest.mark.slow


def _chain(project: Project) -> None:
    steps = []
    previous = None
    for index, sleep in enumerate([0, 0, 3, 0], start=1):
        needs = f"\n      needs: [s{previous}]" if previous else ""
        n = f"{{{{ steps.s{previous}.output.n }}}}" if previous else "0"
        steps.append(
            f"""
    - name: s{index}{needs}
      ref: {{name: recorder}}
      with: {{record: "{project.record}", step: s{index}, sleep: {sleep}, n: "{n}"}}"""
        )
        previous = index
    project.write(
        "story.yaml",
        f"""
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: chain}}
        spec:
          steps:{"".join(steps).replace(chr(10), chr(10) + "          ")}
          output:
            n: "{{{{ steps.s4.output.n }}}}"
        """,
    )


def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_sigkill_during_a_step_then_wait_resumes(project: Project) -> None:
    _chain(project)
    engine = project.popen("run", "-f", "catalog.yaml", "-f", "story.yaml", "--name", "crash", "-o", "json")
    try:
        _wait_for(lambda: project.count("s3", "start") == 1)
        os.killpg(engine.pid, signal.SIGKILL)  # the engine and its workers die mid-step
    finally:
        engine.wait(timeout=10)
    assert project.count("s1", "finish") == 1
    assert project.count("s3", "finish") == 0

    result = project.cli("wait", "crash", "-o", "json", timeout=60)
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["status"]["phase"] == "Succeeded"
    assert run["status"]["output"] == {"n": 4}
    # Recorded-Succeeded steps never ran again; the interrupted one ran again exactly once.
    assert project.count("s1", "start") == 1
    assert project.count("s2", "start") == 1
    assert project.count("s3", "start") == 2
    assert project.count("s3", "finish") == 1
    assert project.count("s4", "start") == 1
