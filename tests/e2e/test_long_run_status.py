"""A long run's status is written as patches, yet reading it shows every step (issue 8 item 1).

Through the CLI: a 30-step chain runs to the end; ``get -o json``, ``get`` and ``describe``
of the run show every step with its phase, and the store's change log holds patches (not
the whole run) for the run's status writes, which batch step progress.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from tests.e2e.conftest import Project

pytestmark = pytest.mark.slow

STEPS = 30


def _chain(project: Project) -> str:
    steps = []
    for i in range(STEPS):
        needs = f"\n              needs: [s{i - 1}]" if i else ""
        steps.append(
            f"""
            - name: s{i}{needs}
              ref: {{name: recorder}}
              with: {{record: "{project.record}", step: s{i}}}"""
        )
    return f"""
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: chain}}
        spec:
          steps:{"".join(steps)}
        """


def test_every_step_phase_is_readable_after_patched_status_writes(project: Project) -> None:
    project.write("chain.yaml", _chain(project))
    done = project.cli("run", "-f", "catalog.yaml", "-f", "chain.yaml", "--name", "long", timeout=180)
    assert done.returncode == 0, done.stderr
    got = project.cli("get", "storyrun", "long", "-o", "json")
    assert got.returncode == 0, got.stderr
    status = json.loads(got.stdout)["status"]
    assert status["phase"] == "Succeeded"
    states = status["stepStates"]
    assert sorted(states) == sorted(f"s{i}" for i in range(STEPS))
    assert {s["phase"] for s in states.values()} == {"Succeeded"}
    assert all(s.get("startedAt") and s.get("finishedAt") for s in states.values())
    assert sorted(status["completed"]) == sorted(states)
    described = project.cli("describe", "storyrun", "long")
    assert described.returncode == 0, described.stderr
    for i in range(STEPS):
        assert f"s{i}" in described.stdout
    with sqlite3.connect(project.home / "state.db") as conn:
        kinds = dict(
            conn.execute(
                "SELECT type, count(*) FROM events WHERE kind LIKE 'storyruns.%' GROUP BY type"
            ).fetchall()
        )
    # status writes after the first are patches, not the whole run; step progress is
    # batched, so there are fewer writes than steps
    assert kinds.get("PATCHED", 0) >= 1 and kinds.get("MODIFIED", 0) <= 2
    assert kinds.get("PATCHED", 0) < STEPS
