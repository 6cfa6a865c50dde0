"""``bobrapet trigger`` then ``bobrapet wait``: a durable trigger's run executes, once.

Each command is its own process on a scratch project holding a copy of ``examples/``.
A keyed trigger's StoryRun name is longer than 63 characters (Go-compatible derivation),
so these runs also prove that such runs execute (their labels are shortened).
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
from tests.conftest import EXAMPLES
from tests.e2e.conftest import Project

pytestmark = pytest.mark.slow

HELLO = ("-f", "examples/catalog.yaml", "-f", "examples/hello.yaml")


@pytest.fixture
def examples(project: Project) -> Project:
    shutil.copytree(EXAMPLES, project.root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    applied = project.cli("apply", *HELLO, "-f", "examples/sub-story.yaml")
    assert applied.returncode == 0, applied.stderr
    return project


def trigger(project: Project, *args: str) -> dict[str, Any]:
    done = project.cli("trigger", "hello", *args, "-o", "json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_triggered_run_runs_once_when_an_engine_drives_it(examples: Project) -> None:
    first = trigger(examples, "-i", "name=Ada", "--key", "order-1")
    run = first["status"]["storyRunRef"]["name"]
    assert first["status"]["decision"] == "Created" and len(run) > 63
    assert trigger(examples, "-i", "name=Ada", "--key", "order-1")["status"]["storyRunRef"]["name"] == run

    done = examples.cli("wait", run, "-o", "json", "--timeout", "90s")
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout)
    assert final["status"]["phase"] == "Succeeded"
    assert final["status"]["output"] == {"greeting": "Hello, Ada!"}
    assert "story" in final["status"]["triggerTokens"]
    logs = examples.cli("logs", run)
    assert logs.returncode == 0 and logs.stdout.startswith("=== attempt 1 ")  # the step's log is found

    # the same key after the run finished: the same trigger and run; nothing runs again
    again = examples.cli("trigger", "hello", "-i", "name=Ada", "--key", "order-1")
    assert again.returncode == 0 and f"-> storyrun/{run}" in again.stdout
    listed = json.loads(examples.cli("get", "storyruns", "-o", "json").stdout)["items"]
    assert [r["metadata"]["name"] for r in listed] == [run]

    conflict = examples.cli("trigger", "hello", "-i", "name=Bob", "--key", "order-1")
    assert conflict.returncode == 1 and "spec.inputs differ" in conflict.stderr


def test_a_run_with_a_long_name_and_a_child_run_succeeds(examples: Project) -> None:
    name = "parent-" + "a" * 70
    done = examples.cli("run", "--story", "parent", "--name", name, "-i", "who=Grace", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"]["output"] == {"greeting": "Hello, Grace!"}
    runs = json.loads(examples.cli("get", "storyruns", "-o", "json").stdout)["items"]
    assert {r["status"]["phase"] for r in runs} == {"Succeeded"} and len(runs) == 2
    assert examples.cli("logs", name).returncode == 0
    assert examples.cli("delete", "storyrun", name).returncode == 0
    assert json.loads(examples.cli("get", "storyruns", "-o", "json").stdout)["items"] == []
