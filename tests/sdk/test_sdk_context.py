"""bobrapet.sdk: Context, StructuredError, previews and the command-engram helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bobrapet.sdk import Context, StructuredError, preview
from bobrapet.sdk import command as cmd

ENV = {
    "BUBU_STORY_NAME": "s",
    "BUBU_STORYRUN_ID": "r",
    "BUBU_STEP_NAME": "st",
    "BUBU_STEPRUN_NAME": "r-st",
    "BUBU_STEPRUN_NAMESPACE": "ns",
    "BUBU_ENGRAM_NAME": "e",
    "BUBU_DEBUG": "TRUE",
}


def test_context_identity_from_env() -> None:
    ctx = Context(config={"a": 1}, secrets={"k": "v"}, env=ENV)
    assert (ctx.story, ctx.story_run, ctx.step, ctx.step_run, ctx.namespace, ctx.engram) == (
        "s",
        "r",
        "st",
        "r-st",
        "ns",
        "e",
    )
    assert ctx.debug is True
    assert ctx.config == {"a": 1} and ctx.secrets == {"k": "v"}
    assert ctx.logger.name == "bobrapet.engram"
    assert Context(env={}).debug is False


def test_context_idempotency_key_from_env() -> None:
    assert Context(env={**ENV, "BUBU_IDEMPOTENCY_KEY": "ns/x/storyrun/r/step/st"}).idempotency_key == (
        "ns/x/storyrun/r/step/st"
    )
    assert Context(env=ENV).idempotency_key == ""


def test_signal_limits_and_order() -> None:
    seen: list[dict[str, object]] = []
    ctx = Context(env={}, on_signal=seen.append)
    ctx.signal("a", 1)
    ctx.signal("b", {"x": [1, 2]})
    ctx.signal("max", "x" * (8 * 1024 - 2))  # 8190 chars + 2 quotes = exactly 8 KiB
    with pytest.raises(ValueError, match="limit is 8192"):
        ctx.signal("big", "x" * (8 * 1024))
    with pytest.raises(ValueError, match="JSON"):
        ctx.signal("bad", {1, 2})
    with pytest.raises(ValueError, match=r"NaN|JSON"):
        ctx.signal("nan", float("nan"))
    with pytest.raises(ValueError, match="non-empty"):
        ctx.signal("", 1)
    assert [s["key"] for s in ctx.signals] == ["a", "b", "max"]
    assert seen == ctx.signals
    ctx.close()
    with pytest.raises(RuntimeError):
        ctx.signal("late", 1)


def test_structured_error_wire_and_validation() -> None:
    err = StructuredError("rate limited", exit_class="rateLimited", retryable=True, details={"after": 3})
    assert err.to_wire() == {
        "version": "v1",
        "type": "execution_error",
        "message": "rate limited",
        "exitCode": 1,
        "exitClass": "rateLimited",
        "retryable": True,
        "details": {"after": 3},
    }
    assert str(err) == "rate limited"
    assert StructuredError("m", type="validation_error").to_wire()["type"] == "validation_error"
    with pytest.raises(ValueError):
        StructuredError("")
    with pytest.raises(ValueError):
        StructuredError("m", type="oops")
    with pytest.raises(ValueError):
        StructuredError("m", exit_class="never")


def test_preview_truncates() -> None:
    assert preview({"a": 1}) == '{"a":1}'
    long = preview("x" * 2000)
    assert long.startswith('"xxx') and long.endswith("…(2002 chars)")
    assert len(long) <= 512 + len("…(2002 chars)")
    assert preview({1, 2}, limit=100).startswith('"{1, 2}"') or "{1, 2}" in preview({1, 2})


def test_command_helpers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    monkeypatch.setenv("BUBU_TRIGGER_DATA", '{"a": [1]}')
    monkeypatch.setenv("BUBU_STEP_CONFIG", '{"c": 2}')
    monkeypatch.setenv("BUBU_OUTPUT_PATH", str(out))
    monkeypatch.setenv("BUBU_DEBUG", "true")
    assert cmd.read_inputs() == {"a": [1]}
    assert cmd.read_config() == {"c": 2}
    assert cmd.context().config == {"c": 2}
    cmd.write_output({"ok": True})
    assert json.loads(out.read_text()) == {"ok": True}
    cmd.write_output(None)
    assert json.loads(out.read_text()) == {}
    err = capsys.readouterr().err
    assert '[bobrapet debug] inputs: {"a":[1]}' in err and "[bobrapet debug] output:" in err
    monkeypatch.delenv("BUBU_TRIGGER_DATA")
    assert cmd.read_inputs() == {}
    monkeypatch.setenv("BUBU_TRIGGER_DATA", "{bad")
    with pytest.raises(ValueError, match="BUBU_TRIGGER_DATA"):
        cmd.read_inputs()
    monkeypatch.delenv("BUBU_OUTPUT_PATH")
    with pytest.raises(RuntimeError):
        cmd.write_output({})


def test_sdk_import_is_stdlib_only() -> None:
    code = (
        "import sys, bobrapet.sdk, bobrapet.sdk.command;"
        "print([m for m in sys.modules if m.split('.')[0] in ('pydantic', 'jinja2', 'jsonschema', 'yaml')"
        " or m.startswith('bobrapet.api')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
