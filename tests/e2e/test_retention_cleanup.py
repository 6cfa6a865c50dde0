"""Deleted runs leave nothing behind: blobs, logs and StoryTriggers go with them, whether a
user deletes the run (``bobrapet delete``) or ``bobrapet serve`` does once its retention ends."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from tests.e2e.conftest import Project
from tests.e2e.test_storage import catalog, run, setup
from tests.server.serving import start_serve

from bobrapet.triggers.request import TriggerRequest, trigger_object

pytestmark = pytest.mark.slow

STORY = """
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: big}
spec:
  steps:
    - name: a
      ref: {name: make}
      with: {n: 20000}
    - name: b
      needs: [a]
      ref: {name: read}
      with: {data: "{{ steps.a.output.big }}"}
"""


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def wait_for(predicate: object, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return bool(predicate())  # type: ignore[operator]


def test_bobrapet_delete_frees_the_runs_storage(project: Project) -> None:
    setup(project, STORY)
    assert run(project, "r1")["status"]["phase"] == "Succeeded"
    assert run(project, "r2")["status"]["phase"] == "Succeeded"
    storage, logs = project.home / "storage", project.home / "logs"
    assert "outputs/default/r1-a/big.json" in files(storage)
    done = project.cli("delete", "storyrun", "r1")
    assert done.returncode == 0, done.stderr
    assert "storyrun/r1 deleted" in done.stdout
    assert {f for f in files(storage) if not f.endswith(".sha256")} == {"outputs/default/r2-a/big.json"}
    assert {f for f in files(logs) if "r1" in f} == set()


def test_serve_removes_runs_after_their_retention_with_their_blobs_logs_and_triggers(
    project: Project,
) -> None:
    setup(project, STORY)
    project.write("engrams.yaml", catalog(["make", "read"]))
    for args in (
        ("apply", "-f", "engrams.yaml", "-f", "story.yaml"),
        ("config", "set", "storyrun.retention-seconds", "1"),
    ):
        done = project.cli(*args)
        assert done.returncode == 0, done.stderr
    serve = start_serve(project.home, cwd=project.root)
    try:
        runs = "/apis/runs.bubustack.io/v1alpha1/namespaces/default/storyruns"
        created = serve.request("POST", runs, {
            "apiVersion": "runs.bubustack.io/v1alpha1", "kind": "StoryRun",
            "metadata": {"name": "direct", "namespace": "default"}, "spec": {"storyRef": {"name": "big"}},
        })  # fmt: skip
        assert created.status == 201, created.body
        trigger = trigger_object(
            TriggerRequest(story="big"), mode="none", key=None, submission_id=str(uuid.uuid4()), inputs={}
        )
        path = "/apis/runs.bubustack.io/v1alpha1/namespaces/default/storytriggers"
        assert serve.request("POST", path, trigger).status == 201
        storage, logs = project.home / "storage", project.home / "logs"
        assert wait_for(lambda: "outputs/default/direct-a/big.json" in files(storage))

        def all_gone() -> bool:
            listed = serve.request("GET", runs).body["items"]
            triggers = serve.request("GET", path).body["items"]
            return not listed and not triggers and not files(storage) and not files(logs)

        assert wait_for(all_gone), (files(storage), files(logs), serve.output()[-3000:])
    finally:
        serve.stop()
    assert json.loads(project.cli("get", "storyruns", "-o", "json").stdout)["items"] == []
