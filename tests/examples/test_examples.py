"""Every example of ``examples/`` runs end to end through the real ``bobrapet`` command.

Each test runs ``bobrapet --home <tmp> run -f examples/catalog.yaml -f examples/<x>.yaml -o json``
as a subprocess from the repository root (the engine imports ``examples.engrams`` from the
current directory) and checks the final StoryRun printed on stdout: exit code, phase,
``status.output`` and the phase of every step. The gate example is driven from a second
process, as a user would: ``bobrapet approve`` / ``bobrapet reject`` while ``run`` waits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

# Every test here starts real processes (about 1 s each): the file is slow as a whole.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BOBRAPET = Path(sys.executable).parent / "bobrapet"
CATALOG = "examples/catalog.yaml"
TIMEOUT = 120.0


def bobrapet(home: Path, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run the CLI against ``home`` from the repository root."""
    return subprocess.run(
        [str(BOBRAPET), "--home", str(home), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def files(*examples: str) -> list[str]:
    """``-f`` arguments for the catalog plus ``examples/<name>.yaml`` of each example."""
    args = ["-f", CATALOG]
    for name in examples:
        args += ["-f", f"examples/{name}.yaml"]
    return args


def run_example(home: Path, *examples: str, args: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
    """``bobrapet run ... -o json``: the exit code and the final StoryRun."""
    done = bobrapet(home, "run", *files(*examples), "-o", "json", *args)
    assert done.returncode in (0, 1), (
        f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    try:
        run = json.loads(done.stdout)
    except ValueError as exc:
        raise AssertionError(f"stdout is not one JSON object: {done.stdout!r}\n{done.stderr}") from exc
    assert run["kind"] == "StoryRun", run
    return done.returncode, run


def phases(run: dict[str, Any]) -> dict[str, str | None]:
    """Step name -> phase from ``status.stepStates``."""
    states = (run.get("status") or {}).get("stepStates") or {}  # none before the engine writes it
    return {name: state.get("phase") for name, state in states.items()}


def get_run(home: Path, name: str) -> dict[str, Any] | None:
    """The stored StoryRun ``name``, or None while it does not exist yet."""
    done = bobrapet(home, "get", "storyrun", name, "-o", "json", timeout=30)
    return json.loads(done.stdout) if done.returncode == 0 else None


# --------------------------------------------------------------------------- hello


@pytest.mark.parametrize(("inputs", "greeting"), [((), "Hello, world!"), (("-i", "name=Ada"), "Hello, Ada!")])
def test_hello(tmp_path: Path, inputs: tuple[str, ...], greeting: str) -> None:
    code, run = run_example(tmp_path / "home", "hello", args=inputs)
    assert code == 0, run["status"]
    assert run["status"]["phase"] == "Succeeded"
    assert run["status"]["output"] == {"greeting": greeting}
    assert phases(run) == {"say-hello": "Succeeded"}


# --------------------------------------------------------------------------- fan-out / fan-in


@pytest.mark.parametrize(("inputs", "total"), [((), 14), (("-i", "a=10"), 113)])
def test_fan_out_fan_in(tmp_path: Path, inputs: tuple[str, ...], total: int) -> None:
    code, run = run_example(tmp_path / "home", "fan-out-fan-in", args=inputs)
    assert code == 0, run["status"]
    assert run["status"]["phase"] == "Succeeded"
    assert run["status"]["output"] == {"total": total, "count": 3}
    assert phases(run) == dict.fromkeys(["square-a", "square-b", "square-c", "join"], "Succeeded")


# --------------------------------------------------------------------------- compensations / finally


def test_compensations_are_skipped_and_finally_runs_when_the_story_succeeds(tmp_path: Path) -> None:
    code, run = run_example(tmp_path / "home", "compensations-and-finally")
    assert code == 0, run["status"]
    assert run["status"]["phase"] == "Succeeded"
    assert run["status"]["output"] == {"item": "book", "charged": 12}
    assert phases(run) == {
        "reserve": "Succeeded",
        "charge": "Succeeded",
        "release": "Skipped",
        "notify": "Succeeded",
    }


def test_a_failed_step_runs_the_compensations_then_finally(tmp_path: Path) -> None:
    code, run = run_example(tmp_path / "home", "compensations-and-finally", args=("-i", "fail=true"))
    assert code == 1
    status = run["status"]
    assert status["phase"] == "Compensated", status
    assert phases(run) == {
        "reserve": "Succeeded",
        "charge": "Failed",
        "release": "Succeeded",
        "notify": "Succeeded",
    }
    assert "card declined" in json.dumps(status["stepStates"]["charge"]) + json.dumps(status.get("error"))


# --------------------------------------------------------------------------- executeStory


def test_execute_story_runs_the_child_and_uses_its_output(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, run = run_example(home, "hello", "sub-story", args=("--story", "parent", "-i", "who=Grace"))
    assert code == 0, run["status"]
    assert run["status"]["phase"] == "Succeeded"
    assert run["status"]["output"] == {"greeting": "Hello, Grace!"}
    assert phases(run) == {"child": "Succeeded", "after": "Succeeded"}
    child_name = run["status"]["stepStates"]["child"]["subStoryRunName"]
    child = get_run(home, child_name)
    assert child is not None
    assert child["spec"]["storyRef"]["name"] == "hello"
    assert child["spec"]["inputs"] == {"name": "Grace"}
    assert child["status"]["phase"] == "Succeeded"
    assert child["status"]["output"] == {"greeting": "Hello, Grace!"}


# --------------------------------------------------------------------------- gate + wait


GATED_ARGS = ("-i", "ready=true", "-o", "json")


def start_gated_run(home: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BOBRAPET), "--home", str(home), "run", *files("gated-workflow"), *GATED_ARGS, "--name", name],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_gate_paused(home: Path, name: str, proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Poll the store until the ``approve`` gate step is Paused (the run waits for a decision)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run ended before the gate paused (exit {proc.returncode}):\n{out}\n{err}")
        run = get_run(home, name)
        if run is not None and phases(run).get("approve") == "Paused":
            return run
        time.sleep(0.2)
    raise AssertionError(f"gate step of {name} never became Paused: {get_run(home, name)}")


def finish(proc: subprocess.Popen[str]) -> tuple[int, dict[str, Any]]:
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode in (0, 1), f"exit {proc.returncode}\n{out}\n{err}"
    return proc.returncode, json.loads(out)


def test_gate_approved_from_another_process_then_wait_succeeds(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = start_gated_run(home, "release-1")
    try:
        paused = wait_until_gate_paused(home, "release-1", proc)
        assert paused["status"]["phase"] not in ("Succeeded", "Failed")
        assert "wait-ready" not in phases(paused) or phases(paused)["wait-ready"] is None
        approved = bobrapet(home, "approve", "release-1", "approve", "-m", "ship it")
        assert approved.returncode == 0, approved.stderr
        code, run = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, run["status"]
    assert run["status"]["phase"] == "Succeeded"
    assert phases(run) == {"approve": "Succeeded", "wait-ready": "Succeeded"}
    gate = run["status"]["gates"]["approve"]
    assert gate["state"] == "Approved"
    assert gate.get("message") == "ship it"


def test_gate_rejected_fails_the_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = start_gated_run(home, "release-2")
    try:
        wait_until_gate_paused(home, "release-2", proc)
        rejected = bobrapet(home, "reject", "release-2", "approve", "-m", "not today")
        assert rejected.returncode == 0, rejected.stderr
        code, run = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 1
    assert run["status"]["phase"] == "Failed", run["status"]
    assert phases(run) == {"approve": "Failed", "wait-ready": "Skipped"}
    assert run["status"]["gates"]["approve"]["state"] == "Rejected"


def test_gated_workflow_without_the_ready_input_is_rejected_at_once(tmp_path: Path) -> None:
    done = bobrapet(tmp_path / "home", "run", *files("gated-workflow"), "-o", "json")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ready" in done.stderr
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- validity (no engine needed)

EXAMPLE_SETS = [
    ("hello",),
    ("fan-out-fan-in",),
    ("gated-workflow",),
    ("compensations-and-finally",),
    ("hello", "sub-story"),
    ("secrets",),
]
#: Examples that need the built-in catalog and a running serve (tested on their own below).
SERVE_EXAMPLES = ("webhook",)


@pytest.mark.parametrize("examples", EXAMPLE_SETS, ids=lambda names: names[-1])
def test_example_files_are_valid_on_their_own_with_the_catalog(
    tmp_path: Path, examples: tuple[str, ...]
) -> None:
    done = bobrapet(tmp_path / "home", "validate", *files(*examples))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stderr, done.stderr


def test_the_webhook_example_starts_one_run_per_name_under_serve(tmp_path: Path) -> None:
    """The README's service-mode walk-through: catalog install, apply, POST twice, one run."""
    from tests.server.serving import start_serve

    home = tmp_path / "home"
    assert bobrapet(home, "catalog", "install").returncode == 0
    applied = bobrapet(home, "apply", *files("hello", "webhook"))
    assert applied.returncode == 0, applied.stderr
    serve = start_serve(home)
    try:
        replies = [serve.request("POST", "/impulses/default/greet", {"who": "Ada"}) for _ in range(2)]
        assert [r.status for r in replies] == [202, 202], [r.body for r in replies]
        run = replies[0].body["storyRun"]
        assert replies[1].body["storyRun"] == run
        waited = bobrapet(home, "wait", run, "-o", "json")
        assert waited.returncode == 0, waited.stderr
        assert json.loads(waited.stdout)["status"]["output"] == {"greeting": "Hello, Ada!"}
        listed = json.loads(bobrapet(home, "get", "storyruns", "-o", "json").stdout)
        assert [i["metadata"]["name"] for i in listed["items"]] == [run]
    finally:
        assert serve.stop() == 0


def test_every_example_file_is_covered() -> None:
    covered = {name for names in EXAMPLE_SETS for name in names} | set(SERVE_EXAMPLES)
    on_disk = {p.stem for p in (REPO / "examples").glob("*.yaml")} - {"catalog"}
    assert on_disk == covered


# --------------------------------------------------------------------------- secrets


def test_secrets_reach_the_engram_and_stay_out_of_the_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, run = run_example(home, "secrets", args=("-i", "message=hi"))
    assert code == 0, run["status"]
    expected = hmac.new(b"demo-signing-key", b"hi", hashlib.sha256).hexdigest()
    assert run["status"]["output"] == {"signature": expected}
    assert "demo-signing-key" not in json.dumps(run)
