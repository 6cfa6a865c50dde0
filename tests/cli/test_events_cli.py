"""Events through the CLI: an output-key mismatch shows in ``describe`` and ``get events``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli

STORY = """
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {name: echo-keys}
spec:
  version: "1.0.0"
  supportedModes: [job]
  entrypoint: examples.engrams.basics:echo
  declaredOutputKeys: [a, b]
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {name: echoer}
spec: {templateRef: {name: echo-keys}}
---
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: keys}
spec:
  steps:
    - name: emit
      ref: {name: echoer}
      with: {a: 1, c: 2}
    - name: fine
      ref: {name: echoer}
      with: {a: 1, b: 2}
"""


def test_output_key_mismatch_is_a_warning_event_shown_by_describe_and_get(cli: Cli, tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text(STORY)
    done = cli("run", "-f", str(story), "-o", "json")
    assert done.code == 0, done.err
    run = json.loads(done.out)["metadata"]["name"]

    described = cli("describe", "steprun", f"{run}-emit")
    assert described.code == 0, described.err
    section = described.out.split("Events:", 1)[1]
    assert "Warning" in section
    assert "OutputKeyMismatch" in section
    assert "Output key mismatch: missing=[b] extra=[c]" in section

    fine = cli("describe", "steprun", f"{run}-fine")
    assert "Events:       <none>" in fine.out  # a normal success records no event

    listed = cli("get", "events", "-o", "json")
    assert listed.code == 0, listed.err
    items = json.loads(listed.out)["items"]
    assert [(e["involvedObject"]["name"], e["reason"], e["count"]) for e in items] == [
        (f"{run}-emit", "OutputKeyMismatch", 1)
    ]
    table = cli("get", "ev")
    assert "missing=[b] extra=[c]" in table.out
    assert cli("get", "events", "-n", "other").err.startswith("No resources found in other namespace")

    # deleting the run deletes its StepRuns and, with them, their events
    assert cli("delete", "storyrun", run).code == 0
    assert json.loads(cli("get", "events", "-o", "json").out)["items"] == []
