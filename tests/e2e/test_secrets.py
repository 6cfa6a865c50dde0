"""Secrets reach engrams through the CLI (reference §8.3): env, file, both, ctx.secrets,
command engrams, step-level bindings, a missing Secret failing before any code runs, and no
secret value anywhere in run status, logs or CLI output."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import Project

pytestmark = pytest.mark.slow

TOKEN = "tok-Zq81x-not-for-logs"
USER = "alice-the-user"
DB_PASSWORD = "db-Pw-77-secret"
STEP_TOKEN = "step-level-tok-4242"

ENGRAMS = '''
"""Engrams that use their secrets."""
import hashlib, json, os

def _files():
    root = os.environ.get("BUBU_SECRETS_DIR")
    found = {}
    if root:
        for directory, _, names in os.walk(root):
            for name in names:
                path = os.path.join(directory, name)
                found[os.path.relpath(path, root)] = open(path).read()
    return root, found

def report(inputs, ctx):
    if "marker" in inputs:
        open(inputs["marker"], "w").close()
    root, files = _files()
    env = {k: v for k, v in os.environ.items() if k.startswith(("API_", "BOTH_", "api_", "BUBU_SECRET_"))}
    return {"env": env, "files": files, "ctx": ctx.secrets, "root": root}

def careful(inputs, ctx):
    """Uses the secret without returning it; the debug log previews its inputs and output."""
    root, files = _files()
    token = ctx.secrets["api"]["token"]
    ctx.logger.debug("calling the API as %s", ctx.secrets["api"]["user"][:3])
    ok = token == os.environ["API_token"] and files == {"etc/db/password": ctx.secrets["db"]["password"]}
    ok = ok and hashlib.sha256(token.encode()).hexdigest() == inputs["digest"]
    return {"ok": ok, "echo": inputs}

def blurt(inputs, ctx):
    raise PermissionError("the API refused token " + ctx.secrets["api"]["token"])
'''

CMD = """
import hashlib, json, os
inputs = json.loads(os.environ["BUBU_TRIGGER_DATA"])
root = os.environ["BUBU_SECRETS_DIR"]
password = open(os.path.join(root, "etc/db/password")).read()
token = os.environ["API_token"]
out = {"token_ok": hashlib.sha256(token.encode()).hexdigest() == inputs["digest"],
       "password_len": len(password), "descriptor": os.environ["BUBU_SECRET_db"],
       "root": root, "name": os.environ["BUBU_SECRET_db_NAME"]}
with open(os.environ["BUBU_OUTPUT_PATH"], "w") as fh:
    json.dump(out, fh)
"""


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def catalog() -> str:
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: api-creds}}
stringData: {{token: "{TOKEN}", user: "{USER}"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: db-creds}}
data: {{password: "{_b64(DB_PASSWORD)}"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: step-creds}}
stringData: {{token: "{STEP_TOKEN}", user: "step-user"}}
---
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {{name: env-tpl}}
spec:
  version: "1"
  supportedModes: [job]
  entrypoint: secretive:report
  secretSchema:
    api: {{mountType: env, envPrefix: API_, expectedKeys: [token, user], required: true}}
---
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {{name: file-tpl}}
spec:
  version: "1"
  supportedModes: [job]
  entrypoint: secretive:report
  secretSchema:
    db: {{mountType: file, mountPath: /etc/db}}
---
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {{name: both-tpl}}
spec:
  version: "1"
  supportedModes: [job]
  entrypoint: secretive:report
  secretSchema:
    api: {{mountType: both}}
---
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {{name: careful-tpl}}
spec:
  version: "1"
  supportedModes: [job]
  entrypoint: secretive:careful
  secretSchema:
    api: {{mountType: env, envPrefix: API_, expectedKeys: [token, user]}}
    db: {{mountType: file, mountPath: /etc/db}}
---
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {{name: blurt-tpl}}
spec:
  version: "1"
  supportedModes: [job]
  entrypoint: secretive:blurt
  secretSchema:
    api: {{}}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {{name: blurt-e}}
spec: {{templateRef: {{name: blurt-tpl}}, secrets: {{api: api-creds}}}}
---
apiVersion: catalog.bubustack.io/v1alpha1
kind: EngramTemplate
metadata: {{name: cmd-tpl}}
spec:
  version: "1"
  supportedModes: [job]
  command: [python3, cmd.py]
  secretSchema:
    api: {{mountType: env, envPrefix: API_, expectedKeys: [token]}}
    db: {{mountType: file, mountPath: /etc/db}}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {{name: env-e}}
spec: {{templateRef: {{name: env-tpl}}, secrets: {{api: api-creds}}}}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {{name: file-e}}
spec: {{templateRef: {{name: file-tpl}}, secrets: {{db: db-creds}}}}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {{name: both-e}}
spec: {{templateRef: {{name: both-tpl}}, secrets: {{api: api-creds}}}}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {{name: careful-e}}
spec: {{templateRef: {{name: careful-tpl}}, secrets: {{api: api-creds, db: db-creds}}}}
---
apiVersion: bubustack.io/v1alpha1
kind: Engram
metadata: {{name: cmd-e}}
spec: {{templateRef: {{name: cmd-tpl}}, secrets: {{api: api-creds, db: db-creds}}}}
"""


def _setup(project: Project, story: str) -> None:
    project.write("secretive.py", ENGRAMS)
    project.write("cmd.py", CMD)
    (project.root / "secrets-catalog.yaml").write_text(catalog())
    project.write("story.yaml", story)


def _run(project: Project, name: str) -> tuple[int, dict[str, Any], str]:
    done = project.cli("run", "-f", "secrets-catalog.yaml", "-f", "story.yaml", "--name", name, "-o", "json")
    run = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, run, done.stdout + done.stderr


def _step(project: Project, name: str) -> dict[str, Any]:
    done = project.cli("get", "steprun", name, "-o", "json")
    assert done.returncode == 0, done.stderr
    step: dict[str, Any] = json.loads(done.stdout)
    return step


def test_env_file_both_and_step_level_secrets_reach_python_engrams(project: Project) -> None:
    _setup(
        project,
        """
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {name: deliver}
        spec:
          steps:
            - {name: env, ref: {name: env-e}}
            - {name: file, ref: {name: file-e}}
            - {name: both, ref: {name: both-e}}
            - {name: override, ref: {name: env-e}, secrets: {api: step-creds}}
        """,
    )
    code, run, output = _run(project, "d")
    assert code == 0, output
    assert run["status"]["phase"] == "Succeeded"
    env = _step(project, "d-env")["status"]["output"]
    assert env["ctx"] == {"api": {"token": TOKEN, "user": USER}}
    assert env["env"] == {
        "API_token": TOKEN,
        "API_user": USER,
        "BUBU_SECRET_api": "env:API_",
        "BUBU_SECRET_api_NAME": "api-creds",
    }
    assert env["files"] == {} and env["root"] is None

    file = _step(project, "d-file")["status"]["output"]
    assert file["ctx"] == {"db": {"password": DB_PASSWORD}}
    assert file["files"] == {"etc/db/password": DB_PASSWORD}
    assert file["env"]["BUBU_SECRET_db"] == f"file:{file['root']}/etc/db"
    assert not Path(file["root"]).exists()  # the private directory went away with the attempt

    both = _step(project, "d-both")["status"]["output"]
    assert both["env"]["api_token"] == TOKEN and both["env"]["api_user"] == USER  # default prefix
    assert both["env"]["BUBU_SECRET_api"] == "env:api_"
    assert both["files"] == {"etc/bubu/secrets/api/token": TOKEN, "etc/bubu/secrets/api/user": USER}
    assert both["ctx"] == {"api": {"token": TOKEN, "user": USER}}

    override = _step(project, "d-override")["status"]["output"]
    assert override["ctx"] == {"api": {"token": STEP_TOKEN, "user": "step-user"}}
    assert override["env"]["BUBU_SECRET_api_NAME"] == "step-creds"


def test_a_missing_secret_or_key_fails_the_step_before_its_code_runs(project: Project) -> None:
    marker = project.root / "ran"
    _setup(
        project,
        f"""
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: missing}}
        spec:
          policy: {{retries: {{continueOnStepFailure: true}}}}
          steps:
            - name: nosecret
              ref: {{name: env-e}}
              secrets: {{api: ghost}}
              with: {{marker: "{marker}"}}
            - name: nokey
              ref: {{name: env-e}}
              secrets: {{api: db-creds}}
              with: {{marker: "{marker}"}}
        """,
    )
    code, run, output = _run(project, "m")
    assert code != 0
    assert run["status"]["phase"] == "Failed", output
    first = _step(project, "m-nosecret")["status"]
    assert first["phase"] == "Failed"
    assert first["error"]["code"] == "ReferenceNotFound"
    assert "Secret 'default/ghost' bound to secret 'api' not found" in first["lastFailureMsg"]
    second = _step(project, "m-nokey")["status"]
    assert second["error"]["code"] == "InvalidConfiguration"
    assert "has no key 'token', 'user'" in second["lastFailureMsg"]
    assert not marker.exists()  # the engram never ran
    described = project.cli("describe", "steprun", "m-nosecret")
    assert "ReferenceNotFound" in described.stdout


def test_story_admission_rejects_an_undeclared_step_secret(project: Project) -> None:
    _setup(
        project,
        """
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {name: bad}
        spec:
          steps:
            - {name: a, ref: {name: env-e}, secrets: {nope: api-creds}}
        """,
    )
    done = project.cli("apply", "-f", "secrets-catalog.yaml", "-f", "story.yaml")
    assert done.returncode != 0
    assert "spec.steps[0].secrets.nope" in done.stderr
    assert "secret 'nope' is not declared by EngramTemplate 'env-tpl'" in done.stderr


def test_secret_values_never_leak_into_status_logs_or_cli_output(project: Project) -> None:
    _setup(
        project,
        """
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {name: quiet}
        spec:
          steps:
            - name: use
              ref: {name: careful-e}
              with: {digest: DIGEST}
              execution: {debug: true}
            - name: cmd
              ref: {name: cmd-e}
              with: {digest: DIGEST}
              execution: {debug: true}
            - name: blurt
              ref: {name: blurt-e}
              allowFailure: true
              execution: {debug: true, retry: {maxRetries: 0}}
        """.replace("DIGEST", hashlib.sha256(TOKEN.encode()).hexdigest()),
    )
    code, _, output = _run(project, "q")
    assert code == 0, output
    use = _step(project, "q-use")["status"]["output"]
    assert use["ok"] is True
    cmd = _step(project, "q-cmd")["status"]["output"]
    assert cmd["token_ok"] is True and cmd["password_len"] == len(DB_PASSWORD)
    assert cmd["descriptor"] == f"file:{cmd['root']}/etc/db" and cmd["name"] == "db-creds"
    assert not Path(cmd["root"]).exists()
    blurt = _step(project, "q-blurt")["status"]
    assert blurt["phase"] == "Failed"
    assert "PermissionError: the API refused token [REDACTED]" in blurt["lastFailureMsg"]
    log = project.cli("logs", "q", "use")
    assert "inputs: " in log.stdout + log.stderr  # the debug preview was written

    views = [output, log.stdout, log.stderr]
    for args in (
        ("get", "storyrun", "q", "-o", "json"),
        ("get", "steprun", "-o", "yaml"),
        ("describe", "storyrun", "q"),
        ("describe", "steprun", "q-use"),
        ("describe", "steprun", "q-cmd"),
        ("logs", "q", "cmd"),
        ("logs", "q", "blurt"),
    ):
        done = project.cli(*args)
        views += [done.stdout, done.stderr]
    secrets = (TOKEN, USER, DB_PASSWORD)
    for text in views:
        for value in secrets:
            assert value not in text
    # the whole home: state.db (the Secrets are stored base64), WAL, logs, leases
    for path in project.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for value in secrets:
                assert value.encode() not in data, f"{value!r} found in {path}"
