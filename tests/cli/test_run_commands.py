"""run / wait / approve / reject / cancel / redrive / logs against a temporary home.

The store is the real SQLite store with admission; the engine is replaced by a scripted
``EngineHost`` (installed as ``bobrapet.host.engine_host``) that writes StoryRun statuses
the way the controllers would, so these tests check the commands, not the engine.
"""

from __future__ import annotations

import asyncio
import json
import sys
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cli.conftest import Cli

from bobrapet.api.kinds import STEP_RUN, STORY_RUN
from bobrapet.api.runmeta import REDRIVE_OBSERVED, REDRIVE_TOKEN
from bobrapet.cli.commands.logs import LOG_DIR
from bobrapet.cli.commands.redrive import new_token
from bobrapet.cli.inputs import (
    InputsError,
    build_inputs,
    keep_declared_strings,
    parse_assignment,
    parse_value,
)
from bobrapet.host.embedded import ControlPlane

TINY = """\
apiVersion: bubustack.io/v1alpha1
kind: Story
metadata:
  name: tiny
spec:
  inputsSchema:
    type: object
    properties:
      count: {type: integer}
      name: {type: string, default: world}
  steps:
    - name: fetch
      type: sleep
      with: {duration: 1s}
    - name: store
      type: sleep
      needs: [fetch]
      with: {duration: 1s}
"""

GATED = {
    "apiVersion": "bubustack.io/v1alpha1",
    "kind": "Story",
    "metadata": {"name": "gated", "namespace": "default"},
    "spec": {
        "steps": [
            {"name": "approve", "type": "gate"},
            {"name": "pause", "type": "sleep", "needs": ["approve"], "with": {"duration": "1s"}},
        ]
    },
}

OTHER = TINY.replace("name: tiny", "name: other")

T0 = "2026-01-01T00:00:00.000Z"
T1 = "2026-01-01T00:00:00.300Z"
T2 = "2026-01-01T00:00:00.700Z"


# --------------------------------------------------------------------------- helpers


def home_of(tmp_path: Path) -> Path:
    return tmp_path / "home"  # the cli fixture's home


def in_store(home: Path, fn: Callable[[ControlPlane], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with ControlPlane(home) as plane:
            return await fn(plane)

    return asyncio.run(go())


def seed_run(home: Path, story: dict[str, Any], run: str, status: dict[str, Any] | None = None) -> None:
    async def go(plane: ControlPlane) -> None:
        await plane.client.create(story)
        created = await plane.client.create(
            {
                "apiVersion": STORY_RUN.api_version,
                "kind": "StoryRun",
                "metadata": {"name": run, "namespace": "default"},
                "spec": {"storyRef": {"name": story["metadata"]["name"]}},
            }
        )
        if status is not None:
            created["status"] = status
            await plane.client.update_status(created)

    in_store(home, go)


def get_run(home: Path, name: str) -> dict[str, Any]:
    result: dict[str, Any] = in_store(home, lambda plane: plane.client.get(STORY_RUN, name, "default"))
    return result


Script = Callable[["FakeHost", str, str, Any], Awaitable[dict[str, Any]]]


class FakeHost:
    """Stands in for ``EngineHost``: runs ``script`` instead of the controllers."""

    script: Script
    instances: list[FakeHost] = []

    def __init__(
        self,
        plane: ControlPlane,
        *,
        workers: int | None = None,
        scope: Any = None,
        executor_factory: Any = None,
    ) -> None:
        self.plane = plane
        self.scope = scope
        self.workers = workers
        self.closed = False
        self.timeout: float | None = None
        FakeHost.instances.append(self)

    async def __aenter__(self) -> FakeHost:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed = True

    def unfinished_runs(self) -> list[dict[str, Any]]:
        return []

    def drives(self, run: dict[str, Any]) -> bool:
        return True

    def step_runs(self, namespace: str, run: str) -> list[dict[str, Any]]:
        return []

    async def wait_for_run(
        self,
        namespace: str,
        name: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        self.timeout = timeout
        return await type(self).script(self, namespace, name, on_update)


async def write_statuses(
    host: FakeHost, namespace: str, name: str, on_update: Any, statuses: list[dict[str, Any]]
) -> dict[str, Any]:
    current: dict[str, Any] = {}
    for status in statuses:
        current = await host.plane.client.get(STORY_RUN, name, namespace)
        current["status"] = status
        current = await host.plane.client.update_status(current)
        if on_update is not None:
            on_update(current)
    return current


def scripted(statuses: list[dict[str, Any]]) -> Script:
    async def script(host: FakeHost, namespace: str, name: str, on_update: Any) -> dict[str, Any]:
        return await write_statuses(host, namespace, name, on_update, statuses)

    return script


SUCCESS = [
    {"phase": "Running", "startedAt": T0, "stepStates": {"fetch": {"phase": "Running", "startedAt": T0}}},
    {
        "phase": "Running",
        "startedAt": T0,
        "stepStates": {
            "fetch": {"phase": "Succeeded", "startedAt": T0, "finishedAt": T1},
            "store": {"phase": "Running", "startedAt": T1},
        },
    },
    {
        "phase": "Succeeded",
        "message": "all done",
        "startedAt": T0,
        "finishedAt": T2,
        "duration": "700ms",
        "output": {"greeting": "Hello"},
        "stepStates": {
            "fetch": {"phase": "Succeeded", "startedAt": T0, "finishedAt": T1},
            "store": {"phase": "Succeeded", "startedAt": T1, "finishedAt": T2},
        },
    },
]

FAILURE = [
    SUCCESS[0],
    {
        "phase": "Failed",
        "message": "step fetch failed",
        "startedAt": T0,
        "finishedAt": T1,
        "stepStates": {"fetch": {"phase": "Failed", "message": "boom", "startedAt": T0, "finishedAt": T1}},
    },
]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> type[FakeHost]:
    module = types.ModuleType("bobrapet.host.engine_host")
    module.EngineHost = FakeHost  # type: ignore[attr-defined]
    module.LOG_DIR = "logs"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bobrapet.host.engine_host", module)

    async def no_pool(workers: int | None = None, workdir: Path | None = None) -> None:
        return None  # no engine: no worker processes either

    monkeypatch.setattr("bobrapet.cli.commands.run.start_early", no_pool)
    FakeHost.instances = []
    FakeHost.script = scripted(SUCCESS)
    return FakeHost


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


# --------------------------------------------------------------------------- inputs (pure)


def test_values_are_json_when_they_parse_else_strings() -> None:
    assert parse_value("3") == 3
    assert parse_value("2.5") == 2.5
    assert parse_value("true") is True
    assert parse_value("null") is None
    assert parse_value('{"a": [1]}') == {"a": [1]}
    assert parse_value('"3"') == "3"
    assert parse_value("world") == "world"
    assert parse_value("") == ""
    assert parse_value("NaN") == "NaN"
    assert parse_value("{broken") == "{broken"


def test_assignment_syntax() -> None:
    assert parse_assignment("url=http://x/?a=b") == ("url", "http://x/?a=b")
    assert parse_assignment(" name =x") == ("name", "x")
    for bad in ("novalue", "=3", ""):
        with pytest.raises(InputsError, match="expected key=value"):
            parse_assignment(bad)


def test_inputs_file_is_the_base_and_later_i_wins(tmp_path: Path) -> None:
    path = tmp_path / "in.yaml"
    path.write_text("name: file\ncount: 1\nwhen: 2026-01-01\n")
    assert build_inputs(["count=2", "count=3", "extra=[1,2]"], str(path)) == {
        "name": "file",
        "count": 3,
        "when": "2026-01-01",
        "extra": [1, 2],
    }
    json_path = tmp_path / "in.json"
    json_path.write_text('{"a": {"b": 1}}')
    assert build_inputs([], str(json_path)) == {"a": {"b": 1}}
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert build_inputs(["a=1"], str(empty)) == {"a": 1}


@pytest.mark.parametrize(
    ("content", "message"),
    [("- a\n- b\n", "expected a YAML or JSON object"), ("a: [1\n", r"not valid YAML or JSON \(line")],
)
def test_bad_inputs_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(content)
    with pytest.raises(InputsError, match=message):
        build_inputs([], str(path))
    with pytest.raises(InputsError, match="cannot read"):
        build_inputs([], str(tmp_path / "missing.yaml"))


# --------------------------------------------------------------------------- run: usage errors


def test_run_bad_input_is_usage_error_and_writes_nothing(cli: Cli, tiny: Path, tmp_path: Path) -> None:
    result = cli("run", "-f", str(tiny), "-i", "count")
    assert result.code == 2
    assert 'error: -i "count": expected key=value' in result.err
    assert not home_of(tmp_path).exists()


def test_run_bad_options(cli: Cli, tiny: Path) -> None:
    bad_output = cli("run", "-f", str(tiny), "-o", "table")
    assert bad_output.code == 2 and 'unknown output format "table"' in bad_output.err
    bad_timeout = cli("run", "-f", str(tiny), "--timeout", "soon")
    assert bad_timeout.code == 2 and "--timeout: invalid duration" in bad_timeout.err
    negative = cli("run", "-f", str(tiny), "--timeout", "0s")
    assert negative.code == 2 and "positive duration" in negative.err
    nothing = cli("run")
    assert nothing.code == 2 and "pass -f FILE" in nothing.err
    missing = cli("run", "-f", "/nonexistent.yaml")
    assert missing.code == 2


def test_run_story_choice(cli: Cli, tiny: Path, tmp_path: Path) -> None:
    two = tmp_path / "two.yaml"
    two.write_text(TINY + "---\n" + OTHER)
    ambiguous = cli("run", "-f", str(two))
    assert ambiguous.code == 2
    assert "several Stories (tiny, other); choose one with --story NAME" in ambiguous.err
    none = tmp_path / "none.yaml"
    none.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n")
    no_story = cli("run", "-f", str(none))
    assert no_story.code == 2 and "the files define no Story" in no_story.err
    unknown = cli("run", "-f", str(tiny), "--story", "nope")
    assert unknown.code == 2
    assert '--story: story "nope" not found in namespace "default"; stories there: tiny' in unknown.err


def test_run_invalid_inputs_rejected_by_admission(cli: Cli, tiny: Path, engine: type[FakeHost]) -> None:
    result = cli("run", "-f", str(tiny), "-i", "count=many")
    assert result.code == 2, result.err
    assert "spec.inputs.count" in result.err and "does not match the Story inputsSchema" in result.err
    assert "-i key=value" in result.err
    assert engine.instances == []


def test_run_rejected_manifest_is_usage_error(cli: Cli, tmp_path: Path, engine: type[FakeHost]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("needs: [fetch]", "needs: [nothing]"))
    result = cli("run", "-f", str(bad))
    assert result.code == 2
    assert "not running: 1 object(s) were rejected" in result.err
    assert engine.instances == []


# --------------------------------------------------------------------------- run: driving


def test_run_json_output_is_exactly_the_final_storyrun(
    cli: Cli, tiny: Path, tmp_path: Path, engine: type[FakeHost]
) -> None:
    result = cli("run", "-f", str(tiny), "-i", "count=2", "-o", "json", "--workers", "3", "--timeout", "1m")
    assert result.code == 0, result.err
    final = json.loads(result.out)
    assert final["kind"] == "StoryRun" and final["status"]["phase"] == "Succeeded"
    assert final["spec"] == {"storyRef": {"name": "tiny"}, "inputs": {"count": 2}}
    name = final["metadata"]["name"]
    assert name.startswith("tiny-") and len(name) == len("tiny-") + 5
    assert final == get_run(home_of(tmp_path), name)
    assert "story/tiny created" in result.err  # apply messages go to stderr
    assert "step fetch Running" in result.err
    assert "step fetch Succeeded 0.3s" in result.err
    assert "step store Succeeded 0.4s" in result.err
    (host,) = engine.instances
    assert host.workers == 3 and host.timeout == 60 and host.closed


def test_run_yaml_and_summary_outputs(cli: Cli, tiny: Path, engine: type[FakeHost]) -> None:
    as_yaml = cli("run", "-f", str(tiny), "--name", "first", "-o", "yaml")
    assert as_yaml.code == 0, as_yaml.err
    assert yaml.safe_load(as_yaml.out)["metadata"]["name"] == "first"
    summary = cli("run", "-f", str(tiny), "--name", "second")
    assert summary.code == 0
    assert summary.out.splitlines() == [
        "storyrun/second Succeeded in 0.7s",
        "message: all done",
        "output:",
        "  greeting: Hello",
    ]


def test_run_failed_exits_1_with_failed_steps(cli: Cli, tiny: Path, engine: type[FakeHost]) -> None:
    engine.script = scripted(FAILURE)
    result = cli("run", "-f", str(tiny), "--name", "bad")
    assert result.code == 1
    assert "storyrun/bad Failed in 0.3s" in result.out
    assert "  fetch: boom" in result.out
    assert "logs:" not in result.out  # the step wrote no log: no hint that would lead nowhere
    assert "step fetch Failed 0.3s: boom" in result.err


def test_failed_summary_names_the_step_whose_logs_to_read(cli: Cli, tmp_path: Path) -> None:
    home = home_of(tmp_path)
    failed = {
        "phase": "Failed",
        "message": "step fetch failed",
        "duration": "10.285ms",
        "stepStates": {
            "fetch": {"phase": "Failed", "message": "ValueError: boom"},
            "fan": {"phase": "Failed", "message": "branch b failed"},
            "store": {"phase": "Timeout", "message": "no log"},
        },
    }
    seed_run(home, TINY_STORY, "f1", failed)
    seed_step_runs(home, "f1", [("f1-fetch", "fetch", None), ("f1-store", "store", None)])
    write_log(home, "f1-fetch", "Traceback ...\n")
    one = cli("wait", "f1")
    assert one.code == 1
    lines = one.out.splitlines()
    assert lines[0] == "storyrun/f1 Failed in 10ms"
    assert lines[-1].startswith("logs: bobrapet") and lines[-1].endswith(" logs f1 fetch")
    seed_step_runs(home, "f1", [("f1-fan-b", "b", "fan")])
    write_log(home, "f1-fan-b", "B\n")
    several = cli("wait", "f1")
    assert several.out.splitlines()[-1].endswith(" logs f1 [STEP] (steps with logs: fetch, fan)")


def test_run_existing_name_is_usage_error(cli: Cli, tiny: Path, engine: type[FakeHost]) -> None:
    assert cli("run", "-f", str(tiny), "--name", "dup").code == 0
    again = cli("run", "-f", str(tiny), "--name", "dup")
    assert again.code == 2
    assert 'storyrun "dup" already exists' in again.err and "wait dup" in again.err


def test_run_timeout_keeps_the_run(cli: Cli, tiny: Path, tmp_path: Path, engine: type[FakeHost]) -> None:
    async def slow(host: FakeHost, namespace: str, name: str, on_update: Any) -> dict[str, Any]:
        await write_statuses(host, namespace, name, on_update, SUCCESS[:1])
        raise TimeoutError

    engine.script = slow
    result = cli("run", "-f", str(tiny), "--name", "late", "--timeout", "2s")
    assert result.code == 1
    assert "timed out waiting for run late after 2s; it keeps its state, resume with `bobrapet" in result.err
    assert "wait late`" in result.err
    assert result.out == ""
    assert get_run(home_of(tmp_path), "late")["status"]["phase"] == "Running"
    assert engine.instances[0].closed


def test_run_ctrl_c_exits_130_with_resume_hint(cli: Cli, tiny: Path, engine: type[FakeHost]) -> None:
    async def interrupted(host: FakeHost, namespace: str, name: str, on_update: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    engine.script = interrupted
    result = cli("run", "-f", str(tiny), "--name", "stopped")
    assert result.code == 130
    assert "interrupted: run stopped keeps its state; resume with `bobrapet" in result.err
    assert "Traceback" not in result.err
    assert engine.instances[0].closed


def test_run_story_already_applied(cli: Cli, tmp_path: Path, engine: type[FakeHost]) -> None:
    in_store(home_of(tmp_path), lambda plane: plane.client.create(dict(GATED)))
    result = cli("run", "--story", "gated", "--name", "again", "-o", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["spec"]["storyRef"] == {"name": "gated"}


def test_run_no_wait_prints_the_name(cli: Cli, tiny: Path, tmp_path: Path, engine: type[FakeHost]) -> None:
    result = cli("run", "-f", str(tiny), "--no-wait", "-i", "name=bob", "-i", "count=7")
    assert result.code == 0, result.err
    name = result.out.strip()
    assert name.startswith("tiny-")
    assert f"wait {name}" in result.err
    stored = get_run(home_of(tmp_path), name)
    assert stored["spec"]["inputs"] == {"name": "bob", "count": 7}
    assert engine.instances == []


# --------------------------------------------------------------------------- wait


def test_wait_unknown_run(cli: Cli, tmp_path: Path) -> None:
    result = cli("wait", "ghost")
    assert result.code == 1
    assert 'storyrun "ghost" not found in namespace "default"' in result.err
    assert not home_of(tmp_path).exists()


def test_wait_drives_an_existing_run(cli: Cli, tmp_path: Path, engine: type[FakeHost]) -> None:
    seed_run(home_of(tmp_path), TINY_STORY, "resumed", SUCCESS[0])
    result = cli("wait", "resumed", "-o", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["status"]["phase"] == "Succeeded"
    assert len(engine.instances) == 1


def test_wait_on_a_finished_run_needs_no_engine(cli: Cli, tmp_path: Path, engine: type[FakeHost]) -> None:
    seed_run(home_of(tmp_path), TINY_STORY, "over", FAILURE[-1])
    result = cli("wait", "over")
    assert result.code == 1
    assert result.out.startswith("storyrun/over Failed")
    assert engine.instances == []


def test_wait_on_a_finished_run_with_pending_redrive_starts_the_engine(
    cli: Cli, tmp_path: Path, engine: type[FakeHost]
) -> None:
    seed_run(home_of(tmp_path), TINY_STORY, "again", FAILURE[-1])
    assert cli("redrive", "again", "--no-wait").code == 0
    assert cli("wait", "again").code == 0
    assert len(engine.instances) == 1


# --------------------------------------------------------------------------- approve / reject


def test_approve_writes_the_gate(cli: Cli, tmp_path: Path) -> None:
    home = home_of(tmp_path)
    seed_run(home, GATED, "g1", {"phase": "Running", "stepStates": {"approve": {"phase": "Paused"}}})
    result = cli("approve", "g1", "approve", "-m", "looks good")
    assert result.code == 0, result.err
    assert "gate approve of storyrun/g1 approved" in result.out
    gate = get_run(home, "g1")["status"]["gates"]["approve"]
    assert gate["state"] == "Approved" and gate["message"] == "looks good"
    assert gate["updatedBy"] and gate["updatedAt"].endswith("Z")
    assert get_run(home, "g1")["status"]["stepStates"]["approve"] == {"phase": "Paused"}  # status kept


def test_reject_writes_the_gate(cli: Cli, tmp_path: Path) -> None:
    home = home_of(tmp_path)
    seed_run(home, GATED, "g2")
    result = cli("reject", "g2", "approve")
    assert result.code == 0, result.err
    gate = get_run(home, "g2")["status"]["gates"]["approve"]
    assert gate["state"] == "Rejected" and "message" not in gate


def test_gate_errors(cli: Cli, tmp_path: Path) -> None:
    home = home_of(tmp_path)
    seed_run(home, GATED, "g3")
    not_gate = cli("approve", "g3", "pause")
    assert not_gate.code == 2
    assert "step 'pause' is not a gate; gates of story gated: approve" in not_gate.err
    unknown = cli("approve", "nope", "approve")
    assert unknown.code == 1 and 'storyrun "nope" not found' in unknown.err
    in_store(home, lambda plane: finish(plane, "g3"))
    over = cli("reject", "g3", "approve")
    assert over.code == 1 and "run g3 already finished (Succeeded)" in over.err
    assert "gates" not in get_run(home, "g3")["status"]


def test_gate_step_already_ended(cli: Cli, tmp_path: Path) -> None:
    home = home_of(tmp_path)
    seed_run(home, GATED, "g4", {"phase": "Running", "stepStates": {"approve": {"phase": "Succeeded"}}})
    result = cli("reject", "g4", "approve")
    assert result.code == 1 and "gate 'approve' of run g4 already ended (Succeeded)" in result.err


async def finish(plane: ControlPlane, name: str) -> None:
    current = await plane.client.get(STORY_RUN, name, "default")
    current["status"] = {"phase": "Succeeded"}
    await plane.client.update_status(current)


# --------------------------------------------------------------------------- cancel / redrive


def test_cancel_sets_cancel_requested(cli: Cli, tmp_path: Path) -> None:
    home = home_of(tmp_path)
    seed_run(home, GATED, "c1", {"phase": "Running"})
    result = cli("cancel", "c1")
    assert result.code == 0, result.err
    assert result.out.strip() == "storyrun/c1 cancel requested"
    assert "wait c1" in result.err
    assert get_run(home, "c1")["spec"]["cancelRequested"] is True
    again = cli("cancel", "c1")
    assert again.code == 0 and "cancel already requested" in again.out
    assert cli("cancel", "ghost").code == 1


def test_cancel_finished_run_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    home = home_of(tmp_path)
    seed_run(home, GATED, "c2", {"phase": "Failed"})
    result = cli("cancel", "c2")
    assert result.code == 0 and "already finished (Failed); nothing to cancel" in result.out
    assert "cancelRequested" not in get_run(home, "c2")["spec"]


def test_redrive_sets_a_fresh_token(cli: Cli, tmp_path: Path) -> None:
    home = home_of(tmp_path)
    seed_run(home, GATED, "r1", {"phase": "Failed"})
    first = cli("redrive", "r1", "--no-wait")
    assert first.code == 0, first.err
    assert "redrive requested from the start" in first.out and "wait r1" in first.err
    token = get_run(home, "r1")["metadata"]["annotations"]["storyrun.bubustack.io/redrive-token"]
    assert cli("redrive", "r1", "--no-wait").code == 0
    second = get_run(home, "r1")["metadata"]["annotations"]["storyrun.bubustack.io/redrive-token"]
    assert token and second != token


def test_redrive_from_step(cli: Cli, tmp_path: Path) -> None:
    home = home_of(tmp_path)
    seed_run(home, GATED, "r2", {"phase": "Failed"})
    result = cli("redrive", "r2", "--from", "pause", "--no-wait")
    assert result.code == 0, result.err
    value = get_run(home, "r2")["metadata"]["annotations"]["storyrun.bubustack.io/redrive-from-step"]
    step, _, token = value.partition(":")
    assert step == "pause" and token and ":" not in token
    bad = cli("redrive", "r2", "--from", "nope")
    assert bad.code == 2 and "--from: story gated has no step 'nope'; steps: approve, pause" in bad.err
    assert cli("redrive", "ghost").code == 1


def test_tokens_are_unique_and_colon_free() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100 and not any(":" in t for t in tokens)


# --------------------------------------------------------------------------- logs


def seed_step_runs(home: Path, run: str, steps: list[tuple[str, str, str | None]]) -> None:
    """StepRuns (name, stepId, parent step) of ``run``."""

    async def go(plane: ControlPlane) -> None:
        for name, step, parent in steps:
            labels = {"bubustack.io/storyrun": run}
            if parent:
                labels["bubustack.io/parent-step"] = parent
            await plane.client.create(
                {
                    "apiVersion": STEP_RUN.api_version,
                    "kind": "StepRun",
                    "metadata": {"name": name, "namespace": "default", "labels": labels},
                    "spec": {"storyRunRef": {"name": run}, "stepId": step},
                }
            )

    in_store(home, go)


def write_log(home: Path, step_run: str, text: str) -> None:
    path = home / LOG_DIR / "default" / f"{step_run}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_logs(cli: Cli, tmp_path: Path) -> None:
    home = home_of(tmp_path)
    seed_run(home, TINY_STORY, "l1", {"phase": "Running", "stepStates": {"fetch": {"phase": "Succeeded"}}})
    seed_step_runs(home, "l1", [("l1-fetch", "fetch", None), ("l1-store", "store", None)])
    write_log(home, "l1-fetch", "one\ntwo\nthree\n")
    write_log(home, "l1-store", "stored")
    single = cli("logs", "l1", "fetch")
    assert single.code == 0, single.err
    assert single.out == "one\ntwo\nthree\n"
    tail = cli("logs", "l1", "fetch", "--tail", "1")
    assert tail.out == "three\n"
    both = cli("logs", "l1")
    assert both.out == "== step fetch (l1-fetch) ==\none\ntwo\nthree\n== step store (l1-store) ==\nstored\n"


def test_logs_errors(cli: Cli, tmp_path: Path) -> None:
    home = home_of(tmp_path)
    seed_run(home, TINY_STORY, "l2", {"phase": "Running"})
    nothing = cli("logs", "l2")
    assert nothing.code == 1 and "run l2 has no step logs yet" in nothing.err
    seed_step_runs(home, "l2", [("l2-fetch", "fetch", None)])
    unknown = cli("logs", "l2", "nope")
    assert unknown.code == 1
    assert "run l2 has no step 'nope'; steps: fetch, store; steps with logs: fetch" in unknown.err
    not_started = cli("logs", "l2", "store")
    assert not_started.code == 1 and "step 'store' of run l2 has no logs" in not_started.err
    no_file = cli("logs", "l2", "fetch")
    assert no_file.code == 0 and "no logs yet for step fetch (l2-fetch)" in no_file.err
    assert cli("logs", "ghost").code == 1


def test_logs_of_a_parallel_step_shows_its_branches(cli: Cli, tmp_path: Path) -> None:
    home = home_of(tmp_path)
    seed_run(home, TINY_STORY, "l3", {"phase": "Running"})
    seed_step_runs(home, "l3", [("l3-fan-a", "a", "fan"), ("l3-fan-b", "b", "fan"), ("l3-x", "x", None)])
    write_log(home, "l3-fan-a", "A\n")
    write_log(home, "l3-fan-b", "B\n")
    result = cli("logs", "l3", "fan")
    assert result.code == 0, result.err
    assert result.out == "== step a (l3-fan-a) ==\nA\n== step b (l3-fan-b) ==\nB\n"


def test_log_dir_matches_the_engine() -> None:
    execution = pytest.importorskip("bobrapet.controllers.execution")
    assert execution.LOG_DIR == LOG_DIR


TINY_STORY: dict[str, Any] = {**yaml.safe_load(TINY), "metadata": {"name": "tiny", "namespace": "default"}}


def test_string_typed_inputs_keep_the_text_as_typed() -> None:
    schema = {"properties": {"name": {"type": "string"}, "count": {"type": "integer"}, "any": {}}}
    inputs = {"name": 1.1, "count": 3, "any": 7, "other": 2}
    kept = keep_declared_strings(inputs, ["name=1.10", "count=3", "any=7", "other=2"], schema)
    assert kept == {"name": "1.10", "count": 3, "any": 7, "other": 2}
    assert keep_declared_strings({"name": 5}, [], schema) == {"name": 5}  # from --inputs-file: as written
    assert keep_declared_strings({"name": True}, ["name=true"], schema) == {"name": "true"}
    assert keep_declared_strings({"name": None}, ["name=null"], schema) == {"name": "null"}
    assert keep_declared_strings({"name": [1]}, ["name=[1]"], schema) == {"name": [1]}  # meant as JSON
    assert keep_declared_strings({"name": 3}, ["name=3"], None) == {"name": 3}


def test_run_string_input_that_looks_like_a_number(cli: Cli, tiny: Path, engine: type[FakeHost]) -> None:
    result = cli("run", "-f", str(tiny), "-i", "name=007", "-i", "count=2", "-o", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["spec"]["inputs"] == {"name": "007", "count": 2}


def test_wait_after_redrive_does_not_replay_the_previous_attempt(
    cli: Cli, tmp_path: Path, engine: type[FakeHost]
) -> None:
    seed_run(home_of(tmp_path), TINY_STORY, "again2", FAILURE[-1])
    assert cli("redrive", "again2", "--no-wait").code == 0

    async def redriven(host: FakeHost, namespace: str, name: str, on_update: Any) -> dict[str, Any]:
        await write_statuses(host, namespace, name, on_update, [FAILURE[-1]])  # not taken up yet
        current = await host.plane.client.get(STORY_RUN, name, namespace)
        notes = current["metadata"]["annotations"]
        notes[REDRIVE_OBSERVED] = notes[REDRIVE_TOKEN]
        await host.plane.client.update(current)
        await write_statuses(host, namespace, name, on_update, [FAILURE[-1]])  # old end, not yet reset
        return await write_statuses(host, namespace, name, on_update, SUCCESS)

    engine.script = redriven
    result = cli("wait", "again2")
    assert result.code == 0, result.err
    assert "Failed" not in result.err
    assert result.err.splitlines()[0] == "run again2 Running"
