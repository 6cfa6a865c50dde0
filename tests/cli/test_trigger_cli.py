"""``bobrapet trigger``: durable, deduplicated submissions from the command line (in-process)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from tests.cli.conftest import Cli
from tests.conftest import EXAMPLES

HELLO = ("-f", str(EXAMPLES / "catalog.yaml"), "-f", str(EXAMPLES / "hello.yaml"))


@pytest.fixture
def applied(cli: Cli) -> Cli:
    assert cli("apply", *HELLO).code == 0
    return cli


def triggers(cli: Cli) -> list[dict[str, object]]:
    listed = cli("get", "storytriggers", "-o", "json")
    assert listed.code == 0, listed.err
    items: list[dict[str, object]] = json.loads(listed.out)["items"]
    return items


def test_the_same_key_gives_the_same_trigger_and_run(applied: Cli) -> None:
    first = applied("trigger", "hello", "-i", "name=Ada", "--key", "order-1", "-o", "json")
    assert first.code == 0, first.err
    trigger = json.loads(first.out)
    status = trigger["status"]
    run = status["storyRunRef"]["name"]
    assert (status["decision"], status["reason"]) == ("Created", "StoryRunCreated")
    assert trigger["spec"]["deliveryIdentity"]["key"] == hashlib.sha256(b"order-1").hexdigest()
    assert trigger["spec"]["inputs"] == {"name": "Ada"}
    assert f"storyrun/{run} runs when an engine drives it: `bobrapet --home " in first.err
    assert f" wait {run}`" in first.err

    again = applied("trigger", "hello", "-i", "name=Ada", "--key", "order-1")
    assert again.code == 0, again.err
    name = trigger["metadata"]["name"]
    assert again.out.strip() == f"storytrigger/{name} Created (StoryRunCreated) -> storyrun/{run}"
    assert len(triggers(applied)) == 1
    runs = json.loads(applied("get", "storyruns", "-o", "json").out)["items"]
    assert [r["metadata"]["name"] for r in runs] == [run]


def test_the_same_key_with_other_inputs_is_refused(applied: Cli) -> None:
    assert applied("trigger", "hello", "-i", "name=Ada", "--key", "order-1").code == 0
    other = applied("trigger", "hello", "-i", "name=Bob", "--key", "order-1")
    assert other.code == 1
    assert 'already exists in namespace "default" with a different immutable request' in other.err
    assert "(spec.deliveryIdentity.inputHash, spec.inputs differ)" in other.err
    assert "Traceback" not in other.err and len(triggers(applied)) == 1


def test_a_rejected_trigger_is_printed_and_exits_1(applied: Cli) -> None:
    first = json.loads(applied("trigger", "hello", "-i", "name=Ada", "--key", "order-1", "-o", "json").out)
    # the trigger is gone, its run stays: the key is submitted again for other inputs
    assert applied("delete", "storytrigger", first["metadata"]["name"]).code == 0
    again = applied("trigger", "hello", "-i", "name=Bob", "--key", "order-1", "-o", "yaml")
    assert again.code == 1
    status = yaml.safe_load(again.out)["status"]
    assert (status["decision"], status["reason"]) == ("Rejected", "StoryRunConflict")
    assert "does not match StoryTrigger storyRef and inputs (spec.inputs differ)" in status["message"]
    assert "runs when an engine drives it" not in again.err

    summary = applied("trigger", "hello", "-i", "name=[1]")  # the Story wants a string
    assert summary.code == 1
    assert " Rejected (ValidationFailed): StoryRun admission rejected the request: " in summary.out


def test_without_a_key_each_trigger_is_new(applied: Cli) -> None:
    one = applied("trigger", "hello", "-o", "json")
    two = applied("trigger", "hello", "-o", "json")
    assert one.code == two.code == 0
    names = {json.loads(r.out)["status"]["storyRunRef"]["name"] for r in (one, two)}
    assert len(names) == 2 and len(triggers(applied)) == 2
    token = applied("trigger", "hello", "--token", "delivery-7", "-o", "json")
    assert json.loads(token.out)["spec"]["deliveryIdentity"] == {
        "mode": "token",
        "key": "delivery-7",
        "inputHash": hashlib.sha256(b"{}").hexdigest(),
        "submissionId": "delivery-7",
    }


def test_unknown_story_is_an_error_and_creates_no_home(cli: Cli, tmp_path: Path) -> None:
    result = cli("trigger", "nope")
    assert result.code == 1
    assert result.err.strip() == (
        'error: story "nope" not found in namespace "default"; apply it first (bobrapet apply -f FILE)'
    )
    assert not (tmp_path / "home").exists()


def test_unknown_story_names_the_stories_there(applied: Cli) -> None:
    result = applied("trigger", "helo", "-n", "default")
    assert result.code == 1 and "stories there: hello" in result.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-i", "name"), 'error: -i "name": expected key=value'),
        (("--inputs-file", "/nonexistent.yaml"), "error: --inputs-file /nonexistent.yaml: cannot read"),
        (("--key", "a", "--token", "b"), "error: --key and --token are alternatives"),
        (("--key", "{{ inputs.missing }}"), "error: key template: "),
        (("--key", "{{ inputs.blank }}", "-i", "blank= "), "rendered an empty key"),
        (("-o", "table"), 'error: unknown output format "table" for -o'),
    ],
)
def test_usage_errors_exit_2_and_store_nothing(applied: Cli, args: tuple[str, ...], message: str) -> None:
    result = applied("trigger", "hello", *args)
    assert result.code == 2, result.err
    assert message in result.err and "Traceback" not in result.err
    assert triggers(applied) == []


@pytest.mark.parametrize("content", ["[1, 2]", "- a\n- b\n", "just text"])
def test_inputs_file_must_hold_one_object(applied: Cli, tmp_path: Path, content: str) -> None:
    path = tmp_path / "inputs.yaml"
    path.write_text(content)
    result = applied("trigger", "hello", "--inputs-file", str(path))
    assert result.code == 2 and "--inputs-file" in result.err and "Traceback" not in result.err
    assert triggers(applied) == []


def test_inputs_file_with_i_over_it(applied: Cli, tmp_path: Path) -> None:
    path = tmp_path / "inputs.json"
    path.write_text('{"name": "Ada", "extra": {"x": 1}}')
    result = applied("trigger", "hello", "--inputs-file", str(path), "-i", "name=1.10", "-o", "json")
    assert result.code == 0, result.err
    # name is declared a string: -i keeps the text as typed
    assert json.loads(result.out)["spec"]["inputs"] == {"name": "1.10", "extra": {"x": 1}}
