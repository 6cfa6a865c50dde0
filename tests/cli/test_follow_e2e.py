"""``get -w`` and ``logs -f`` end to end: each command its own process, a run driven by
``bobrapet run`` in another, the way a user types them in terminals (no engine in the
watching processes)."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from tests.cli.test_run_cli import GATED, HELLO, bobrapet, eventually, gate_waiting, start
from tests.conftest import REPO

pytestmark = pytest.mark.slow

FOLLOW = str(REPO / "tests" / "cli" / "follow.yaml")


class Stream:
    """A running ``bobrapet`` command whose stdout lines are collected as they come."""

    def __init__(self, home: Path, *args: str) -> None:
        self.process = start(home, *args)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(pipe: IO[str] | None, into: list[str]) -> None:
        assert pipe is not None
        for line in pipe:
            into.append(line.rstrip("\n"))

    def until(self, check: Callable[[list[str]], bool], timeout: float = 60) -> None:
        try:
            eventually(lambda: check(list(self.lines)), timeout)
        except AssertionError:
            self.process.kill()
            raise AssertionError(
                f"not seen; output so far: {self.lines}; stderr: {self.finish()[1]}"
            ) from None

    def seen(self, text: str, timeout: float = 60) -> None:
        self.until(lambda lines: any(text in line for line in lines), timeout)

    def interrupt(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        return self.finish()

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Exit code and stderr once the process ended by itself."""
        try:
            self.process.wait(timeout=timeout)
        finally:
            self.process.kill()
        for reader in self._readers:
            reader.join(timeout)
        return self.process.returncode, "\n".join(self.errors)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def test_get_watch_streams_a_run_driven_by_another_process(tmp_path: Path) -> None:
    home = tmp_path / "home"  # does not exist yet: the watches wait for it
    table = Stream(home, "get", "storyruns", "-w", "--output-watch-events")
    as_json = Stream(home, "get", "storyruns", "-w", "-o", "json")
    runner = start(home, "run", GATED, "--name", "rel", "-i", "ready=true")
    try:
        table.seen("rel")
        as_json.seen('"rel"')
        eventually(gate_waiting(home, "rel"))
        approved = bobrapet(home, "approve", "rel", "approve")
        assert approved.returncode == 0, approved.stderr
        table.until(lambda lines: any("Succeeded" in line for line in lines))
        as_json.until(lambda lines: '"Succeeded"' in lines[-1])
        assert runner.wait(timeout=60) == 0
    finally:
        runner.kill()
    for stream in (table, as_json):
        code, err = stream.interrupt()
        assert code == 0 and "Traceback" not in err, err
    rows = [line.split() for line in table.lines]
    assert rows[0][:4] == ["EVENT", "NAME", "STORY", "PHASE"]
    assert all(row[1] == "rel" for row in rows[1:])  # the header is never repeated
    assert rows[1][0] == "ADDED" and {row[0] for row in rows[2:]} == {"MODIFIED"}
    assert rows[-1][3] == "Succeeded" and any(row[3] == "Running" for row in rows[1:])
    objects = [json.loads(line) for line in as_json.lines]  # one object per line
    assert {o["metadata"]["name"] for o in objects} == {"rel"}
    assert objects[-1]["status"]["phase"] == "Succeeded"


def test_get_watch_only_prints_changes_not_the_list(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = tmp_path / "cm.yaml"

    def apply(value: int) -> None:
        config.write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm}}\ndata: {{v: '{value}'}}\n"
        )
        assert bobrapet(home, "apply", "-f", str(config)).returncode == 0

    apply(0)
    watch = Stream(home, "get", "configmaps", "--watch-only", "-o", "name", "--output-watch-events")
    value = 1

    def changed(lines: list[str]) -> bool:  # the watch starts while we change the object
        nonlocal value
        if not lines:
            apply(value)
            value += 1
        return bool(lines)

    watch.until(changed)
    code, err = watch.interrupt()
    assert code == 0 and "Traceback" not in err, err
    assert set(watch.lines) == {"MODIFIED configmap/cm"}


def test_logs_follow_prints_steps_as_they_run_and_ends_with_the_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    release, once = tmp_path / "release", tmp_path / "once"
    runner = start(home, "run", FOLLOW, "--name", "fo", "-i", f"release={release}", "-i", f"once={once}")
    try:
        eventually(lambda: bobrapet(home, "get", "storyrun", "fo").returncode == 0)
        everything = Stream(home, "logs", "fo", "-f")
        second = Stream(home, "logs", "fo", "second", "--follow")  # a step that has not started
        first = Stream(home, "logs", "fo", "first", "-f")
        for stream in (everything, first):
            stream.seen("first: line 3")
        code, err = first.interrupt()  # Ctrl-C while the step runs
        assert code == 0 and "Traceback" not in err, err
        assert first.lines == [
            "=== attempt 1" + first.lines[0].removeprefix("=== attempt 1"),
            *(f"first: line {i}" for i in (1, 2, 3)),
        ]
        assert not second.lines  # nothing of `second` yet, and no error: it waits
        release.write_text("")
        eventually(gate_waiting(home, "fo"))
        approved = bobrapet(home, "approve", "fo", "approve")
        assert approved.returncode == 0, approved.stderr
        for stream in (everything, second):  # both end by themselves with the run
            code, err = stream.finish()
            assert code == 0 and "Traceback" not in err, err
        assert runner.wait(timeout=60) == 0
    finally:
        runner.kill()
    text = everything.text
    order = [
        "== step first (fo-first) ==",
        "first: line 1",
        "first: line 3",
        "first: released",
        "first: done",
        "== step second (fo-second) ==",
        "=== attempt 1",
        "second: line 1",
        "second: failing this attempt",
        "RuntimeError: first attempt fails",
        "=== attempt 2",
        "second: line 2",
        "second: done",
    ]
    position = 0
    for part in order:  # each after the one before
        assert part in text[position:], (part, text)
        position = text.index(part, position)
    assert text.count("first: line 1") == 1 and text.count("second: done") == 1
    assert second.lines[0].startswith("=== attempt 1") and "== step" not in second.text
    assert "first:" not in second.text and "=== attempt 2" in second.text
    assert second.lines[-1] == "second: done"


def test_logs_follow_of_a_finished_run_prints_and_exits(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = bobrapet(home, "run", *HELLO, "--name", "hi")
    assert done.returncode == 0, done.stderr
    followed = bobrapet(home, "logs", "hi", "-f")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.startswith("== step say-hello (hi-say-hello) ==\n=== attempt 1")
    unknown = bobrapet(home, "logs", "hi", "nope", "-f")
    assert unknown.returncode == 1 and "run hi has no step 'nope'" in unknown.stderr
    missing = bobrapet(home, "logs", "nothing", "-f")
    assert missing.returncode == 1 and 'storyrun "nothing" not found' in missing.stderr
