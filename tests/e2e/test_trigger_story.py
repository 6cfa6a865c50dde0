"""Through the CLI: a Python engram step starts another Story with ``ctx.trigger_story``; the
triggered run is independent (an engine drives it: ``bobrapet wait RUN``), carries its
provenance, is started once across retries of the step, and large inputs go to storage —
from a step as from ``bobrapet trigger``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.e2e.conftest import Project

from bobrapet.api.runmeta import TRIGGERED_BY_STEPRUN, TRIGGERED_BY_STORYRUN

pytestmark = pytest.mark.slow

ENGRAMS = """
import os

def _attempt(path):
    n = int(open(path).read()) + 1 if os.path.exists(path) else 1
    with open(path, "w") as fh:
        fh.write(str(n))
    return n

def caller(inputs, ctx):
    n = _attempt(inputs["counter"])
    payload = inputs.get("payload") or {}
    if inputs.get("bigDoc"):
        payload = {**payload, "doc": "b" * int(inputs["bigDoc"])}
    key = inputs.get("key") or None
    times = int(inputs.get("times") or 1)
    results = [ctx.trigger_story(inputs["story"], payload, key=key) for _ in range(times)]
    if n == 1 and inputs.get("failFirst"):
        raise RuntimeError("failing on purpose after triggering")
    return {"runs": [r.story_run for r in results], "decisions": [r.decision for r in results], "attempt": n}

def measure(inputs, ctx):
    doc = inputs["doc"]
    return {"len": len(doc), "head": doc[:3], "same": doc == doc[0] * len(doc)}
"""

STORIES = """
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {name: caller}
spec: {version: "1.0.0", supportedModes: [job], entrypoint: "callers:caller"}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {name: caller}
spec: {templateRef: {name: caller}}
---
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {name: measure}
spec: {version: "1.0.0", supportedModes: [job], entrypoint: "callers:measure"}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {name: measure}
spec: {templateRef: {name: measure}}
---
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: child}
spec:
  steps:
    - name: m
      ref: {name: measure}
      with: {doc: "{{ inputs.doc }}"}
  output:
    len: "{{ steps.m.output.len }}"
    head: "{{ steps.m.output.head }}"
    same: "{{ steps.m.output.same }}"
---
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: parent}
spec:
  steps:
    - name: call
      ref: {name: caller}
      with:
        counter: "{{ inputs.counter }}"
        story: "{{ inputs.story | default('child') }}"
        payload: "{{ inputs.payload | default({}) }}"
        key: "{{ inputs.key | default('') }}"
        times: "{{ inputs.times | default(1) }}"
        failFirst: "{{ inputs.failFirst | default(false) }}"
        bigDoc: "{{ inputs.bigDoc | default(0) }}"
      execution: {retry: {maxRetries: 2, delay: 10ms}}
"""


@pytest.fixture
def stories(project: Project) -> Project:
    project.write("callers.py", ENGRAMS)
    project.write("stories.yaml", STORIES)
    applied = project.cli("apply", "-f", "stories.yaml")
    assert applied.returncode == 0, applied.stderr
    return project


def run_parent(project: Project, name: str, *inputs: str) -> dict[str, Any]:
    counter = project.root / f"{name}.attempts"
    done = project.cli(
        "run", "--story", "parent", "--name", name, "-i", f"counter={counter}", *inputs, "-o", "json"
    )
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def get(project: Project, *args: str) -> dict[str, Any]:
    got = project.cli("get", *args, "-o", "json")
    assert got.returncode == 0, got.stderr
    result: dict[str, Any] = json.loads(got.stdout)
    return result


def wait(project: Project, run: str) -> dict[str, Any]:
    done = project.cli("wait", run, "-o", "json", "--timeout", "90s")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def child_runs(project: Project) -> list[dict[str, Any]]:
    items = get(project, "storyruns", "-l", "bubustack.io/story-name=child")["items"]
    return list(items)


def test_a_keyed_trigger_from_a_retried_step_starts_one_run_that_runs_independently(stories: Project) -> None:
    parent = run_parent(
        stories, "p", "-i", 'payload={"doc": "hello"}', "-i", "key=k1", "-i", "failFirst=true"
    )
    assert parent["status"]["phase"] == "Succeeded", parent["status"]
    output = get(stories, "steprun", "p-call")["status"]["output"]
    assert output["attempt"] == 2 and output["decisions"] == ["Created"]
    (child,) = child_runs(stories)  # both attempts got the same run
    name = child["metadata"]["name"]
    assert output["runs"] == [name] and name.startswith("child-k1-")
    annotations = child["metadata"]["annotations"]
    assert (annotations[TRIGGERED_BY_STEPRUN], annotations[TRIGGERED_BY_STORYRUN]) == ("p-call", "p")
    assert annotations["storyrun.bubustack.io/trigger-token"] == "k1"
    assert "ownerReferences" not in child["metadata"]  # independent of the caller's run
    assert (child.get("status") or {}).get("phase") in (None, "", "Pending")  # `run p` drove only p

    final = wait(stories, name)
    assert final["status"]["phase"] == "Succeeded"
    assert final["status"]["output"] == {"len": 5, "head": "hel", "same": False}


def test_without_a_key_a_retried_step_gets_the_runs_its_first_attempt_started(stories: Project) -> None:
    parent = run_parent(stories, "p", "-i", 'payload={"doc": "aaa"}', "-i", "times=2", "-i", "failFirst=true")
    assert parent["status"]["phase"] == "Succeeded", parent["status"]
    output = get(stories, "steprun", "p-call")["status"]["output"]
    assert output["attempt"] == 2
    runs = sorted(r["metadata"]["name"] for r in child_runs(stories))
    assert sorted(output["runs"]) == runs and len(runs) == 2  # two identical calls: two runs, once each
    other = run_parent(stories, "q", "-i", 'payload={"doc": "aaa"}')  # another step: a new run
    assert other["status"]["phase"] == "Succeeded"
    assert len(child_runs(stories)) == 3


def test_an_unknown_story_fails_the_step_at_once_with_a_clear_message(stories: Project) -> None:
    parent = run_parent(stories, "p", "-i", "story=nope")
    assert parent["status"]["phase"] == "Failed"
    step = get(stories, "steprun", "p-call")
    error = step["status"]["error"]
    assert error["message"] == 'story "nope" not found in namespace "default"; stories there: child, parent'
    assert (error["code"], error["exitClass"]) == ("StoryNotFound", "terminal")
    assert int((stories.root / "p.attempts").read_text()) == 1  # terminal: not retried


def test_a_rejected_trigger_fails_the_step_with_the_reason(stories: Project) -> None:
    configured = stories.cli("config", "set", "controller.storage.provider", "none")
    assert configured.returncode == 0, configured.stderr
    parent = run_parent(stories, "p", "-i", "bigDoc=5000")
    assert parent["status"]["phase"] == "Failed"
    error = get(stories, "steprun", "p-call")["status"]["error"]
    assert (error["code"], error["exitClass"]) == ("TriggerRejected", "terminal")
    assert "was rejected (InputTooLarge)" in error["message"]
    assert "no storage is configured to offload them" in error["message"]
    assert int((stories.root / "p.attempts").read_text()) == 1


def test_large_inputs_from_a_step_are_offloaded_and_reach_the_triggered_run(stories: Project) -> None:
    parent = run_parent(stories, "p", "-i", "bigDoc=100000", "-i", "key=big")
    assert parent["status"]["phase"] == "Succeeded", parent["status"]
    (child,) = child_runs(stories)
    ref = child["spec"]["inputs"]["doc"]["$bubuStorageRef"]
    assert ref.startswith(f"inputs/default/{child['metadata']['name']}-")
    final = wait(stories, child["metadata"]["name"])
    assert final["status"]["output"] == {"len": 100000, "head": "bbb", "same": True}


def test_bobrapet_trigger_offloads_100kb_inputs_and_the_run_gets_them_whole(stories: Project) -> None:
    stories.write("big.json", json.dumps({"doc": "t" * 100_000}))
    args = (
        "trigger",
        "child",
        "--inputs-file",
        "big.json",
        "--key",
        "{{ inputs.doc | length }}",
        "-o",
        "json",
    )
    done = stories.cli(*args)
    assert done.returncode == 0, done.stderr
    trigger = json.loads(done.stdout)
    assert len(done.stdout) < 20_000  # the trigger holds references, not the data
    name = trigger["status"]["storyRunRef"]["name"]
    run = get(stories, "storyrun", name)
    assert "$bubuStorageRef" in json.dumps(run["spec"]["inputs"])
    assert run["spec"]["inputs"] == trigger["spec"]["inputs"]
    again = stories.cli(*args)  # the same key and inputs: the same trigger and run
    assert (
        again.returncode == 0 and json.loads(again.stdout)["metadata"]["name"] == trigger["metadata"]["name"]
    )
    final = wait(stories, name)
    assert final["status"]["phase"] == "Succeeded"
    assert final["status"]["output"] == {"len": 100_000, "head": "ttt", "same": True}
