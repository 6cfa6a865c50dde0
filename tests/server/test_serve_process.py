"""The ``bobrapet serve`` process: start-up checks, bearer tokens, graceful drain, and CLI commands
that use a running serve's engine instead of their own."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from tests.server.serving import BOBRAPET, REPO, Serve, manifest, start_serve

from bobrapet.host import serve_file

SLEEPER = """
import pathlib, time

def nap(inputs, ctx):
    pathlib.Path(inputs["started"]).write_text("started")
    time.sleep(float(inputs.get("seconds", 1)))
    return {"slept": inputs.get("seconds", 1)}
"""


def cli(home: Path, *args: str, cwd: Path = REPO, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BOBRAPET, "--home", str(home), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def wait_for(predicate: object, limit: float = 60.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


# ----------------------------------------------------------------------------- start-up


def test_a_non_loopback_address_needs_a_token(tmp_path: Path) -> None:
    result = cli(tmp_path / "home", "serve", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert "--token" in result.stderr and "0.0.0.0" in result.stderr
    assert not (tmp_path / "home" / "serve.json").exists()


def test_a_busy_port_is_a_usage_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(tmp_path / "home", "serve", "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_bad_grace_is_a_usage_error(tmp_path: Path) -> None:
    result = cli(tmp_path / "home", "serve", "--grace", "soon")
    assert result.returncode == 2 and "--grace" in result.stderr


def test_one_serve_per_home(serve: Serve) -> None:
    result = cli(serve.home, "serve", "--port", "0")
    assert result.returncode == 1
    assert "already runs on this home" in result.stderr and str(serve.process.pid) in result.stderr


def test_serve_file_names_the_address_and_no_token(serve: Serve) -> None:
    record = serve_file.live(serve.home)
    assert record is not None and record.pid == serve.process.pid and record.port == serve.port
    assert record.address == serve.url
    assert "token" not in (serve.home / "serve.json").read_text()


# ----------------------------------------------------------------------------- token


def test_bearer_token_on_every_endpoint_but_health(tmp_path: Path) -> None:
    guarded = start_serve(tmp_path / "home", token="s3cret-token")
    try:
        missing = guarded.request("GET", "/apis", token="")
        assert missing.status == 401
        assert missing.body["kind"] == "Status" and missing.body["reason"] == "Unauthorized"
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert guarded.request("GET", "/apis", token="wrong").status == 401
        assert guarded.request("GET", "/metrics", token="wrong").status == 401
        assert guarded.request("GET", "/openapi/v3", token="wrong").status == 401
        assert guarded.request("GET", "/apis").status == 200
        assert guarded.request("GET", "/healthz", token="").status == 200
        assert guarded.request("GET", "/readyz", token="").status == 200
    finally:
        assert guarded.stop() == 0


# ----------------------------------------------------------------------------- drain


@pytest.mark.slow
def test_sigterm_lets_a_running_step_finish_and_exits_0(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "sleeper.py").write_text(textwrap.dedent(SLEEPER))
    started = tmp_path / "started"
    running = start_serve(tmp_path / "home", "--grace", "30s", cwd=project)
    try:
        template = manifest(
            "EngramTemplate",
            "nap",
            None,
            spec={"version": "1", "supportedModes": ["job"], "entrypoint": "sleeper:nap"},
        )
        assert (
            running.request("POST", "/apis/catalog.bubustack.io/v1alpha1/engramtemplates", template).status
            == 201
        )
        engram = manifest("Engram", "nap", spec={"templateRef": {"name": "nap"}})
        assert (
            running.request("POST", "/apis/bubustack.io/v1alpha1/namespaces/default/engrams", engram).status
            == 201
        )
        steps = [{"name": "nap", "ref": {"name": "nap"}, "with": {"seconds": 1, "started": str(started)}}]
        story = manifest("Story", "napping", spec={"steps": steps})
        assert (
            running.request("POST", "/apis/bubustack.io/v1alpha1/namespaces/default/stories", story).status
            == 201
        )
        run = manifest("StoryRun", "nap-1", spec={"storyRef": {"name": "napping"}})
        created = running.request(
            "POST", "/apis/runs.bubustack.io/v1alpha1/namespaces/default/storyruns", run
        )
        assert created.status == 201, created.body
        assert wait_for(started.exists), running.output()
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=60) == 0
    finally:
        if running.process.poll() is None:
            running.stop(signal.SIGKILL)
    assert "stopped" in running.output()
    assert not (running.home / "serve.json").exists()
    step = json.loads(cli(running.home, "get", "steprun", "nap-1-nap", "-o", "json").stdout)
    assert step["status"]["phase"] == "Succeeded", step["status"]
    assert step["status"]["output"] == {"slept": 1}


# ----------------------------------------------------------------------------- CLI on a live serve


def test_run_on_a_live_serve_uses_the_serve_engine(serve: Serve) -> None:
    result = cli(serve.home, "run", "-f", "examples/catalog.yaml", "-f", "examples/hello.yaml", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert "following: bobrapet serve" in result.stderr
    final = json.loads(result.stdout)
    assert final["status"]["phase"] == "Succeeded"
    name = final["metadata"]["name"]
    step = json.loads(cli(serve.home, "get", "steprun", f"{name}-say-hello", "-o", "json").stdout)
    record = serve_file.read(serve.home)
    assert record is not None
    assert step["status"]["podName"] == record.lease  # executed by the serve's engine, not the CLI's
    waited = cli(serve.home, "wait", name)
    assert waited.returncode == 0 and f"storyrun/{name} Succeeded" in waited.stdout


def test_a_stale_serve_file_is_ignored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    stale = {
        "address": "http://127.0.0.1:9",
        "host": "127.0.0.1",
        "port": 9,
        "pid": 999999,
        "lease": "gone-1",
    }
    (home / "serve.json").write_text(json.dumps({**stale, "startedAt": ""}))
    assert serve_file.live(home) is None
    result = cli(home, "run", "-f", "examples/catalog.yaml", "-f", "examples/hello.yaml")
    assert result.returncode == 0, result.stderr
    assert "following" not in result.stderr and "Succeeded" in result.stdout


@pytest.mark.slow
def test_a_follower_drives_the_run_itself_when_the_serve_stops(tmp_path: Path) -> None:
    running = start_serve(tmp_path / "home")
    home = running.home
    command = [BOBRAPET, "--home", str(home), "run", "-f", "examples/catalog.yaml"]
    command += ["-f", "examples/gated-workflow.yaml", "--name", "handover", "-i", "ready=true"]
    follower = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:

        def paused() -> bool:
            got = running.request(
                "GET", "/apis/runs.bubustack.io/v1alpha1/namespaces/default/storyruns/handover"
            )
            return (
                got.status == 200
                and (got.body.get("status") or {}).get("stepStates", {}).get("approve", {}).get("phase")
                == "Paused"
            )

        assert wait_for(paused), running.output()
        assert running.stop() == 0
        approved = cli(home, "approve", "handover", "approve", "-m", "after the serve stopped")
        assert approved.returncode == 0, approved.stderr
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    assert "driving the run here" in err
    assert "storyrun/handover Succeeded" in out
