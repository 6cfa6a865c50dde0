"""policy.concurrency caps the Story's Running steps; queued steps start as capacity frees."""

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


def test_story_concurrency_limit_queues_steps(project: Project) -> None:
    """With 4 workers and 6 ready steps, the overlap is exactly the limit of 2.

    Each step waits (``barrier``) until 2 steps have started before it finishes, so the
    limit is reached however slow the machine; that no third step starts meanwhile is
    what the limit itself guarantees.
    """
    steps = "".join(
        f"""
            - name: p{i}
              ref: {{name: recorder}}
              with: {{record: "{project.record}", step: p{i}, barrier: 2, sleep: 0.1}}"""
        for i in range(6)
    )
    project.write(
        "story.yaml",
        f"""
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: capped}}
        spec:
          policy: {{concurrency: 2}}
          steps:{steps}
        """,
    )
    done = project.cli("run", "-f", "catalog.yaml", "-f", "story.yaml", "-o", "json", "--workers", "4")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"]["phase"] == "Succeeded"
    events = project.events()
    assert len(events) == 12
    assert _max_overlap(events) == 2, events
