"""What a kubectl/argo user types, in-process and without an engine: get -o wide/jsonpath,
--no-headers, --sort-by, delete KIND/NAME | --all | -l, version, completion, inputs files
with many entries, the story label and the Pending phase of runs nobody started."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.cli.conftest import Cli
from tests.conftest import EXAMPLES, REPO

from bobrapet.api.kinds import STORY_RUN
from bobrapet.api.runmeta import PARENT_STORYRUN, STORY_NAME
from bobrapet.cli.inputs import InputsError, build_input_sets, load_input_sets
from bobrapet.cli.jsonpath import JsonPathError, evaluate, parse_template, render, sort_key_path
from bobrapet.cli.output import preview
from bobrapet.controllers import steplog
from bobrapet.controllers.scope import RunScope
from bobrapet.executors.logpath import append_inputs_record, inputs_log_path, open_attempt_log
from bobrapet.host.embedded import ControlPlane
from bobrapet.runtime.cache import ObjectCache
from bobrapet.store.client import WatchEvent

STORY = """\
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata:
  name: tiny
spec:
  inputsSchema:
    type: object
    properties:
      count: {type: integer}
  steps:
    - name: pause
      type: sleep
      with: {duration: 1s}
"""

LIST = {
    "kind": "List",
    "items": [
        {
            "metadata": {"name": "b", "labels": {"bubustack.io/story-name": "s"}},
            "status": {"phase": "Failed", "n": 2},
        },
        {"metadata": {"name": "a", "labels": {}}, "status": {"phase": "Succeeded", "n": 10}},
    ],
}


# --------------------------------------------------------------------------- jsonpath


def test_jsonpath_paths_and_ranges() -> None:
    assert render("{.items[*].metadata.name}", LIST) == "b a"
    assert render("{.items[0].status.phase}", LIST) == "Failed"
    assert render("{.items[-1].metadata.name}", LIST) == "a"
    assert render("{.items[0:1].metadata.name}", LIST) == "b"
    assert render("{.items[0].metadata.labels['bubustack.io/story-name']}", LIST) == "s"
    assert render("{.items[0].metadata.labels.bubustack\\.io/story-name}", LIST) == "s"
    assert render('{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}', LIST) == (
        "b\tFailed\na\tSucceeded\n"
    )
    assert render("{range .items[*]}[{@.metadata.name}={$.kind}]{end}", LIST) == "[b=List][a=List]"
    assert render("name: {.items[1].metadata.name}!", LIST) == "name: a!"
    assert render("{.items[0].status}", LIST) == '{"phase":"Failed","n":2}'
    assert render("{.missing.field}", LIST) == ""
    assert evaluate(".items[*].status.n", LIST) == [2, 10]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{.items[?(@.x)]}", "filters"),
        ("{..name}", "recursive descent"),
        ("{range .items[*]}{.a}", "without {end}"),
        ("{end}", "without {range"),
        ("{.items[*].metadata.name", "unclosed"),
        ("{len(.items)}", "unsupported expression"),
        ("{.items[x]}", "unsupported subscript"),
    ],
)
def test_jsonpath_outside_the_subset_is_rejected(template: str, message: str) -> None:
    with pytest.raises(JsonPathError, match=message):
        parse_template(template)


def test_sort_key_path() -> None:
    assert sort_key_path(".metadata.creationTimestamp") == ".metadata.creationTimestamp"
    assert sort_key_path("{.status.n}") == ".status.n"
    with pytest.raises(JsonPathError, match="expected a JSONPath"):
        sort_key_path("metadata.name")


# --------------------------------------------------------------------------- get


def seed(cli: Cli, *runs: str) -> None:
    assert cli("apply", "-f", "-", stdin=STORY).code == 0
    for name in runs:
        body = {
            "apiVersion": "runs.bubustack.io/v1alpha1",
            "kind": "StoryRun",
            "metadata": {"name": name},
            "spec": {"storyRef": {"name": "tiny"}},
        }
        assert cli("apply", "-f", "-", stdin=json.dumps(body)).code == 0


def test_get_jsonpath_no_headers_sort_by_and_wide(cli: Cli) -> None:
    seed(cli, "r-b", "r-a")
    names = cli("get", "storyruns", "-o", "jsonpath={.items[*].metadata.name}")
    assert names.code == 0 and names.out == "r-a r-b"  # the store lists by name; no newline added
    one = cli("get", "storyrun", "r-b", "-o", "jsonpath={.metadata.name} {.spec.storyRef.name}")
    assert one.out == "r-b tiny"
    ranged = cli("get", "srun", "-o", 'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}')
    assert ranged.out == "r-a\nr-b\n"
    bare = cli("get", "storyruns", "--no-headers")
    assert "NAME" not in bare.out and bare.out.splitlines()[0].startswith("r-a")
    newest_first = cli("get", "storyruns", "--no-headers", "--sort-by", "{.metadata.name}")
    assert [line.split()[0] for line in newest_first.out.splitlines()] == ["r-a", "r-b"]
    by_uid = cli("get", "storyruns", "-o", "name", "--sort-by", ".metadata.uid")
    uids = json.loads(cli("get", "storyruns", "-o", "json").out)["items"]
    expected = [f"storyrun/{i['metadata']['name']}" for i in sorted(uids, key=lambda i: i["metadata"]["uid"])]
    assert by_uid.out.split() == expected
    wide = cli("get", "storyruns", "-o", "wide")
    header = wide.out.splitlines()[0].split()
    assert (
        header[:4] == ["NAME", "STORY", "PHASE", "DURATION"] and "MESSAGE" in header and "STARTED" in header
    )
    stepruns_wide = cli("get", "stepruns", "-o", "wide")
    assert stepruns_wide.code == 0  # no StepRuns: "No resources found" on stderr


def test_get_bad_output_and_sort_by_are_usage_errors(cli: Cli) -> None:
    seed(cli)
    bad = cli("get", "stories", "-o", "jsonpath={.items[?(@.a)]}")
    assert bad.code == 2 and "-o jsonpath" in bad.err and "filters" in bad.err
    assert "needs a template" in cli("get", "stories", "-o", "jsonpath").err
    sort = cli("get", "stories", "--sort-by", "name")
    assert sort.code == 2 and "--sort-by" in sort.err


def test_long_cells_are_never_cut(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    seed(cli, "a-run-with-a-rather-long-name-that-does-not-fit-in-forty-columns")
    table = cli("get", "storyruns", "-o", "wide")
    assert "a-run-with-a-rather-long-name-that-does-not-fit-in-forty-columns" in table.out
    assert "…" not in table.out


# --------------------------------------------------------------------------- runs: label, Pending


def test_runs_carry_the_story_label_and_show_pending_before_they_start(cli: Cli) -> None:
    seed(cli, "waiting")
    obj = json.loads(cli("get", "storyrun", "waiting", "-o", "json").out)
    assert obj["metadata"]["labels"][STORY_NAME] == "tiny"
    assert "status" not in obj or not (obj["status"] or {}).get("phase")  # applied, not started
    row = cli("get", "storyruns", "--no-headers").out.split()
    assert row[:3] == ["waiting", "tiny", "Pending"]
    assert "Phase:        Pending" in cli("describe", "storyrun", "waiting").out
    selected = cli("get", "storyruns", "-l", f"{STORY_NAME}=tiny", "-o", "name")
    assert selected.out.split() == ["storyrun/waiting"]
    created = cli("run", "--story", "tiny", "--no-wait", "--name", "later")
    assert created.code == 0, created.err
    later = json.loads(cli("get", "storyrun", "later", "-o", "json").out)
    assert later["status"]["phase"] == "Pending"  # run --no-wait records it


# --------------------------------------------------------------------------- delete


def test_delete_kind_slash_name_all_and_selector(cli: Cli) -> None:
    seed(cli, "d1", "d2", "d3", "d4")
    names = cli("get", "storyruns", "-o", "name").out.split()
    result = cli("delete", *names[:2])  # what `get -o name` prints
    assert result.code == 0, result.err
    assert "storyrun/d1 deleted" in result.out and "storyrun/d2 deleted" in result.out
    labeled = cli("delete", "storyruns", "-l", f"{STORY_NAME}=other")
    assert labeled.code == 0 and "No resources found" in labeled.err
    by_label = cli("delete", "storyruns", "-l", f"{STORY_NAME}=tiny")
    assert (
        by_label.code == 0 and "storyrun/d3 deleted" in by_label.out and "storyrun/d4 deleted" in by_label.out
    )
    seed(cli, "e1", "e2")
    everything = cli("delete", "storyrun", "--all")
    assert everything.code == 0 and everything.out.count("deleted") == 2
    assert cli("get", "storyruns", "-o", "name").out == ""
    assert cli("get", "story", "tiny", "-o", "name").out.strip() == "story/tiny"  # other kinds untouched


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["storyrun/a", "b"], "mix of KIND/NAME and bare names"),
        (["storyrun/"], "expected KIND/NAME"),
        (["nosuch/a"], "unknown resource type"),
        (["storyrun", "a", "--all"], "one KIND, no names"),
        (["storyrun/a", "-l", "x=y"], "one KIND, no names"),
        (["storyrun"], "names no object"),
        ([], "usage: bobrapet delete"),
    ],
)
def test_delete_usage_errors(cli: Cli, args: list[str], message: str) -> None:
    result = cli("delete", *args)
    assert result.code == 2 and message in result.err, result.err


def test_deleting_a_run_deletes_its_step_logs(cli: Cli, tmp_path: Path) -> None:
    seed(cli, "logged")
    assert cli("apply", "-f", str(EXAMPLES / "catalog.yaml"), "-f", str(EXAMPLES / "hello.yaml")).code == 0
    home = tmp_path / "home"

    async def add_step_run() -> None:
        async with ControlPlane(home) as plane:
            run = await plane.client.get(STORY_RUN, "logged", "default")
            await plane.client.create(
                {
                    "apiVersion": "runs.bubustack.io/v1alpha1",
                    "kind": "StepRun",
                    "metadata": {
                        "name": "logged-pause",
                        "namespace": "default",
                        "labels": {"bubustack.io/storyrun": "logged"},
                        "ownerReferences": [
                            {
                                "apiVersion": STORY_RUN.api_version,
                                "kind": "StoryRun",
                                "name": "logged",
                                "uid": run["metadata"]["uid"],
                                "controller": True,
                            }
                        ],
                    },
                    "spec": {
                        "storyRunRef": {"name": "logged"},
                        "stepId": "pause",
                        "engramRef": {"name": "greeter"},
                    },
                }
            )

    asyncio.run(add_step_run())
    log = home / "logs" / "default" / "logged-pause.log"
    inputs_log = inputs_log_path(home, "default", "logged")
    now = datetime.now(UTC)
    record = steplog.inputs_record(step_run="logged-pause", attempt=1, at=now, inputs={"a": 1})
    _begin_attempt(log, steplog.attempt_header(1, now), inputs_log, record)
    other = home / "logs" / "default" / "other-run-step.log"
    other.write_text("kept\n")
    assert log.is_file() and inputs_log.is_file()
    result = cli("delete", "storyrun/logged")
    assert result.code == 0, result.err
    assert not log.exists() and not inputs_log.exists()
    assert other.read_text() == "kept\n"


# --------------------------------------------------------------------------- version, completion


def test_version(cli: Cli) -> None:
    from bobrapet import __version__
    from bobrapet.store.sqlite.schema import SCHEMA_VERSION

    text = cli("version")
    assert text.code == 0 and text.out.startswith(f"bobrapet {__version__}") and "python" in text.out
    info = json.loads(cli("version", "-o", "json").out)
    assert info["bobrapet"] == __version__ and info["storeSchemaVersion"] == SCHEMA_VERSION
    assert info["homeSchemaVersion"] is None  # no home yet, and version does not create one
    seed(cli)
    assert json.loads(cli("version", "-o", "json").out)["homeSchemaVersion"] == SCHEMA_VERSION
    assert cli("version", "-o", "xml").code == 2


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script(cli: Cli, shell: str) -> None:
    result = cli("completion", shell)
    assert result.code == 0 and "_BOBRAPET_COMPLETE" in result.out and "bobrapet" in result.out


def test_completion_unknown_shell(cli: Cli) -> None:
    result = cli("completion", "tcsh")
    assert result.code == 2 and "unsupported shell" in result.err


def test_completion_completes_commands_and_kinds() -> None:
    def complete(words: str, cword: int) -> list[str]:
        env = {
            **os.environ,
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
            "_BOBRAPET_COMPLETE": "complete_bash",
        }
        done = subprocess.run(
            [sys.executable, "-m", "bobrapet.cli.main"], env=env, capture_output=True, text=True, cwd=REPO
        )
        return done.stdout.split()

    assert "get" in complete("bobrapet ge", 1)
    kinds = complete("bobrapet get storyr", 2)
    assert "storyruns" in kinds and all(k.startswith("storyr") for k in kinds)


# --------------------------------------------------------------------------- inputs files


def test_inputs_file_object_list_and_json_lines(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("a: 1\n")
    assert load_input_sets(str(one)) == [{"a": 1}]
    many = tmp_path / "many.yaml"
    many.write_text("- a: 1\n- a: 2\n  when: 2026-01-01\n")
    assert load_input_sets(str(many)) == [{"a": 1}, {"a": 2, "when": "2026-01-01"}]
    lines = tmp_path / "in.jsonl"
    lines.write_text('{"a": 1}\n\n{"a": 2, "b": "x"}\n{"a": 3}\n')
    assert load_input_sets(str(lines)) == [{"a": 1}, {"a": 2, "b": "x"}, {"a": 3}]
    as_json = tmp_path / "in.json"
    as_json.write_text('[{"a": 1}, {"a": 2}]')
    assert build_input_sets(["b=7"], str(as_json)) == [{"a": 1, "b": 7}, {"a": 2, "b": 7}]
    assert build_input_sets(["b=7"], None) == [{"b": 7}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "the list is empty"),
        ("- a: 1\n- 3\n", "entry 2: expected a YAML or JSON object"),
        ('{"a": 1}\n{"a": \n', "nor JSON Lines"),
        ("7", "or a list / JSON Lines"),
    ],
)
def test_bad_inputs_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "in.txt"
    path.write_text(content)
    with pytest.raises(InputsError, match=message):
        load_input_sets(str(path))


def test_run_many_rejects_name_and_bad_entries_before_creating_anything(cli: Cli, tmp_path: Path) -> None:
    seed(cli)
    path = tmp_path / "in.jsonl"
    path.write_text('{"count": 1}\n{"count": "many"}\n')
    named = cli("run", "--story", "tiny", "--inputs-file", str(path), "--name", "x")
    assert named.code == 2 and "--name" in named.err
    bad = cli("run", "--story", "tiny", "--inputs-file", str(path), "--no-wait")
    assert bad.code == 2 and "entry 2 is rejected" in bad.err and "spec.inputs" in bad.err
    assert cli("get", "storyruns", "-o", "name").out == ""


def test_run_many_no_wait_prints_each_name(cli: Cli, tmp_path: Path) -> None:
    seed(cli)
    path = tmp_path / "in.jsonl"
    path.write_text('{"count": 1}\n{"count": 2}\n{"count": 3}\n')
    result = cli("run", "--story", "tiny", "--inputs-file", str(path), "--no-wait")
    assert result.code == 0, result.err
    names = result.out.split()
    assert len(names) == 3 and "wait --all" in result.err
    counts = sorted(
        json.loads(cli("get", "storyrun", n, "-o", "json").out)["spec"]["inputs"]["count"] for n in names
    )
    assert counts == [1, 2, 3]


# --------------------------------------------------------------------------- step logs, inputs record


def _begin_attempt(log: Path, header: str, inputs_log: Path, record: str) -> None:
    """What an executor writes before an attempt's code runs."""
    os.close(open_attempt_log(log, header))
    append_inputs_record(inputs_log, record)


def test_attempt_header_and_redacted_inputs_record(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "default" / "r-s.log"
    inputs_log = inputs_log_path(tmp_path, "default", "r")
    template: dict[str, Any] = {"spec": {"secretSchema": {"api": {"expectedKeys": ["token"]}}}}
    at = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    inputs = {
        "token": "s3cr3t",
        "api": {"k": "v"},
        "url": "https://u:hunter2@x",
        "n": 1,
        "deep": [{"token": 1}],
    }
    for step_run, attempt in (("r-s", 1), ("r-other", 1), ("r-s", 2), ("r-other", 2)):
        record = steplog.inputs_record(
            step_run=step_run,
            attempt=attempt,
            at=at,
            inputs=inputs,
            template=template,
            secret_values=["hunter2"],
        )
        path = log if step_run == "r-s" else log.with_name(f"{step_run}.log")
        _begin_attempt(path, steplog.attempt_header(attempt, at), inputs_log, record)
    assert log.read_text() == (
        "=== attempt 1 (2026-05-01T12:00:00.123Z) ===\n=== attempt 2 (2026-05-01T12:00:00.123Z) ===\n"
    )
    record = steplog.read_inputs(inputs_log, "r-s")
    assert record is not None and record["attempt"] == 2 and record["at"] == "2026-05-01T12:00:00.123Z"
    assert record["stepRun"] == "r-s"
    assert record["inputs"] == {
        "token": "<redacted>",
        "api": "<redacted>",
        "url": "<redacted>",
        "n": 1,
        "deep": [{"token": "<redacted>"}],
    }
    assert steplog.read_inputs(inputs_log, "r-missing") is None
    assert steplog.read_inputs(tmp_path / "none.inputs.jsonl", "r-s") is None
    assert "s3cr3t" not in inputs_log.read_text()
    assert "hunter2" not in inputs_log.read_text()
    assert steplog.remove_step_logs([log, inputs_log]) == 2 and not log.exists() and not inputs_log.exists()


def test_preview_cuts_large_values() -> None:
    shown = preview({"text": "x" * 1000, "items": list(range(30))}, chars=10, items=5)
    assert shown["text"] == "xxxxxxxxxx… (1000 chars)"
    assert shown["items"] == [0, 1, 2, 3, 4, "… (25 more items)"]


# --------------------------------------------------------------------------- scope


def run_obj(name: str, parent: str | None = None, phase: str | None = None) -> dict[str, Any]:
    labels = {PARENT_STORYRUN: parent} if parent else {}
    obj: dict[str, Any] = {
        "apiVersion": STORY_RUN.api_version,
        "kind": "StoryRun",
        "metadata": {"name": name, "namespace": "default", "labels": labels, "resourceVersion": "1"},
    }
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def test_scope_admits_its_runs_their_children_and_steps_only() -> None:
    cache = ObjectCache(STORY_RUN)
    for obj in (
        run_obj("mine"),
        run_obj("child", parent="mine"),
        run_obj("other"),
        run_obj("orphan", "ghost"),
    ):
        cache.apply(WatchEvent("ADDED", obj))
    scope = RunScope.of([("default", "mine")])
    assert scope.admits_run(run_obj("mine"), cache) is True
    assert scope.admits_run(run_obj("child", parent="mine"), cache) is True
    assert scope.admits_run(run_obj("other"), cache) is False
    assert scope.admits_run(run_obj("orphan", parent="ghost"), cache) is None  # ancestry unknown yet
    assert scope.admits_run(run_obj("other", phase="Succeeded"), cache) is True  # finished: cleanup only
    step = {"metadata": {"namespace": "default"}, "spec": {"storyRunRef": {"name": "child"}}}
    assert scope.admits_step_run(step, cache) is True
    step["spec"]["storyRunRef"]["name"] = "other"
    assert scope.admits_step_run(step, cache) is False
