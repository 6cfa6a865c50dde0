"""A crashing or hanging engram fails only its attempt; the step is retried per its policy."""

from __future__ import annotations

import json

import pytest
from tests.e2e.conftest import Project

pytestmark = pytest.mark.slow

FLAKY = """
import ctypes, os, time

def crash_once(inputs, ctx):
    marker = inputs["marker"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        ctypes.string_at(0)  # segfault: the worker dies
    return {"ok": True}

def hang_once(inputs, ctx):
    marker = inputs["marker"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(60)  # killed at the step timeout
    return {"ok": True}
"""


def _story(project: Project, entry: str) -> None:
    project.write("flaky.py", FLAKY)
    project.write(
        "story.yaml",
        f"""
        apiVersion: catalog.bubustack.io/v1alpha1
        kind: EngramTemplate
        metadata: {{name: flaky}}
        spec: {{version: "1.0.0", supportedModes: [job], entrypoint: "flaky:{entry}"}}
        ---
        apiVersion: bubustack.io/v1alpha1
        kind: Engram
        metadata: {{name: flaky}}
        spec: {{templateRef: {{name: flaky}}}}
        ---
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: flaky}}
        spec:
          steps:
            - name: flaky
              ref: {{name: flaky}}
              with: {{marker: "{project.root / "marker"}"}}
              execution:
                timeout: 1s
                retry: {{maxRetries: 2, delay: 10ms}}
            - name: after
              needs: [flaky]
              ref: {{name: recorder}}
              with: {{record: "{project.record}", step: after}}
        """,
    )


@pytest.mark.parametrize("entry", ["crash_once", "hang_once"])
def test_a_failed_attempt_is_retried_and_the_engine_carries_on(project: Project, entry: str) -> None:
    _story(project, entry)
    done = project.cli("run", "-f", "catalog.yaml", "-f", "story.yaml", "--name", "f", "-o", "json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"]["phase"] == "Succeeded"
    step_run = json.loads(project.cli("get", "steprun", "f-flaky", "-o", "json").stdout)
    assert step_run["status"]["retries"] == 1
    assert step_run["status"]["phase"] == "Succeeded"
    assert project.count("after", "finish") == 1
