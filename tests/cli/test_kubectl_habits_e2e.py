"""kubectl/argo habits end to end (real engine, one process per command, from the repo root):
positional manifests, many runs from one inputs file, ``wait RUN`` leaving other runs alone,
``wait --all``, ``redrive`` driving to the end, step logs with attempt sections, the inputs a
step received in ``describe steprun``, and deleting a run deleting its logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.test_run_cli import HELLO, bobrapet, get_run
from tests.conftest import REPO

pytestmark = pytest.mark.slow

FLAKY = str(REPO / "tests" / "cli" / "flaky.yaml")


def test_run_takes_manifests_as_arguments_mixed_with_f(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = bobrapet(home, "run", HELLO[0], "-f", HELLO[1], "-i", "name=Ada")
    assert done.returncode == 0, done.stderr
    assert "Succeeded" in done.stdout and "Hello, Ada!" in done.stdout


def test_inputs_file_starts_one_run_per_entry(tmp_path: Path) -> None:
    home = tmp_path / "home"
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"fail": false}\n{"fail": true}\n{"fail": false}\n')
    done = bobrapet(home, "run", FLAKY, "--inputs-file", str(lines))
    assert done.returncode == 1, done.stderr  # one of the three failed
    results = done.stdout.splitlines()
    assert len(results) == 3
    assert sum("Succeeded" in r for r in results) == 2 and sum(" Failed" in r for r in results) == 1
    assert "[3/3]" in done.stderr and "3 run(s): 1 Failed, 2 Succeeded" in done.stderr
    good = tmp_path / "good.yaml"
    good.write_text("- {fail: false}\n- {fail: false}\n")
    as_json = bobrapet(home, "run", "--story", "flaky", "--inputs-file", str(good), "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    items = json.loads(as_json.stdout)["items"]
    assert [i["status"]["phase"] for i in items] == ["Succeeded", "Succeeded"]


def test_wait_run_leaves_other_runs_alone_and_wait_all_drives_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = bobrapet(home, "run", *HELLO, "--no-wait", "--name", "first")
    second = bobrapet(home, "run", "--story", "hello", "--no-wait", "--name", "second")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    waited = bobrapet(home, "wait", "first")
    assert waited.returncode == 0, waited.stderr
    assert "not driven by this command: default/second" in waited.stderr and "wait --all" in waited.stderr
    untouched = get_run(home, "second")
    assert untouched["status"]["phase"] == "Pending" and "startedAt" not in untouched["status"]
    steps = bobrapet(home, "get", "stepruns", "-l", "bubustack.io/storyrun=second", "-o", "name")
    assert steps.stdout == ""  # nothing of it was started
    everything = bobrapet(home, "wait", "--all")
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout.startswith("storyrun/second Succeeded")
    assert get_run(home, "second")["status"]["phase"] == "Succeeded"
    again = bobrapet(home, "wait", "--all")
    assert again.returncode == 0 and "no unfinished runs" in again.stderr


def test_redrive_drives_the_run_and_logs_mark_each_attempt(tmp_path: Path) -> None:
    home = tmp_path / "home"
    marker = tmp_path / "fail-while-this-exists"
    marker.write_text("")
    big = "x" * 600
    failed = bobrapet(
        home,
        "run",
        FLAKY,
        "--name",
        "fl",
        "-i",
        f"marker={marker}",
        "-i",
        "token=s3cr3t-value",
        "-i",
        f"blob={big}",
    )
    assert failed.returncode == 1, failed.stderr
    described = bobrapet(home, "describe", "steprun", "fl-try")
    assert described.returncode == 0, described.stderr
    inputs = described.stdout.split("Inputs:", 1)[1]
    assert "attempt 1" in inputs and "token: <redacted>" in inputs and "(600 chars)" in inputs
    assert "s3cr3t-value" not in described.stdout
    assert not any("s3cr3t-value" in p.read_text() for p in (home / "logs").rglob("*") if p.is_file())

    marker.unlink()
    redriven = bobrapet(home, "redrive", "fl")
    assert redriven.returncode == 0, redriven.stderr
    assert redriven.stdout.startswith("storyrun/fl Succeeded") and "redrive requested" in redriven.stderr
    log = bobrapet(home, "logs", "fl", "try").stdout
    sections = [line for line in log.splitlines() if line.startswith("=== attempt ")]
    assert len(sections) == 2, log  # the first run, then the redrive
    assert log.index("asked to fail") < log.index(sections[1])

    requested = bobrapet(home, "redrive", "fl", "--no-wait")
    assert requested.returncode == 0 and "redrive requested" in requested.stdout
    assert get_run(home, "fl")["status"]["phase"] == "Succeeded"  # nothing drove it yet
    assert bobrapet(home, "wait", "fl").returncode == 0

    log_files = list((home / "logs").rglob("fl-*"))
    assert log_files and list((home / "logs").rglob("fl.inputs.jsonl"))  # step logs, inputs log
    deleted = bobrapet(home, "delete", "storyrun/fl")
    assert deleted.returncode == 0, deleted.stderr
    assert not list((home / "logs").rglob("fl-*")) and not list((home / "logs").rglob("fl.*"))
