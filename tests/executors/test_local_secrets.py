"""Secrets delivered by the local executor: env, private files, ctx.secrets, redaction."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from bobrapet.execution.secrets import SecretFiles, StepSecrets
from bobrapet.executors.local import LocalExecutor

E = "engrams.secretive"
TOKEN = "tok-0123456789"

SECRETS = StepSecrets(
    values={"api": {"token": TOKEN, "user": "alice"}},
    env={"API_token": TOKEN, "API_user": "alice", "BUBU_SECRET_api": "env:API_", "BUBU_SECRET_api_NAME": "c"},
    files=(SecretFiles("cert", "etc/bubu/secrets/cert", {"tls.key": "KEY-DATA"}, descriptor=True),),
)


async def test_python_engram_gets_env_files_and_ctx(executor: LocalExecutor, make_request) -> None:
    result = await executor.run(make_request("s1", f"{E}:report", secrets=SECRETS, debug=True))
    assert result.phase == "Succeeded", result.message
    out = result.output
    root = out["root"]
    assert out["ctx"] == {"api": {"token": TOKEN, "user": "alice"}}
    assert out["env"]["API_token"] == TOKEN and out["env"]["BUBU_SECRET_api"] == "env:API_"
    assert out["env"]["BUBU_SECRET_cert"] == f"file:{root}/etc/bubu/secrets/cert"
    assert out["files"] == {"etc/bubu/secrets/cert/tls.key": ["KEY-DATA", "0o600"], "<root mode>": "0o700"}
    assert not os.path.exists(root)  # removed after the attempt


async def test_secret_env_does_not_outlive_the_step(executor: LocalExecutor, make_request) -> None:
    await executor.run(make_request("s1", f"{E}:report", secrets=SECRETS))
    result = await executor.run(make_request("s2", f"{E}:report"))
    assert result.output["env"] == {} and result.output["ctx"] == {} and result.output["root"] is None


async def test_command_engram_gets_env_and_files(executor: LocalExecutor, make_request) -> None:
    script = (
        "import json, os;"
        "root = os.environ['BUBU_SECRETS_DIR'];"
        "key = open(os.path.join(root, 'etc/bubu/secrets/cert/tls.key')).read();"
        "out = {'token': os.environ['API_token'], 'key': key, 'root': root,"
        " 'cert': os.environ['BUBU_SECRET_cert']};"
        "open(os.environ['BUBU_OUTPUT_PATH'], 'w').write(json.dumps(out))"
    )
    result = await executor.run(make_request("c1", command=[sys.executable, "-c", script], secrets=SECRETS))
    assert result.phase == "Succeeded", result.message
    assert result.output["token"] == TOKEN and result.output["key"] == "KEY-DATA"
    assert result.output["cert"] == f"file:{result.output['root']}/etc/bubu/secrets/cert"
    assert not os.path.exists(result.output["root"])


async def test_failure_message_traceback_and_debug_preview_are_redacted(
    executor: LocalExecutor, make_request, tmp_path: Path
) -> None:
    request = make_request("s3", f"{E}:leak", secrets=SECRETS, debug=True, inputs={"echo": TOKEN})
    result = await executor.run(request)
    assert result.phase == "Failed"
    assert TOKEN not in json.dumps([result.message, result.error])
    assert "auth failed with token [REDACTED]" in (result.message or "")
    log = request.log_path.read_text()
    assert "auth failed with token [REDACTED]" in log and 'inputs: {"echo":"[REDACTED]"}' in log
    assert TOKEN not in log


async def test_command_failure_removes_files(executor: LocalExecutor, make_request, tmp_path: Path) -> None:
    script = (
        "import os; open(os.environ['MARK'], 'w').write(os.environ['BUBU_SECRETS_DIR']); raise SystemExit(3)"
    )
    mark = tmp_path / "mark"
    request = make_request(
        "c2", command=[sys.executable, "-c", script], secrets=SECRETS, env={"MARK": str(mark)}
    )
    result = await executor.run(request)
    assert result.phase == "Failed" and result.exit_code == 3
    assert not os.path.exists(mark.read_text())


def test_sweep_removes_directories_of_dead_engines_only() -> None:
    import subprocess
    import tempfile

    from bobrapet.executors.local import secrets as mounts

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    base = mounts._base_dir() or tempfile.gettempdir()
    stale = Path(tempfile.mkdtemp(prefix=f"bobrapet-secrets-{dead.pid}-", dir=base))
    live = Path(tempfile.mkdtemp(prefix=f"bobrapet-secrets-{os.getpid()}-", dir=base))
    (stale / "token").write_text("x")
    try:
        mounts.sweep_stale()
        assert not stale.exists() and live.exists()
    finally:
        live.rmdir()
