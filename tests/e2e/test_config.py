"""``<home>/config.yaml`` (reference §9.1 keys), set with ``bobrapet config set``, acts on the engine."""

from __future__ import annotations

import json

import pytest
from tests.e2e.conftest import Project

pytestmark = pytest.mark.slow


def _max_overlap(events: list[dict[str, object]]) -> int:
    running = peak = 0
    for event in events:
        running += 1 if event["event"] == "start" else -1
        peak = max(peak, running)
    return peak


def _fan_out(project: Project, n: int, sleep: float) -> None:
    steps = "".join(
        f"""
            - name: p{i}
              ref: {{name: recorder}}
              with: {{record: "{project.record}", step: p{i}, sleep: {sleep}}}"""
        for i in range(n)
    )
    project.write(
        "story.yaml",
        f"""
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: fan}}
        spec:
          steps:{steps}
        """,
    )


def _run(project: Project) -> dict[str, object]:
    done = project.cli("run", "-f", "catalog.yaml", "-f", "story.yaml", "-o", "json", "--workers", "4")
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_global_concurrency_from_the_config_file_limits_running_steps(project: Project) -> None:
    assert project.cli("config", "set", "storyrun.global-concurrency", "1").returncode == 0
    _fan_out(project, 4, 0.2)
    run = _run(project)
    assert run["status"]["phase"] == "Succeeded"  # type: ignore[index]
    events = project.events()
    assert len(events) == 8 and _max_overlap(events) == 1


def test_queue_concurrency_from_the_config_file_limits_running_steps(project: Project) -> None:
    assert project.cli("config", "set", "storyrun.queue.default.concurrency", "2").returncode == 0
    _fan_out(project, 6, 0.3)
    run = _run(project)
    assert run["status"]["phase"] == "Succeeded"  # type: ignore[index]
    events = project.events()
    assert len(events) == 12 and _max_overlap(events) == 2


def test_default_step_timeout_from_the_config_file(project: Project) -> None:
    assert project.cli("config", "set", "timeout.default-step", "1s").returncode == 0
    _fan_out(project, 1, 5)
    run = _run(project)
    assert run["status"]["phase"] in ("Failed", "Timeout")  # type: ignore[index]
    step = project.cli("get", "steprun", "-o", "json")
    items = json.loads(step.stdout)["items"]
    assert items[0]["status"]["phase"] == "Timeout"


def test_child_ttl_from_the_config_file(project: Project) -> None:
    assert project.cli("config", "set", "job.ttl-seconds-after-finished", "0").returncode == 0
    _fan_out(project, 2, 0)
    run = _run(project)
    assert run["status"]["phase"] == "Succeeded"  # type: ignore[index]
    listed = project.cli("get", "steprun", "-o", "json")
    assert json.loads(listed.stdout)["items"] == []
    kept = project.cli("get", "storyrun", "-o", "json")
    assert len(json.loads(kept.stdout)["items"]) == 1


def test_a_broken_config_file_is_a_clear_error(project: Project) -> None:
    project.home.mkdir(parents=True, exist_ok=True)
    (project.home / "config.yaml").write_text("security.run-as-user: 1000\n")
    _fan_out(project, 1, 0)
    done = project.cli("run", "-f", "catalog.yaml", "-f", "story.yaml")
    assert done.returncode == 1
    assert "security.run-as-user: not offered embedded" in done.stderr
    assert "Kubernetes" in done.stderr
    assert "Traceback" not in done.stderr
