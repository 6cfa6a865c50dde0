"""A run executes the Story it started with: edits never reach a started run (issue 7 item 4).

Through the CLI: a run sleeping between steps ``a`` and ``b`` while a new version of its
Story renames ``b`` to ``c`` still runs ``b`` and ends with ``b``'s output; redriving it
re-runs its own steps, ``redrive --latest`` the current ones; ``describe`` names the Story
generation it runs; a pinned ``storyRef.version`` that no longer matches is refused.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from tests.e2e.conftest import Project

pytestmark = pytest.mark.slow


def _story(project: Project, last: str, *, sleep: str = "0s", version: str | None = None) -> str:
    pin = f"\n          version: {json.dumps(version)}" if version else ""
    return f"""
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: edited}}
        spec:{pin}
          steps:
            - name: a
              ref: {{name: recorder}}
              with: {{record: "{project.record}", step: a}}
            - name: pause
              type: sleep
              needs: [a]
              with: {{duration: "{sleep}"}}
            - name: {last}
              needs: [pause]
              ref: {{name: recorder}}
              with: {{record: "{project.record}", step: {last}}}
          output:
            last: "{{{{ steps.{last}.output.step }}}}"
        """


def _run(project: Project, name: str) -> dict[str, Any]:
    got = project.cli("get", "storyrun", name, "-o", "json")
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)  # type: ignore[no-any-return]


def _starts(project: Project) -> tuple[int, int, int]:
    return project.count("a", "start"), project.count("b", "start"), project.count("c", "start")


def _wait_for(project: Project, step: str, event: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while project.count(step, event) == 0:
        assert time.monotonic() < deadline, f"{step} never reached {event}: {project.events()}"
        time.sleep(0.05)


def test_an_edit_during_a_run_does_not_change_it_and_redrive_keeps_its_story(project: Project) -> None:
    project.write("v1.yaml", _story(project, "b", sleep="3s"))
    project.write("v2.yaml", _story(project, "c", sleep="0s"))
    created = project.cli("run", "-f", "catalog.yaml", "-f", "v1.yaml", "--name", "r1", "--no-wait")
    assert created.returncode == 0, created.stderr
    engine = project.popen("wait", "r1", "-o", "json")
    try:
        _wait_for(project, "a", "finish")
        edited = project.cli("apply", "-f", "v2.yaml")
        assert edited.returncode == 0, edited.stderr
        out, err = engine.communicate(timeout=90)
    finally:
        if engine.poll() is None:
            engine.kill()
    assert engine.returncode == 0, err
    run = json.loads(out)
    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert run["status"]["output"] == {"last": "b"}
    assert _starts(project) == (1, 1, 0)
    assert set(run["status"]["stepStates"]) == {"a", "pause", "b"}
    pinned = run["status"]["storySnapshot"]
    assert pinned["generation"] == 1

    described = project.cli("describe", "storyrun", "r1")
    assert described.returncode == 0, described.stderr
    assert "Story:        default/edited (generation 1," in described.stdout, described.stdout

    # A redrive re-runs the run's own Story (a, b), not the current one (a, c), and says so.
    redriven = project.cli("redrive", "r1")
    assert redriven.returncode == 0, redriven.stderr
    assert "now at generation 2" in redriven.stderr and "--latest" in redriven.stderr, redriven.stderr
    again = project.cli("wait", "r1", "-o", "json", timeout=90)
    assert again.returncode == 0, again.stderr
    run = json.loads(again.stdout)
    assert run["status"]["phase"] == "Succeeded"
    assert run["status"]["output"] == {"last": "b"}
    assert _starts(project) == (2, 2, 0)
    assert run["status"]["storySnapshot"] == pinned

    # --latest opts into the current Story.
    latest = project.cli("redrive", "r1", "--latest")
    assert latest.returncode == 0, latest.stderr
    assert "current Story" in latest.stdout + latest.stderr
    assert "now at generation" not in latest.stderr
    third = project.cli("wait", "r1", "-o", "json", timeout=90)
    assert third.returncode == 0, third.stderr
    run = json.loads(third.stdout)
    assert run["status"]["phase"] == "Succeeded"
    assert run["status"]["output"] == {"last": "c"}
    assert _starts(project) == (3, 2, 1)
    assert run["status"]["storySnapshot"]["generation"] == 2
    described = project.cli("describe", "storyrun", "r1")
    assert "Story:        default/edited (generation 2," in described.stdout, described.stdout


def test_a_new_run_uses_the_current_story_and_an_old_run_keeps_its_own(project: Project) -> None:
    project.write("v1.yaml", _story(project, "b"))
    project.write("v2.yaml", _story(project, "c"))
    first = project.cli("run", "-f", "catalog.yaml", "-f", "v1.yaml", "--name", "old", "-o", "json")
    assert first.returncode == 0, first.stderr
    assert project.cli("apply", "-f", "v2.yaml").returncode == 0
    second = project.cli("run", "--story", "edited", "--name", "new", "-o", "json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["status"]["output"] == {"last": "c"}
    assert _run(project, "old")["status"]["output"] == {"last": "b"}
    # The old run's redrive validates --from against its own Story.
    assert project.cli("redrive", "old", "--from", "b").returncode == 0
    assert project.cli("redrive", "new", "--from", "b").returncode != 0
    assert project.cli("redrive", "old", "--from", "b", "--latest").returncode != 0


def test_a_pinned_version_that_no_longer_matches_is_refused_at_start(project: Project) -> None:
    project.write("v1.yaml", _story(project, "b", version="1"))
    project.write("v2.yaml", _story(project, "c", version="2"))
    assert project.cli("apply", "-f", "catalog.yaml", "-f", "v1.yaml").returncode == 0
    project.write(
        "run.yaml",
        """
        apiVersion: runs.bubustack.io/v1alpha1
        kind: StoryRun
        metadata: {name: pinned}
        spec:
          storyRef: {name: edited, version: "1"}
        """,
    )
    # Created while no engine runs: it has not started when the Story changes.
    assert project.cli("apply", "-f", "run.yaml").returncode == 0
    assert project.cli("apply", "-f", "v2.yaml").returncode == 0
    waited = project.cli("wait", "pinned", "-o", "json", timeout=90)
    run = json.loads(waited.stdout)
    assert run["status"]["phase"] == "Failed", run["status"]
    assert "has version '2', expected '1'" in run["status"]["message"]
    assert project.events() == []
