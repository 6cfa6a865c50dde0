"""kubectl (``/usr/bin/kubectl``) against a real ``bobrapet serve``: get, apply, delete, patch a gate."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.server.serving import BOBRAPET, REPO, Serve

KUBECTL = "/usr/bin/kubectl"
EXAMPLES = REPO / "examples"
BUILTIN_CATALOG = REPO / "src" / "bobrapet" / "api" / "builtin_catalog"

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(serve: Serve, tmp_path: Path) -> Kubectl:
    # No skip: the machine the suite runs on has kubectl, and these tests are the proof that
    # kubectl works against serve.
    assert Path(KUBECTL).exists(), f"kubectl is needed at {KUBECTL} (apt-get install kubectl)"
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "bobrapet", "cluster": {"server": serve.url}}],
                "users": [{"name": "me", "user": {}}],
                "contexts": [{"name": "bobrapet", "context": {"cluster": "bobrapet", "user": "me"}}],
                "current-context": "bobrapet",
            }
        )
    )
    env = {**os.environ, "KUBECONFIG": str(config), "HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True, timeout=60, cwd=REPO)

    return run


def test_apply_get_and_delete(kubectl: Kubectl, tmp_path: Path) -> None:
    first = kubectl("apply", "-f", str(EXAMPLES / "catalog.yaml"), "-f", str(EXAMPLES / "hello.yaml"))
    assert first.returncode == 0, first.stderr
    assert "story.bubustack.io/hello created" in first.stdout
    assert "engramtemplate.catalog.bubustack.io/greet created" in first.stdout
    again = kubectl("apply", "-f", str(EXAMPLES / "catalog.yaml"), "-f", str(EXAMPLES / "hello.yaml"))
    assert again.returncode == 0, again.stderr
    assert "story.bubustack.io/hello unchanged" in again.stdout
    changed = tmp_path / "hello.yaml"
    changed.write_text((EXAMPLES / "hello.yaml").read_text().replace("default: world", "default: planet"))
    configured = kubectl("apply", "-f", str(changed))
    assert configured.returncode == 0, configured.stderr
    assert "story.bubustack.io/hello configured" in configured.stdout

    table = kubectl("get", "stories")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "STEPS", "STATUS", "USAGE", "TRIGGERS", "AGE"]
    assert row.split()[0] == "hello"
    assert "greet" in kubectl("get", "etpl").stdout  # a short name, cluster-scoped
    as_yaml = kubectl("get", "story", "hello", "-o", "yaml")
    assert "kind: Story" in as_yaml.stdout and "default: planet" in as_yaml.stdout
    as_json = json.loads(kubectl("get", "stories", "-A", "-o", "json").stdout)
    assert ("default", "hello") in {
        (i["metadata"]["namespace"], i["metadata"]["name"]) for i in as_json["items"]
    }

    deleted = kubectl("delete", "story", "hello")
    assert deleted.returncode == 0, deleted.stderr
    assert 'story.bubustack.io "hello" deleted' in deleted.stdout
    missing = kubectl("get", "story", "hello")
    assert missing.returncode == 1
    assert 'stories.bubustack.io "hello" not found' in missing.stderr


def test_every_example_applies_and_applies_again_unchanged(kubectl: Kubectl) -> None:
    # The built-in ImpulseTemplates first (`bobrapet catalog install`): examples/webhook.yaml uses one.
    files = sorted(BUILTIN_CATALOG.glob("*.yaml")) + sorted(EXAMPLES.glob("*.yaml"))
    args = [arg for path in files for arg in ("-f", str(path))]
    first = kubectl("apply", "-n", "examples", *args)
    assert first.returncode == 0, first.stderr
    assert "story.bubustack.io/gated-workflow created" in first.stdout

    def versions() -> dict[str, str]:
        listed = json.loads(kubectl("get", "stories,engrams,secrets", "-n", "examples", "-o", "json").stdout)
        return {
            f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in listed["items"]
        }

    before = versions()
    again = kubectl("apply", "-n", "examples", *args)
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout
    assert "story.bubustack.io/hello unchanged" in again.stdout
    # Nothing is written again. kubectl still says "configured" where its merge patch replaces a
    # list the server defaulted inside (a step's retry policy) or for a Secret given as
    # stringData (stored as data), as it does against the Kubernetes API server.
    assert versions() == before
    assert {"Story/parent", "Story/gated-workflow", "Secret/signing-key"} <= set(before)


def test_apply_a_secret_then_change_it(kubectl: Kubectl, tmp_path: Path) -> None:
    created = kubectl("apply", "-f", str(EXAMPLES / "catalog.yaml"), "-f", str(EXAMPLES / "secrets.yaml"))
    assert created.returncode == 0, created.stderr
    assert "secret/signing-key created" in created.stdout
    text = (EXAMPLES / "secrets.yaml").read_text()
    changed = tmp_path / "secrets.yaml"
    changed.write_text(text.replace("signing-key\n", "signing-key\n  labels: {rotated: 'yes'}\n", 1))
    configured = kubectl("apply", "-f", str(changed))
    assert configured.returncode == 0, configured.stderr
    assert "secret/signing-key configured" in configured.stdout
    labels = kubectl("get", "secret", "signing-key", "-o", "jsonpath={.metadata.labels.rotated}")
    assert labels.stdout == "yes"


def test_invalid_object_is_reported_like_the_api_server(kubectl: Kubectl, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: bubustack.io/v1alpha1\nkind: Story\nmetadata: {name: broken}\n"
        "spec:\n  steps:\n  - {name: a, type: gate, needs: [nowhere]}\n"
    )
    result = kubectl("apply", "-f", str(bad))
    assert result.returncode == 1
    assert "is invalid" in result.stderr and "nowhere" in result.stderr


@pytest.mark.slow
def test_a_gate_of_a_run_is_approved_with_kubectl_patch(serve: Serve, kubectl: Kubectl) -> None:
    """The seed's approval: `bobrapet run` of the gate example on the serve's home waits at the
    gate; `kubectl patch storyrun ... --subresource status` approves it; the run succeeds."""
    env = {**os.environ, "COLUMNS": "200"}
    command = [
        BOBRAPET,
        "--home",
        str(serve.home),
        "run",
        "-f",
        "examples/catalog.yaml",
        "-f",
        "examples/gated-workflow.yaml",
        "--name",
        "release-1",
        "-i",
        "ready=true",
    ]
    runner = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = kubectl("get", "storyrun", "release-1", "-o", "jsonpath={.status.stepStates.approve.phase}")
            if got.stdout == "Paused":
                break
            time.sleep(0.1)
        assert got.stdout == "Paused", got.stderr
        patch = '{"status":{"gates":{"approve":{"state":"Approved","message":"ok"}}}}'
        approved = kubectl(
            "patch", "storyrun", "release-1", "--type", "merge", "--subresource", "status", "-p", patch
        )
        assert approved.returncode == 0, approved.stderr
        assert "storyrun.runs.bubustack.io/release-1 patched" in approved.stdout
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 0, err
    assert "storyrun/release-1 Succeeded" in out
    assert "following: bobrapet serve" in err
    phase = kubectl("get", "srun", "release-1", "-o", "jsonpath={.status.phase}")
    assert phase.stdout == "Succeeded"
    table = kubectl("get", "storyruns")
    assert "release-1" in table.stdout and "Succeeded" in table.stdout and "gated-workflow" in table.stdout
