"""Storage-aware payloads end to end through ``bobrapet run`` (reference §7, §3.7)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import Project
from tests.s3server import S3Server, running

pytestmark = pytest.mark.slow

BIG = """
import json, os

def make(inputs, ctx):
    return {"big": "x" * int(inputs["n"]), "small": 1}

def read(inputs, ctx):
    data = inputs["data"]
    return {"len": len(data), "head": data[:3], "n": inputs.get("n")}

def items(inputs, ctx):
    return {"items": [{"id": i, "pad": "p" * 100} for i in range(int(inputs["n"]))]}

def echo(inputs, ctx):
    return {"got": inputs.get("value")}

def forge(inputs, ctx):
    return {"ref": {"$bubuStorageRef": inputs["ref"]}}
"""

SHELL = r"""data=${BUBU_TRIGGER_DATA:-$(cat "$BUBU_TRIGGER_DATA_PATH")}
printf '{"len": %s, "viaFile": %s}' "$(printf %s "$data" | wc -c)" \
  "$([ -n "${BUBU_TRIGGER_DATA_PATH:-}" ] && [ -z "${BUBU_TRIGGER_DATA+x}" ] && echo true || echo false)" \
  > "$BUBU_OUTPUT_PATH"
"""


def catalog(entries: list[str], command: bool = False) -> str:
    docs = []
    for name in entries:
        docs.append(
            f"""
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {{name: {name}}}
spec: {{version: "1.0.0", supportedModes: [job], entrypoint: "big:{name}"}}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {{name: {name}}}
spec: {{templateRef: {{name: {name}}}}}
"""
        )
    if command:
        docs.append(
            """
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {name: shell}
spec: {version: "1.0.0", supportedModes: [job], command: ["sh", "shell.sh"]}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {name: shell}
spec: {templateRef: {name: shell}}
"""
        )
    return "---".join(docs)


def setup(project: Project, story: str, command: bool = False) -> None:
    project.write("big.py", BIG)
    project.write("shell.sh", SHELL)
    project.write("engrams.yaml", catalog(["make", "read", "items", "echo", "forge"], command))
    project.write("story.yaml", story)


def run(project: Project, name: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = project.cli("run", "-f", "engrams.yaml", "-f", "story.yaml", "--name", name, "-o", "json", env=env)
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def step_run(project: Project, name: str) -> tuple[dict[str, Any], int]:
    out = project.cli("get", "steprun", name, "-o", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout), len(out.stdout.encode())


FIVE_MB = """
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: big}
spec:
  steps:
    - name: a
      ref: {name: make}
      with: {n: 5000000}
    - name: b
      needs: [a]
      ref: {name: read}
      with: {data: "{{ steps.a.output.big }}"}
    - name: c
      needs: [a]
      ref: {name: read}
      with:
        data: "{{ steps.a.output.big[:10] }}"
        n: "{{ steps.a.output.big | length }}"
"""


def test_a_5mb_output_reaches_the_next_step_and_the_steprun_stays_small(project: Project) -> None:
    setup(project, FIVE_MB)
    result = run(project, "r")
    assert result["status"]["phase"] == "Succeeded", result["status"]
    a, size = step_run(project, "r-a")
    assert size < 10_000
    ref = a["status"]["output"]["big"]
    assert ref == {"$bubuStorageRef": "outputs/default/r-a/big.json", "$bubuStorageContentType": "text/plain"}
    blob = project.home / "storage" / ref["$bubuStorageRef"]
    assert blob.stat().st_size > 5_000_000
    b, _ = step_run(project, "r-b")
    assert b["status"]["output"] == {"len": 5_000_000, "head": "xxx", "n": None}
    # a compound template over the offloaded value: the engine hydrates it (policy controller)
    c, _ = step_run(project, "r-c")
    assert c["status"]["output"] == {"len": 10, "head": "xxx", "n": 5_000_000}


def test_policy_error_fails_compound_templates_but_passes_plain_references(project: Project) -> None:
    setup(project, FIVE_MB.replace("5000000", "20000"))
    assert project.cli("config", "set", "templating.offloaded-data-policy", "error").returncode == 0
    result = run(project, "e")
    assert result["status"]["phase"] == "Failed"
    b, _ = step_run(project, "e-b")
    assert b["status"]["output"]["len"] == 20_000  # a plain reference is hydrated by the step
    c, _ = step_run(project, "e-c")
    assert c["status"]["phase"] == "Failed"
    message = c["status"]["lastFailureMsg"] if "lastFailureMsg" in c["status"] else json.dumps(c["status"])
    assert "offloaded to storage" in message and "templating.offloaded-data-policy is error" in message


def test_selectors_over_an_offloaded_container(project: Project) -> None:
    setup(
        project,
        """
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: sel}
spec:
  steps:
    - name: a
      ref: {name: items}
      with: {n: 200}
    - name: b
      needs: [a]
      ref: {name: echo}
      with: {value: "{{ steps.a.output.items[7].id }}"}
""",
    )
    assert run(project, "s")["status"]["phase"] == "Succeeded"
    a, _ = step_run(project, "s-a")
    assert a["status"]["output"]["items"]["$bubuStorageRef"] == "outputs/default/s-a/items.json"
    b, _ = step_run(project, "s-b")
    assert b["status"]["output"] == {"got": 7}


COMMAND = """
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: cmd}
spec:
  steps:
    - name: a
      ref: {name: make}
      with: {n: 200000}
    - name: b
      needs: [a]
      ref: {name: shell}
      with: {data: "{{ steps.a.output.big }}"}
"""


def test_a_command_engram_gets_a_200kb_input_hydrated_in_a_file(project: Project) -> None:
    setup(project, COMMAND, command=True)
    assert run(project, "c")["status"]["phase"] == "Succeeded"
    b, _ = step_run(project, "c-b")
    assert b["status"]["output"] == {"len": 200_011, "viaFile": True}
    assert b["status"].get("retries", 0) == 0


def test_a_200kb_inline_input_goes_in_a_file_not_the_environment(project: Project) -> None:
    """No storage involved (inline limit raised): the input used to fail with E2BIG."""
    setup(project, COMMAND, command=True)
    assert project.cli("config", "set", "engram.default-max-inline-size", "1000000").returncode == 0
    assert run(project, "i")["status"]["phase"] == "Succeeded"
    a, _ = step_run(project, "i-a")
    assert isinstance(a["status"]["output"]["big"], str)  # stayed inline
    b, _ = step_run(project, "i-b")
    assert b["status"]["output"] == {"len": 200_011, "viaFile": True}


def test_malformed_and_traversing_references_fail_the_step_clearly(project: Project, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text('{"contentType":"raw","data":"stolen"}')
    before = sorted(p.name for p in tmp_path.iterdir())
    # Two runs: a failing step ends its run, so a second branch in the same run may never start.
    setup(
        project,
        """
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: evil}
spec:
  steps:
    - name: a
      ref: {name: forge}
      with: {ref: "../../../outside.json"}
    - name: b
      needs: [a]
      ref: {name: echo}
      with: {value: "{{ steps.a.output.ref }}"}
    - name: c
      needs: [a]
      ref: {name: echo}
      with: {value: "{{ steps.a.output.ref | string }}"}
""",
    )
    assert run(project, "x")["status"]["phase"] == "Failed"
    b, _ = step_run(project, "x-b")  # hydrated by the step's worker
    assert b["status"]["phase"] == "Failed" and b["status"].get("retries", 0) == 0
    assert b["status"]["error"]["type"] == "storage_error"
    assert "path traversal is not allowed" in b["status"]["error"]["message"]
    c, _ = step_run(project, "x-c")  # hydrated by the engine for a compound template
    assert c["status"]["phase"] == "Failed" and "path traversal is not allowed" in json.dumps(c["status"])
    setup(
        project,
        f"""
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {{name: evil}}
spec:
  steps:
    - name: d
      ref: {{name: forge}}
      with: {{ref: "{outside}"}}
    - name: e
      needs: [d]
      ref: {{name: echo}}
      with: {{value: "{{{{ steps.d.output.ref }}}}"}}
""",
    )
    assert run(project, "y")["status"]["phase"] == "Failed"
    e, _ = step_run(project, "y-e")
    assert e["status"]["phase"] == "Failed" and "absolute path" in e["status"]["error"]["message"]
    assert "stolen" not in json.dumps([b, c, e])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == before  # nothing outside


@pytest.fixture(scope="module")
def s3_server() -> Any:
    with running() as server:
        yield server


def test_outputs_go_to_s3_when_it_is_configured(project: Project, s3_server: S3Server) -> None:
    setup(project, FIVE_MB.replace("5000000", "300000"))
    bucket = s3_server.bucket()
    result = run(project, "s3", env=s3_server.env(bucket))
    assert result["status"]["phase"] == "Succeeded", result["status"]
    head = s3_server.client().head_object(Bucket=bucket, Key="outputs/default/s3-a/big.json")
    assert head["ContentLength"] > 300_000 and "sha256" in head["Metadata"]
    c, _ = step_run(project, "s3-c")
    assert c["status"]["output"]["n"] == 300_000
    assert not (project.home / "storage").exists()


KUBE_REFS = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast, obj: '{"a": [1, 2]}'}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {token: s3cr3t-t0ken-value}
---
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: refs}
spec:
  steps:
    - name: a
      ref: {name: echo}
      with:
        value:
          mode: {$bubuConfigMapRef: "settings:mode"}
          obj: {$bubuConfigMapRef: {name: settings, key: obj, format: json}}
          token: {$bubuSecretRef: "creds:token"}
    - name: b
      ref: {name: echo}
      with:
        value: {$bubuConfigMapRef: "other/settings:mode"}
    - name: c
      ref: {name: echo}
      with:
        value: {$bubuSecretRef: "nope:token"}
"""


def test_configmap_and_secret_references_resolve_in_the_namespace_and_secrets_are_redacted(
    project: Project,
) -> None:
    setup(project, KUBE_REFS)
    result = run(project, "k")
    assert result["status"]["phase"] == "Failed"
    a, _ = step_run(project, "k-a")
    assert a["status"]["output"] == {
        "got": {"mode": "fast", "obj": {"a": [1, 2]}, "token": "s3cr3t-t0ken-value"}
    }
    inputs_log = next((project.home / "logs").rglob("k.inputs.jsonl")).read_text()
    assert '"mode":"fast"' in inputs_log.replace(" ", "") and "s3cr3t-t0ken-value" not in inputs_log
    b, _ = step_run(project, "k-b")
    assert b["status"]["phase"] == "Failed" and "only in the step's own namespace" in json.dumps(b["status"])
    c, _ = step_run(project, "k-c")
    assert c["status"]["phase"] == "Failed" and "Secret 'nope' does not exist" in json.dumps(c["status"])


def test_oversized_run_inputs_are_offloaded_instead_of_rejected(project: Project) -> None:
    setup(
        project,
        """
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: inp}
spec:
  inputsSchema:
    type: object
    properties:
      doc: {type: string}
  steps:
    - name: a
      ref: {name: read}
      with: {data: "{{ inputs.doc }}", n: "{{ inputs.doc | length }}"}
""",
    )
    project.write("inputs.json", json.dumps({"doc": "d" * 50_000}))
    done = project.cli(
        "run",
        "-f",
        "engrams.yaml",
        "-f",
        "story.yaml",
        "--name",
        "in",
        "--inputs-file",
        "inputs.json",
        "-o",
        "json",
    )
    assert done.returncode == 0, done.stderr
    run_obj = json.loads(done.stdout)
    assert run_obj["status"]["phase"] == "Succeeded", run_obj["status"]
    assert "$bubuStorageRef" in json.dumps(run_obj["spec"]["inputs"])
    a, _ = step_run(project, "in-a")
    assert a["status"]["output"] == {"len": 50_000, "head": "ddd", "n": 50_000}


CACHED = """
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: cached}
spec:
  steps:
    - name: a
      ref: {name: count}
      with: {n: "{{ inputs.n }}", marker: MARKER}
      execution:
        cache: {mode: readWrite}
    - name: b
      ref: {name: count}
      with: {n: "{{ inputs.n }}", marker: MARKER2}
      execution:
        cache: {key: "{{ inputs.n }}", mode: readWrite, salt: v1}
"""
COUNT = """
def count(inputs, ctx):
    with open(inputs["marker"], "a") as fh:
        fh.write("run\\n")
    return {"n": inputs["n"], "big": "c" * 5000}
"""


def test_the_output_cache_serves_a_second_run_without_running_the_step(project: Project) -> None:
    setup(
        project,
        CACHED.replace("MARKER2", str(project.root / "runs-b")).replace(
            "MARKER", str(project.root / "runs-a")
        ),
    )
    project.write("big.py", BIG + COUNT)
    project.write("engrams.yaml", catalog(["make", "read", "items", "echo", "forge", "count"]))
    for name, n in (("c1", 1), ("c2", 1), ("c3", 2)):
        done = project.cli(
            "run", "-f", "engrams.yaml", "-f", "story.yaml", "--name", name, "-i", f"n={n}", "-o", "json"
        )
        assert json.loads(done.stdout)["status"]["phase"] == "Succeeded", done.stderr
    assert (project.root / "runs-a").read_text().count("run") == 2  # n=1 once, n=2 once
    assert (project.root / "runs-b").read_text().count("run") == 2
    first, _ = step_run(project, "c1-a")
    hit, _ = step_run(project, "c2-a")
    annotations = hit["metadata"]["annotations"]
    assert first["metadata"]["annotations"]["cache.bubustack.io/status"] == "stored"
    assert annotations["cache.bubustack.io/status"] == "hit"
    assert annotations["cache.bubustack.io/key"] == first["metadata"]["annotations"]["cache.bubustack.io/key"]
    key = annotations["cache.bubustack.io/key"]
    entry_dir = project.home / "storage" / "cache" / "default" / "count" / "latest"
    assert (entry_dir / f"{key}.json").exists()
    # the entry keeps its own copy of the offloaded value: the hit references it, not c1-a's blob
    copied = hit["status"]["output"]["big"]["$bubuStorageRef"]
    assert copied.startswith(f"cache/default/count/latest/{key}/")
    assert first["status"]["output"]["big"]["$bubuStorageRef"] == "outputs/default/c1-a/big.json"
    assert {k: v for k, v in hit["status"]["output"].items() if k != "big"} == {
        k: v for k, v in first["status"]["output"].items() if k != "big"
    }
    # so the producing run's blobs may go (child TTL, retention) and later hits still work
    shutil.rmtree(project.home / "storage" / "outputs" / "default" / "c1-a")
    done = project.cli(
        "run", "-f", "engrams.yaml", "-f", "story.yaml", "--name", "c4", "-i", "n=1", "-o", "json"
    )
    assert json.loads(done.stdout)["status"]["phase"] == "Succeeded", done.stderr
    again, _ = step_run(project, "c4-a")
    assert again["metadata"]["annotations"]["cache.bubustack.io/status"] == "hit"
    assert json.loads((project.home / "storage" / copied).read_text())["data"] == "c" * 5000


def test_a_post_execution_condition_over_the_offloaded_output(project: Project) -> None:
    setup(
        project,
        """
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata: {name: post}
spec:
  steps:
    - name: a
      ref: {name: make}
      with: {n: 10000}
      postExecution: {condition: "{{ (steps.self.output.big | length) == 10000 }}"}
    - name: b
      ref: {name: make}
      with: {n: 10000}
      postExecution: {condition: "{{ (steps.self.output.big | length) == 3 }}", failureMessage: too short}
""",
    )
    assert run(project, "p")["status"]["phase"] == "Failed"
    a, _ = step_run(project, "p-a")
    assert a["status"]["phase"] == "Succeeded" and "$bubuStorageRef" in json.dumps(a["status"]["output"])
    b, _ = step_run(project, "p-b")
    assert b["status"]["phase"] == "Failed" and "too short" in json.dumps(b["status"])
