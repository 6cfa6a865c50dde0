"""Through the CLI: a retry policy the user wrote retries ordinary failures; timeouts from the
EngramTemplate act; the step's idempotency key reaches Python and command engrams."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.e2e.conftest import Project

pytestmark = pytest.mark.slow

ENGRAMS = """
import json, os, time
from bobrapet.sdk.errors import StructuredError

def _attempt(inputs):
    path = inputs["counter"]
    n = int(open(path).read()) + 1 if os.path.exists(path) else 1
    with open(path, "w") as fh:
        fh.write(str(n))
    return n

def flaky(inputs, ctx):
    n = _attempt(inputs)
    if n <= 2:
        raise RuntimeError(f"flaky failure on attempt {n}")
    return {"attempts": n}

def terminal(inputs, ctx):
    n = _attempt(inputs)
    raise StructuredError(f"bad request on attempt {n}", exit_class="terminal")

def key(inputs, ctx):
    return {"key": ctx.idempotency_key}

def hang(inputs, ctx):
    time.sleep(60)
    return {}
"""

CATALOG = """
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {{name: {name}}}
spec: {{version: "1.0.0", supportedModes: [job], {how}{extra}}}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {{name: {name}}}
spec: {{templateRef: {{name: {name}}}}}
"""


def _engram(name: str, how: str, extra: str = "") -> str:
    return CATALOG.format(name=name, how=how, extra=extra)


def _run(project: Project, story: str, run: str) -> dict[str, Any]:
    project.write("engrams.py", ENGRAMS)
    project.write("story.yaml", story)
    done = project.cli("run", "-f", "story.yaml", "--name", run, "-o", "json")
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _step_run(project: Project, name: str) -> dict[str, Any]:
    got = project.cli("get", "steprun", name, "-o", "json")
    assert got.returncode == 0, got.stderr
    result: dict[str, Any] = json.loads(got.stdout)
    return result


def _story(project: Project, entry: str, execution: str) -> str:
    counter = project.root / "attempts"
    return (
        _engram("e", f'entrypoint: "engrams:{entry}"')
        + f"""
---
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {{name: s}}
spec:
  steps:
    - name: work
      ref: {{name: e}}
      with: {{counter: "{counter}"}}
{execution}
"""
    )


POLICY = "      execution: {retry: {maxRetries: 3, delay: 10ms}}"


@pytest.mark.parametrize(
    ("entry", "execution", "phase", "attempts"),
    [
        pytest.param("flaky", POLICY, "Succeeded", 3, id="plain-exception-retried-with-policy"),
        pytest.param("terminal", POLICY, "Failed", 1, id="structured-terminal-not-retried"),
        pytest.param("flaky", "", "Failed", 1, id="plain-exception-terminal-without-policy"),
    ],
)
def test_retry_contract(project: Project, entry: str, execution: str, phase: str, attempts: int) -> None:
    run = _run(project, _story(project, entry, execution), "r")
    assert run["status"]["phase"] == phase, run["status"]
    assert int((project.root / "attempts").read_text()) == attempts
    step_run = _step_run(project, "r-work")
    status = step_run["status"]
    assert status["phase"] == phase
    assert status.get("retries", 0) == attempts - 1
    source = step_run["metadata"]["annotations"]["bobrapet.bubustack.io/retry-policy"]
    assert source == ("step" if execution else "default")
    if phase == "Succeeded":
        assert status["output"] == {"attempts": 3}
        # the last failed attempt's message stays visible
        assert status["lastFailureMsg"] == "RuntimeError: flaky failure on attempt 2"
        log = project.cli("logs", "r", "work")
        assert "flaky failure on attempt 1" in log.stdout + log.stderr
        assert "flaky failure on attempt 2" in log.stdout + log.stderr
    else:
        assert status["lastFailureMsg"].endswith("on attempt 1")


def test_template_timeout_acts(project: Project) -> None:
    story = (
        _engram("slow", 'entrypoint: "engrams:hang"', ", execution: {timeout: 500ms}")
        + """
---
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: t}
spec:
  policy: {timeouts: {step: 1m}, execution: {timeout: 2m}}
  steps:
    - {name: wait, ref: {name: slow}, execution: {retry: {maxRetries: 0}}}
"""
    )
    run = _run(project, story, "t")
    assert run["status"]["phase"] in ("Failed", "Timeout"), run["status"]
    status = _step_run(project, "t-wait")["status"]
    assert status["phase"] == "Timeout"
    assert status["exitCode"] == 124
    assert status.get("retries", 0) == 0
    # the template's 500ms beat the Story's policy.execution.timeout and policy.timeouts.step
    assert status["lastFailureMsg"] == "timed out after 0.5s"


def test_idempotency_key_reaches_python_and_command_engrams(project: Project) -> None:
    script = 'printf \'{"key": "%s"}\' "$BUBU_IDEMPOTENCY_KEY" > "$BUBU_OUTPUT_PATH"'
    story = (
        _engram("py", 'entrypoint: "engrams:key"')
        + "---\n"
        + _engram("sh", f"command: [sh, -c, {json.dumps(script)}]")
        + """
---
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: k}
spec:
  steps:
    - {name: py, ref: {name: py}}
    - {name: sh, ref: {name: sh}, idempotencyKeyTemplate: "custom-{{ run.name }}"}
"""
    )
    run = _run(project, story, "k")
    assert run["status"]["phase"] == "Succeeded", run["status"]
    py = _step_run(project, "k-py")
    assert py["spec"]["idempotencyKey"] == "ns/default/storyrun/k/step/py"
    assert py["status"]["output"] == {"key": py["spec"]["idempotencyKey"]}
    sh = _step_run(project, "k-sh")
    assert sh["status"]["output"] == {"key": "custom-k"}


def test_ref_version_mismatch_fails_the_step_with_a_reason(project: Project) -> None:
    story = (
        _engram("py", 'entrypoint: "engrams:key"').replace(
            "spec: {templateRef: {name: py}}", 'spec: {version: "2.0.0", templateRef: {name: py}}'
        )
        + """
---
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: v}
spec:
  steps:
    - {name: pinned, ref: {name: py, version: "1.0.0"}}
"""
    )
    run = _run(project, story, "v")
    assert run["status"]["phase"] == "Failed"
    state = run["status"]["stepStates"]["pinned"]
    assert state["phase"] == "Failed"
    assert state["reason"] == "EngramReferenceInvalid"
    assert "version '1.0.0' (ref.version)" in state["message"] and "has version '2.0.0'" in state["message"]
