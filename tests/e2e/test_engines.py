"""Several engine processes on one home: each StepRun attempt runs exactly once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable

import pytest
from tests.e2e.conftest import Project

from bobrapet.store.sqlite.schema import current_rv

pytestmark = pytest.mark.slow


def _story(project: Project, name: str, steps: dict[str, str]) -> str:
    """A Story of independent recorder steps; ``steps`` maps a step name to extra ``with`` fields."""
    body = "".join(
        f"""
            - name: {step}
              ref: {{name: recorder}}
              with: {{record: "{project.record}", step: {step}{extra}}}"""
        for step, extra in steps.items()
    )
    project.write(
        f"{name}.yaml",
        f"""
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: {name}}}
        spec:
          steps:{body}
        """,
    )
    return f"{name}.yaml"


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _store_rv(project: Project) -> int:
    with sqlite3.connect(f"file:{project.home / 'state.db'}?mode=ro", uri=True, timeout=30) as conn:
        return current_rv(conn)


def _store_quiet(project: Project, quiet: float = 0.5) -> bool:
    """No store write for ``quiet`` seconds: no engine is inside a write transaction."""
    before = _store_rv(project)
    time.sleep(quiet)
    return _store_rv(project) == before


def _holders(project: Project) -> dict[str, int]:
    """StepRun name -> pid of the engine that claimed it (``status.podName`` is its lease id)."""
    with sqlite3.connect(f"file:{project.home / 'state.db'}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute("SELECT name, data FROM objects WHERE kind LIKE 'stepruns.%'").fetchall()
    holders = {}
    for name, data in rows:
        pod = str((json.loads(data).get("status") or {}).get("podName") or "")
        holders[name] = int(pod.rsplit("-", 2)[1])  # <host>-<pid>-<token>
    return holders


def _finished(project: Project, steps: list[str]) -> bool:
    return all(project.count(step, "finish") == 1 for step in steps)


def test_two_engines_share_the_work_and_each_executes_steps(project: Project) -> None:
    """Both engines drive the same home at once; each runs steps, no step runs twice.

    Engine claims are first come, first served, so which engine takes a step is normally a
    race. To make both take part whatever the machine's speed: the first engine runs the
    ``wide`` run alone (its ``hold`` step blocks until released); once the second engine is
    up and the store is quiet, the first is frozen (SIGSTOP: alive, its lease held, so none
    of its claims can be taken over) while a second run is created, which only the second
    engine (``wait --all``) can then execute. The first is resumed and finishes ``wide``.
    """
    release = project.root / "release"
    wide = [f"p{i}" for i in range(6)]
    more = [f"r{i}" for i in range(4)]
    files = [
        _story(project, "wide", {**{s: ", sleep: 0.1" for s in wide}, "hold": f', until: "{release}"'}),
        _story(project, "more", {s: ", sleep: 0.1" for s in more}),
    ]
    applied = project.cli("apply", "-f", "catalog.yaml", *[a for f in files for a in ("-f", f)])
    assert applied.returncode == 0, applied.stderr
    created = project.cli("run", "--story", "wide", "--name", "wide", "--no-wait")
    assert created.returncode == 0, created.stderr
    first = project.popen("wait", "wide", "-o", "json")
    second: subprocess.Popen[str] | None = None
    try:
        _wait_for(lambda: _finished(project, wide) and project.count("hold", "start") == 1, "wide's steps")
        second = project.popen("wait", "--all", "-o", "json")  # drives `more` when it appears
        leases = project.home / "engines"
        _wait_for(lambda: len(list(leases.glob("*.lock"))) == 2, "the second engine's lease")
        _wait_for(lambda: _store_quiet(project), "a quiet store")
        os.kill(first.pid, signal.SIGSTOP)
        try:
            queued = project.cli("run", "--story", "more", "--name", "more", "--no-wait")
            assert queued.returncode == 0, queued.stderr
            _wait_for(lambda: _finished(project, more), "the second engine to run `more`")
        finally:
            os.kill(first.pid, signal.SIGCONT)
        release.touch()
        out1, err1 = first.communicate(timeout=60)
        out2, err2 = second.communicate(timeout=60)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert json.loads(out1)["status"]["phase"] == "Succeeded"
    assert {r["metadata"]["name"]: r["status"]["phase"] for r in json.loads(out2)["items"]} == {
        "wide": "Succeeded",
        "more": "Succeeded",
    }
    done = project.cli("get", "storyrun", "more", "-o", "json")
    assert json.loads(done.stdout)["status"]["phase"] == "Succeeded", done.stdout
    events = project.events()
    for step in [*wide, "hold", *more]:
        assert project.count(step, "start") == 1, events
    # Who executed what, seen by the engram (its worker's parent) and by the StepRuns' claims.
    ran_on = {str(e["step"]): e["engine"] for e in events if e["event"] == "start"}
    assert {ran_on[s] for s in [*wide, "hold"]} == {first.pid}, ran_on
    assert {ran_on[s] for s in more} == {second.pid}, ran_on
    holders = _holders(project)
    assert len(holders) == len(wide) + 1 + len(more)
    assert set(holders.values()) == {first.pid, second.pid}, holders


def test_an_engine_says_which_other_runs_it_leaves_alone(project: Project) -> None:
    project.write(
        "story.yaml",
        f"""
        apiVersion: bubustack.io/v1alpha1
        kind: Story
        metadata: {{name: one}}
        spec:
          steps:
            - name: s
              ref: {{name: recorder}}
              with: {{record: "{project.record}", step: s}}
        """,
    )
    queued = project.cli("run", "-f", "catalog.yaml", "-f", "story.yaml", "--name", "first", "--no-wait")
    assert queued.returncode == 0, queued.stderr
    second = project.cli("run", "-f", "story.yaml", "--name", "second")
    assert second.returncode == 0, second.stderr
    assert (
        "1 other unfinished run(s) of this home are not driven by this command: default/first"
        in second.stderr
    )
    assert project.count("s", "start") == 1  # only the step of "second" ran
    assert project.cli("wait", "first").returncode == 0
    assert project.count("s", "start") == 2
