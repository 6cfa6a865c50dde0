"""A step's random template helpers are seeded from its run, step and attempt."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from tests.e2e.conftest import Project

from bobrapet.engine import template_seed
from bobrapet.templating import render

pytestmark = pytest.mark.slow

SEEDED = """
import json, os

def pick(inputs, ctx):
    with open(inputs["log"], "a") as fh:
        fh.write(json.dumps(inputs["drawn"]) + "\\n")
    if not os.path.exists(inputs["marker"]):
        open(inputs["marker"], "w").close()
        os._exit(130)  # a retryable failure: the step gets a second attempt
    return inputs["drawn"]
"""

DRAWN = {
    "id": "{{ uuidv4() }}",
    "n": "{{ randInt(0, 1000000000) }}",
    "pick": "{{ ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] | random }}",
}


def test_each_attempt_renders_the_values_its_seed_gives(project: Project) -> None:
    project.write("seeded.py", SEEDED)
    log, marker = project.root / "drawn.jsonl", project.root / "marker"
    drawn = ", ".join(f'{k}: "{v}"' for k, v in DRAWN.items())
    project.write(
        "story.yaml",
        f"""
        apiVersion: catalog.bubustack.io/v1alpha1
        kind: EngramTemplate
        metadata: {{name: seeded}}
        spec: {{version: "1.0.0", supportedModes: [job], entrypoint: "seeded:pick"}}
        ---
        apiVersion: bubustack.io/v1alpha1
        kind: Engram
        metadata: {{name: seeded}}
        spec: {{templateRef: {{name: seeded}}}}
        ---
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: seeded}}
        spec:
          steps:
            - name: s
              ref: {{name: seeded}}
              with: {{log: "{log}", marker: "{marker}", drawn: {{{drawn}}}}}
              execution: {{retry: {{maxRetries: 1, delay: 10ms}}}}
        """,
    )
    done = project.cli("run", "-f", "story.yaml", "--name", "seeded", "-o", "json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"]["phase"] == "Succeeded"
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(seen) == 2  # the failed attempt and its retry

    def expected(attempt: int) -> object:
        seed = template_seed(run, "s", attempt)
        return render(DRAWN, {}, now=lambda: datetime.now(UTC), seed=seed)

    # What each attempt received is what rendering with its seed gives, here, in this process.
    assert seen == [expected(0), expected(1)]
    assert seen[0]["id"] != seen[1]["id"]
