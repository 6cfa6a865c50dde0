"""Several engine processes on one home: each StepRun attempt runs exactly once."""

from __future__ import annotations

import json

import pytest
from tests.e2e.conftest import Project

pytestmark = pytest.mark.slow


def test_two_engines_share_the_work_without_duplicates(project: Project) -> None:
    steps = "".join(
        f"""
            - name: p{i}
              ref: {{name: recorder}}
              with: {{record: "{project.record}", step: p{i}, sleep: 0.2}}"""
        for i in range(12)
    )
    project.write(
        "story.yaml",
        f"""
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: wide}}
        spec:
          steps:{steps}
        """,
    )
    created = project.cli("run", "-f", "catalog.yaml", "-f", "story.yaml", "--name", "wide", "--no-wait")
    assert created.returncode == 0, created.stderr
    first = project.popen("wait", "wide", "-o", "json")
    second = project.popen("wait", "wide", "-o", "json")
    out1, err1 = first.communicate(timeout=60)
    _, err2 = second.communicate(timeout=60)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert json.loads(out1)["status"]["phase"] == "Succeeded"
    for i in range(12):
        assert project.count(f"p{i}", "start") == 1, project.events()
    pids = {e["pid"] for e in project.events()}
    assert len(pids) >= 2


def test_an_engine_says_which_other_runs_it_leaves_alone(project: Project) -> None:
    project.write(
        "story.yaml",
        f"""
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: one}}
        spec:
          steps:
            - name: s
              ref: {{name: recorder}}
              with: {{record: "{project.record}", step: s}}
        """,
    )
    queued = project.cli("run", "-f", "catalog.yaml", "-f", "story.yaml", "--name", "first", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    second = project.cli("run", "-f", "story.yaml", "--name", "second")
    assert second.returncode == 0, second.stderr
    assert (
        "1 other unfinished run(s) of this home are not driven by this command: default/first"
        in second.stderr
    )
    assert project.count("s", "start") == 1  # only the step of "second" ran
    assert project.cli("wait", "first").returncode == 0
    assert project.count("s", "start") == 2
