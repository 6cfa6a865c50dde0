"""The parts of ``get -w`` and ``logs -f``: reading a growing log, which watch events become
lines, and how they are printed."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from bobrapet.api.kinds import CONFIG_MAP, STORY_RUN
from bobrapet.cli.logtail import LogTail
from bobrapet.cli.watching import Selection, WatchPrinter, change_of, resync


def test_log_tail_returns_complete_lines_once(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    tail = LogTail(path)
    assert tail.read() == b""  # no file yet: nothing, no error, nothing created
    assert not path.exists()
    path.write_bytes(b"one\ntw")
    assert tail.read() == b"one\n"
    assert tail.read() == b""
    with path.open("ab") as f:
        f.write(b"o\nthree")
    assert tail.read() == b"two\n"
    assert tail.read(final=True) == b"three"
    assert tail.read(final=True) == b""


def test_log_tail_starts_over_when_the_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    path.write_bytes(b"a long first line\n")
    tail = LogTail(path)
    assert tail.read() == b"a long first line\n"
    path.write_bytes(b"new\n")
    assert tail.read() == b"new\n"


def test_log_tail_skip_to_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    path = tmp_path / "step.log"
    path.write_bytes(b"1\n2\n3\n4")
    tail = LogTail(path)
    assert tail.skip_to_tail(2) == b"2\n3\n"
    assert tail.read(final=True) == b"4"
    assert LogTail(path).skip_to_tail(0) == b""


def _cm(name: str, rv: int, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "resourceVersion": str(rv)}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def test_change_of_drops_what_was_shown_and_follows_the_selector() -> None:
    shown = {("default", "a"): _cm("a", 5)}
    assert change_of(shown, "MODIFIED", _cm("a", 5), True) is None  # the list held it
    assert change_of(shown, "MODIFIED", _cm("a", 6), True) == "MODIFIED"
    assert change_of(shown, "ADDED", _cm("b", 7), True) == "ADDED"
    assert change_of(shown, "MODIFIED", _cm("a", 8), False) == "DELETED"  # stopped matching
    assert change_of(shown, "MODIFIED", _cm("a", 9), True) == "ADDED"  # matches again
    assert change_of(shown, "ADDED", _cm("c", 10), False) is None  # never matched
    assert change_of(shown, "DELETED", _cm("c", 11), False) is None  # never shown
    assert change_of(shown, "DELETED", _cm("b", 12), True) == "DELETED"
    assert set(shown) == {("default", "a")}


def test_resync_prints_the_difference_after_lost_events() -> None:
    shown = {("default", "a"): _cm("a", 5), ("default", "b"): _cm("b", 6), ("default", "c"): _cm("c", 7)}
    changes = resync(shown, [_cm("a", 5), _cm("b", 9), _cm("d", 10)])
    assert [(t, o["metadata"]["name"]) for t, o in changes] == [
        ("MODIFIED", "b"),
        ("ADDED", "d"),
        ("DELETED", "c"),
    ]
    assert set(shown) == {("default", "a"), ("default", "b"), ("default", "d")}


def test_selection_matches_name_labels_and_fields() -> None:
    matches = Selection(CONFIG_MAP, "default", None, "app=x", "metadata.name!=b").matcher()
    assert matches(_cm("a", 1, app="x"))
    assert not matches(_cm("a", 1, app="y"))
    assert not matches(_cm("b", 1, app="x"))
    named = Selection(CONFIG_MAP, "default", "a").matcher()
    assert named(_cm("a", 1)) and not named(_cm("b", 1))


def _run(name: str, phase: str | None) -> dict[str, Any]:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StoryRun",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"storyRef": {"name": "hello"}},
        "status": {"phase": phase} if phase else {},
    }


def _printer(fmt: str, **options: Any) -> tuple[WatchPrinter, io.StringIO]:
    buffer = io.StringIO()
    return WatchPrinter(Console(file=buffer, width=200), STORY_RUN, fmt, **options), buffer


def test_table_rows_keep_the_header_columns_and_never_repeat_it() -> None:
    printer, out = _printer("table", events=True)
    printer.print([("ADDED", _run("first", "Running"))])
    printer.print([("MODIFIED", _run("first", "Succeeded")), ("ADDED", _run("a-much-longer-name", None))])
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["EVENT", "NAME", "STORY", "PHASE", "DURATION", "AGE"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["ADDED", "first", "hello", "Running"],
        ["MODIFIED", "first", "hello", "Succeeded"],
        ["ADDED", "a-much-longer-name", "hello", "Pending"],
    ]
    assert lines[1].index("hello") == lines[0].index("STORY")
    # a longer name widens the column from its batch on (as kubectl's watch rows do)
    assert lines[2].index("hello") == lines[3].index("hello") > lines[1].index("hello")


def test_no_headers_and_documents() -> None:
    printer, out = _printer("table", headers=False)
    printer.print([("ADDED", _run("r", "Running"))])
    assert out.getvalue().split()[:2] == ["r", "hello"]

    printer, out = _printer("json", events=True)
    printer.print([("ADDED", _run("r", None)), ("MODIFIED", _run("r", "Running"))])
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "r"),
        ("MODIFIED", "r"),
    ]

    printer, out = _printer("yaml")
    printer.print([("ADDED", _run("r", None)), ("MODIFIED", _run("s", "Running"))])
    docs = list(yaml.safe_load_all(out.getvalue()))
    assert [d["metadata"]["name"] for d in docs] == ["r", "s"] and out.getvalue().count("---\n") == 1

    printer, out = _printer("name", events=True)
    printer.print([("DELETED", _run("r", None))])
    assert out.getvalue() == "DELETED storyrun/r\n"

    printer, out = _printer("jsonpath={.metadata.name} ")
    printer.print([("ADDED", _run("r", None)), ("ADDED", _run("s", None))])
    assert out.getvalue() == "r s "
