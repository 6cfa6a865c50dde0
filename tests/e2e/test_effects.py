"""Through the CLI: ``ctx.effect_once`` performs a side effect once per StepRun and key, across a
retried failure, a SIGKILLed worker and a failing effect; its EffectClaims go with their StepRun."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.e2e.conftest import Project

from bobrapet.api.admission.identity import effect_claim_name

pytestmark = pytest.mark.slow

ENGRAMS = """
import os, signal

def _attempt(inputs):
    path = inputs["counter"]
    n = int(open(path).read()) + 1 if os.path.exists(path) else 1
    with open(path, "w") as fh:
        fh.write(str(n))
    return n

def charge(inputs, ctx):
    n = _attempt(inputs)
    mode = inputs["mode"]

    def perform():
        if mode == "raise" and n == 1:
            raise RuntimeError("card declined")
        with open(inputs["ledger"], "a") as fh:
            fh.write(f"charged on attempt {n}\\n")
            fh.flush()
        if mode == "kill-inside" and n == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"receipt": f"r-{n}"}

    result = ctx.effect_once("charge", perform, lease_seconds=int(inputs.get("lease", 600)))
    if n == 1 and mode == "fail-after":
        raise RuntimeError("failing on purpose after the effect")
    if n == 1 and mode == "kill-after":
        os.kill(os.getpid(), signal.SIGKILL)
    return {"performed": result.performed, "receipt": result.value["receipt"], "attempt": n}
"""

STORY = """
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {{name: charge}}
spec: {{version: "1.0.0", supportedModes: [job], entrypoint: "engrams:charge"}}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {{name: charge}}
spec: {{templateRef: {{name: charge}}}}
---
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {{name: pay}}
spec:
  steps:
    - name: pay
      ref: {{name: charge}}
      with: {{counter: "{counter}", ledger: "{ledger}", mode: {mode}, lease: {lease}}}
      execution: {{retry: {{maxRetries: 2, delay: 10ms}}}}
"""


def _get(project: Project, *args: str) -> dict[str, Any]:
    got = project.cli("get", *args, "-o", "json")
    assert got.returncode == 0, got.stderr
    result: dict[str, Any] = json.loads(got.stdout)
    return result


def _run(project: Project, mode: str, lease: int = 600) -> dict[str, Any]:
    project.write("engrams.py", ENGRAMS)
    counter, ledger = project.root / "attempts", project.root / "ledger"
    project.write("story.yaml", STORY.format(counter=counter, ledger=ledger, mode=mode, lease=lease))
    done = project.cli("run", "-f", "story.yaml", "--name", "r", "-o", "json")
    assert done.stdout, done.stderr
    run: dict[str, Any] = json.loads(done.stdout)
    assert run["status"]["phase"] == "Succeeded", run["status"]
    return run


def _ledger(project: Project) -> list[str]:
    return (project.root / "ledger").read_text().splitlines()


def _claims(project: Project) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _get(project, "effectclaims")["items"]
    return items


def _settled_claim(project: Project) -> dict[str, Any]:
    """The claim once the always-on controllers had a turn (the claim's status may be written
    after ``run`` exits: like every controller-owned status, by the next command that settles)."""
    settled = project.cli("apply", "-f", "story.yaml")
    assert settled.returncode == 0, settled.stderr
    (claim,) = _claims(project)
    return claim


@pytest.mark.parametrize(
    ("mode", "receipt"),
    [
        pytest.param("fail-after", "r-1", id="step-fails-after-the-effect-and-is-retried"),
        pytest.param("kill-after", "r-1", id="worker-sigkilled-after-the-effect-and-retried"),
        pytest.param("raise", "r-2", id="effect-raises-is-released-and-the-retry-performs-it"),
    ],
)
def test_effect_performed_once_across_retries(project: Project, mode: str, receipt: str) -> None:
    _run(project, mode)
    assert int((project.root / "attempts").read_text()) == 2
    assert len(_ledger(project)) == 1
    step_run = _get(project, "steprun", "r-pay")
    assert step_run["status"]["output"] == {"performed": mode == "raise", "receipt": receipt, "attempt": 2}
    (effect,) = step_run["status"]["effects"]
    assert (effect["seq"], effect["key"], effect["status"]) == (1, "charge", "succeeded")
    assert effect["details"] == {"receipt": receipt}
    claim = _settled_claim(project)
    spec = claim["spec"]
    assert (spec["completionStatus"], spec["details"]) == ("completed", {"receipt": receipt})
    assert spec["stepRunRef"] == {"name": "r-pay", "uid": step_run["metadata"]["uid"]}
    assert spec["idempotencyKey"] == step_run["spec"]["idempotencyKey"]
    assert spec.get("leaseTransitions", 0) == (1 if mode == "raise" else 0)
    assert claim["status"]["phase"] == "Completed"


def test_worker_killed_inside_the_effect_waits_for_the_lease(project: Project) -> None:
    """The documented limit of at most once: an attempt that dies inside ``fn`` may have performed
    the effect; the retry waits for its lease to expire, then takes the claim over and runs it."""
    _run(project, "kill-inside", lease=2)
    assert _ledger(project) == ["charged on attempt 1", "charged on attempt 2"]
    log = project.cli("logs", "r", "pay")
    assert "effect 'charge' is held by" in log.stdout + log.stderr
    spec = _settled_claim(project)["spec"]
    assert (spec["completionStatus"], spec["leaseTransitions"]) == ("completed", 1)
    assert "/attempt-2/" in spec["holderIdentity"]


def test_claims_go_with_their_step_run(project: Project) -> None:
    _run(project, "fail-after")
    uid = _get(project, "steprun", "r-pay")["metadata"]["uid"]
    extra = project.write(
        "claim.yaml",
        """
        apiVersion: runs.bubustack.io/v1alpha1
        kind: EffectClaim
        metadata: {name: r-pay-effect-9a4a6b3fd2e8b0c6}
        spec: {stepRunRef: {name: r-pay}, effectKey: notify}
        """,
    )
    bad = project.cli("apply", "-f", str(extra))
    assert bad.returncode != 0 and "metadata.name must be the deterministic name" in bad.stderr
    name = effect_claim_name("default", "r-pay", "notify")
    extra.write_text(extra.read_text().replace("r-pay-effect-9a4a6b3fd2e8b0c6", name))
    applied = project.cli("apply", "-f", str(extra))
    assert applied.returncode == 0, applied.stderr
    claims = {c["spec"]["effectKey"]: c for c in _claims(project)}
    assert set(claims) == {"charge", "notify"}
    # the controller stamped the owner reference on the hand-written claim too
    assert [o["uid"] for o in claims["notify"]["metadata"]["ownerReferences"]] == [uid]
    deleted = project.cli("delete", "steprun", "r-pay")
    assert deleted.returncode == 0, deleted.stderr
    assert _claims(project) == []
