"""Every bad input the foundation issue lists, end to end through ``bobrapet``.

Each case writes a manifest, runs the CLI and checks: exit code 1, the field path, a
message that says what is wrong, the line it points at, no traceback — and that
nothing was stored.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from tests.cli.conftest import Cli

from bobrapet.api.admission.identity import effect_claim_name


def story(spec: str, name: str = "s") -> str:
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    return f"apiVersion: bubustack.io/v1alpha1\nkind: Story\nmetadata:\n  name: {name}\nspec:\n{body}\n"


# (id, manifest, field path, message fragment)
STORY_CASES = [
    (
        "wrong-type",
        story("steps:\n  - name: a\n    type: sleep\n    allowFailure: maybe"),
        "spec.steps[0].allowFailure",
        "boolean",
    ),
    ("missing-required", story("pattern: batch"), "spec.steps", "required"),
    (
        "both-ref-and-type",
        story("steps:\n  - name: a\n    type: sleep\n    ref: {name: x}"),
        "spec.steps[0]",
        "must not set both ref and type",
    ),
    ("neither-ref-nor-type", story("steps:\n  - name: a"), "spec.steps[0]", "must set either ref"),
    (
        "duplicate-across-blocks",
        story("steps:\n  - {name: a, type: sleep}\nfinally:\n  - {name: a, type: sleep}"),
        "spec.finally[0].name",
        "duplicate step name 'a'",
    ),
    (
        "self-dependency",
        story("steps:\n  - {name: a, type: sleep, needs: [a]}"),
        "spec.steps[0].needs[0]",
        "cannot depend on itself",
    ),
    (
        "unknown-needs",
        story("steps:\n  - {name: a, type: sleep, needs: [zz]}"),
        "spec.steps[0].needs[0]",
        "unknown dependency 'zz'",
    ),
    (
        "cycle",
        story(
            """
            steps:
              - {name: a, type: sleep, needs: [c]}
              - {name: b, type: sleep, needs: [a]}
              - {name: c, type: sleep, needs: [b]}
            """
        ),
        "spec.steps",
        "a -> c -> b -> a",
    ),
    (
        "gate-in-realtime",
        story("pattern: realtime\nsteps:\n  - {name: a, type: gate}"),
        "spec.steps[0]",
        "only supported for batch stories",
    ),
    (
        "wait-in-realtime",
        story("pattern: realtime\nsteps:\n  - {name: a, type: wait, with: {until: 'true'}}"),
        "spec.steps[0]",
        "only supported for batch stories",
    ),
    (
        "invalid-duration",
        story("steps:\n  - {name: a, type: sleep, with: {duration: 5 minutes}}"),
        "spec.steps[0].with.duration",
        "invalid duration",
    ),
    (
        "invalid-story-timeout",
        story("policy:\n  timeouts: {story: '-5s'}\nsteps:\n  - {name: a, type: sleep}"),
        "spec.policy.timeouts.story",
        "positive",
    ),
    (
        "wait-without-until",
        story("steps:\n  - {name: a, type: wait, with: {timeout: 1m}}"),
        "spec.steps[0].with.until",
        "requires 'with.until'",
    ),
    (
        "bad-onTimeout",
        story("steps:\n  - {name: a, type: gate, with: {onTimeout: explode}}"),
        "spec.steps[0].with.onTimeout",
        "'fail' or 'skip'",
    ),
    (
        "expression-syntax",
        story("steps:\n  - {name: a, type: condition, if: 'inputs.x ==* 2'}"),
        "spec.steps[0].if",
        "(line 1, column",
    ),
    (
        "denied-function",
        story("steps:\n  - name: a\n    type: condition\n    if: \"{{ env('HOME') }}\""),
        "spec.steps[0].if",
        "'env' is not allowed",
    ),
    (
        "requires-malformed",
        story("steps:\n  - {name: a, type: sleep}\n  - {name: b, type: sleep, requires: [inputs.x]}"),
        "spec.steps[1].requires[0]",
        "must start with 'steps.'",
    ),
    (
        "requires-not-upstream",
        story("steps:\n  - {name: a, type: sleep}\n  - {name: b, type: sleep, requires: [steps.a.output.x]}"),
        "spec.steps[1].requires[0]",
        "not upstream",
    ),
    (
        "unknown-step-in-expression",
        story("steps:\n  - name: a\n    type: condition\n    if: '{{ steps.nope.output.ok }}'"),
        "spec.steps[0].if",
        "nope",
    ),
    (
        "oversized-with",
        story("steps:\n  - name: a\n    type: stop\n    with:\n      message: " + json.dumps("x" * 70000)),
        "spec.steps[0].with",
        "exceeds maximum allowed size",
    ),
    (
        "oversized-output",
        story("steps:\n  - {name: a, type: sleep}\noutput:\n  big: " + json.dumps("y" * 70000)),
        "spec.output",
        "exceeds maximum allowed size",
    ),
]


@pytest.mark.parametrize(
    ("manifest", "field", "fragment"), [c[1:] for c in STORY_CASES], ids=[c[0] for c in STORY_CASES]
)
def test_bad_story_is_rejected_with_field_and_fix(
    cli: Cli, tmp_path: Path, manifest: str, field: str, fragment: str
) -> None:
    path = tmp_path / "story.yaml"
    path.write_text(manifest)
    result = cli("apply", "-f", str(path))
    assert result.code == 1, result.out
    assert "Traceback" not in result.err
    assert "document 1" in result.err
    assert f"  {field}" in result.err, result.err
    assert fragment in result.err, result.err
    assert "(line " in result.err
    assert cli("get", "story", "s").code == 1  # nothing half-written


SCHEMA_STORY = story(
    """
    inputsSchema:
      type: object
      required: [count]
      properties:
        count: {type: integer, minimum: 1}
    steps:
      - {name: a, type: sleep}
    """,
    name="typed",
)


def storyrun(inputs: str, name: str = "r1", extra: str = "") -> str:
    return (
        "apiVersion: runs.bubustack.io/v1alpha1\nkind: StoryRun\n"
        f"metadata:\n  name: {name}\nspec:\n  storyRef: {{name: typed}}\n  inputs: {inputs}\n{extra}"
    )


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [("{}", "count"), ("{count: 0}", "minimum"), ("{count: many}", "integer")],
    ids=["missing-required-input", "below-minimum", "wrong-type"],
)
def test_storyrun_inputs_failing_inputs_schema(cli: Cli, tmp_path: Path, inputs: str, fragment: str) -> None:
    (tmp_path / "story.yaml").write_text(SCHEMA_STORY)
    assert cli("apply", "-f", str(tmp_path / "story.yaml")).code == 0
    (tmp_path / "run.yaml").write_text(storyrun(inputs))
    result = cli("apply", "-f", str(tmp_path / "run.yaml"))
    assert result.code == 1
    assert "spec.inputs" in result.err
    assert fragment in result.err
    assert cli("get", "srun", "r1").code == 1


def test_storyrun_spec_is_immutable_except_cancel(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "story.yaml").write_text(SCHEMA_STORY)
    cli("apply", "-f", str(tmp_path / "story.yaml"))
    run = tmp_path / "run.yaml"
    run.write_text(storyrun("{count: 2}"))
    assert cli("apply", "-f", str(run)).code == 0
    run.write_text(storyrun("{count: 3}"))
    changed = cli("apply", "-f", str(run))
    assert changed.code == 1
    assert "spec is immutable for StoryRun" in changed.err
    run.write_text(storyrun("{count: 2}", extra="  cancelRequested: true\n"))
    cancel = cli("apply", "-f", str(run))
    assert cancel.code == 0, cancel.err
    assert "storyrun/r1 configured" in cancel.out
    run.write_text(storyrun("{count: 2}", extra="  cancelRequested: false\n"))
    assert cli("apply", "-f", str(run)).code == 1
    stored = json.loads(cli("get", "srun", "r1", "-o", "json").out)
    assert stored["spec"]["inputs"] == {"count": 2}
    assert stored["spec"]["cancelRequested"] is True


def effect_claim(name: str, spec: str) -> str:
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    head = "apiVersion: runs.bubustack.io/v1alpha1\nkind: EffectClaim\n"
    return f"{head}metadata:\n  name: {name}\nspec:\n{body}\n"


STEP_RUN = """\
apiVersion: runs.bubustack.io/v1alpha1
kind: StepRun
metadata: {name: step-a}
spec:
  storyRunRef: {name: r1}
  stepId: a
"""

GOOD_CLAIM_NAME = effect_claim_name("default", "step-a", "deliver")

EFFECT_CASES = [
    (
        "completedAt-without-status",
        effect_claim(
            GOOD_CLAIM_NAME,
            "stepRunRef: {name: step-a}\neffectKey: deliver\ncompletedAt: '2026-01-01T00:00:00.000000Z'",
        ),
        "completionStatus",
    ),
    (
        "renew-without-acquire",
        effect_claim(
            GOOD_CLAIM_NAME,
            "stepRunRef: {name: step-a}\neffectKey: deliver\nrenewTime: '2026-01-01T00:00:00.000000Z'",
        ),
        "acquireTime",
    ),
    (
        "non-deterministic-name",
        effect_claim("whatever", "stepRunRef: {name: step-a}\neffectKey: deliver"),
        GOOD_CLAIM_NAME,
    ),
    (
        "cross-namespace-steprun",
        effect_claim(GOOD_CLAIM_NAME, "stepRunRef: {name: step-a, namespace: other}\neffectKey: deliver"),
        "cross-namespace",
    ),
]


@pytest.mark.parametrize(
    ("manifest", "fragment"), [c[1:] for c in EFFECT_CASES], ids=[c[0] for c in EFFECT_CASES]
)
def test_effectclaim_rules(cli: Cli, tmp_path: Path, manifest: str, fragment: str) -> None:
    (tmp_path / "steprun.yaml").write_text(STEP_RUN)
    setup = cli("apply", "-f", str(tmp_path / "steprun.yaml"))
    assert setup.code == 0, setup.err
    (tmp_path / "claim.yaml").write_text(manifest)
    result = cli("apply", "-f", str(tmp_path / "claim.yaml"))
    assert result.code == 1, result.out
    assert fragment in result.err, result.err
    assert "Traceback" not in result.err


def test_completed_effectclaim_is_frozen(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "steprun.yaml").write_text(STEP_RUN)
    cli("apply", "-f", str(tmp_path / "steprun.yaml"))
    claim = tmp_path / "claim.yaml"
    base = "stepRunRef: {name: step-a}\neffectKey: deliver\nholderIdentity: w1\n"
    claim.write_text(
        effect_claim(
            GOOD_CLAIM_NAME,
            base + "completionStatus: completed\ncompletedAt: '2026-01-01T00:00:00.000000Z'",
        )
    )
    assert cli("apply", "-f", str(claim)).code == 0
    claim.write_text(
        effect_claim(
            GOOD_CLAIM_NAME,
            base + "completionStatus: released\ncompletedAt: '2026-01-01T00:00:00.000000Z'",
        )
    )
    result = cli("apply", "-f", str(claim))
    assert result.code == 1
    assert "completed" in result.err


def test_unknown_api_version(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(
        "apiVersion: bubustack.io/v9\nkind: Story\nmetadata: {name: x}\nspec: {}\n"
    )
    result = cli("validate", "-f", str(tmp_path / "x.yaml"))
    assert result.code == 1
    assert "bubustack.io/v9" in result.err
    assert "bubustack.io/v1alpha1" in result.err
