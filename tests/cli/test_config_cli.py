"""``bobrapet config view|set|unset`` on a home's config.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from tests.cli.conftest import Cli


def _home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_view_shows_defaults_then_file_values(cli: Cli, tmp_path: Path) -> None:
    view = cli("config", "view")
    assert view.code == 0, view.err
    line = next(ln for ln in view.out.splitlines() if ln.startswith("timeout.default-step "))
    assert line.split() == ["timeout.default-step", "30m", "default"]
    assert not (_home(tmp_path) / "config.yaml").exists()  # viewing writes nothing

    done = cli("config", "set", "timeout.default-step", "10m")
    assert done.code == 0, done.err
    assert cli("config", "set", "storyrun.queue.batch.concurrency", "3").code == 0
    data = json.loads(cli("config", "view", "-o", "json").out)
    assert data["timeout.default-step"] == {"value": "10m", "source": "file"}
    assert data["storyrun.queue.batch.concurrency"] == {"value": 3, "source": "file"}
    assert data["retry.max-retries"] == {"value": 3, "source": "default"}
    stored = yaml.safe_load((_home(tmp_path) / "config.yaml").read_text())
    assert stored == {"timeout.default-step": "10m", "storyrun.queue.batch.concurrency": 3}

    assert cli("config", "unset", "timeout.default-step").code == 0
    data = json.loads(cli("config", "view", "-o", "json").out)
    assert data["timeout.default-step"]["source"] == "default"


def test_set_rejects_inert_unknown_and_bad_values_without_writing(cli: Cli, tmp_path: Path) -> None:
    inert = cli("config", "set", "resources.engram.cpu-limit", "2")
    assert inert.code == 1
    assert "resources.engram.cpu-limit: not offered embedded" in inert.err and "Kubernetes" in inert.err
    unknown = cli("config", "set", "storyrun.retention", "5")
    assert unknown.code == 1 and "unknown key; valid keys:" in unknown.err
    bad = cli("config", "set", "storyrun.global-concurrency", "lots")
    assert bad.code == 1 and "storyrun.global-concurrency: expected an integer" in bad.err
    assert not (_home(tmp_path) / "config.yaml").exists()


def test_admission_limits_come_from_the_config_file(cli: Cli, tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text(
        "apiVersion: bubustack.io/v1alpha1\nkind: Story\nmetadata: {name: s}\n"
        "spec:\n  steps:\n    - {name: a, type: sleep, with: {duration: 1ms}}\n"
    )
    assert cli("apply", "-f", str(story)).code == 0
    big = "x" * 2000
    run = tmp_path / "run.yaml"
    run.write_text(
        "apiVersion: runs.bubustack.io/v1alpha1\nkind: StoryRun\nmetadata: {name: r}\n"
        f"spec:\n  storyRef: {{name: s}}\n  inputs: {{big: {big}}}\n"
    )
    refused = cli("apply", "-f", str(run))
    assert refused.code == 1 and "spec.inputs too large" in refused.err
    assert cli("config", "set", "storyrun.max-inline-inputs-size", "8192").code == 0
    accepted = cli("apply", "-f", str(run))
    assert accepted.code == 0, accepted.err


K8S_FIELDS = """
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {name: k8s-tpl}
spec:
  version: "1.0.0"
  supportedModes: [job]
  entrypoint: examples.engrams.basics:echo
  execution:
    resources: {recommendedCpuRequest: 100m}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {name: k8s-eng}
spec:
  templateRef: {name: k8s-tpl}
  overrides: {security: {runAsNonRoot: true}, timeout: 30s}
"""


def test_kubernetes_only_fields_warn_once_per_object_on_apply(cli: Cli, tmp_path: Path) -> None:
    manifest = tmp_path / "k8s.yaml"
    manifest.write_text(K8S_FIELDS)
    first = cli("apply", "-f", str(manifest))
    assert first.code == 0, first.err
    lines = [ln for ln in first.err.splitlines() if ln.startswith("warning:")]
    ignored = "only on Kubernetes; ignored when embedded"
    assert lines == [
        f"warning: engramtemplate/k8s-tpl: spec.execution.resources acts {ignored}",
        f"warning: engram/k8s-eng: spec.overrides.security acts {ignored}",
    ]
    again = cli("apply", "-f", str(manifest))
    assert again.code == 0 and "warning:" not in again.err
    explained = cli("explain", "engram.spec.overrides.security")
    assert "ACTS: Kubernetes only" in explained.out
