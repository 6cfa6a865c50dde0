"""User-written Python impulses: a child process per Impulse, trigger_story through serve's
sink (policy, dedupe), restarts after a crash or a kill, fatal errors for bad entrypoints."""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path
from typing import Any

from tests.impulses.harness import Home, condition, home, impulse, story

from bobrapet.impulses.process import ChildImpulse

MODULE = """
import json
import os
import pathlib


def twice(ctx):
    first = ctx.trigger_story({"n": 1}, key="same")
    second = ctx.trigger_story({"n": 1}, key="same")
    env = {k: v for k, v in os.environ.items() if k.startswith(("BUBU_", "token_"))}
    report = {"runs": [first.story_run, second.story_run], "decisions": [first.decision, second.decision],
              "env": env, "config": ctx.config, "secrets": ctx.secrets}
    pathlib.Path(ctx.config["out"]).write_text(json.dumps(report))
    while not ctx.sleep(0.05):
        pass


def crashy(ctx):
    marker = pathlib.Path(ctx.config["out"])
    count = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(count + 1))
    if count == 0:
        raise RuntimeError("boom on the first start")
    ctx.trigger_story({"start": count}, key=f"start-{count}")
    while not ctx.sleep(0.05):
        pass


async def asynchronous(ctx):
    result = await ctx.trigger_story_async({"a": 1})
    pathlib.Path(ctx.config["out"]).write_text(json.dumps([result.story_trigger, result.decision]))
    await ctx.wait_stop()
"""


def template(name: str, entrypoint: str) -> dict[str, Any]:
    return {
        "apiVersion": "catalog.bubustack.io/v1alpha1",
        "kind": "ImpulseTemplate",
        "metadata": {"name": name},
        "spec": {
            "version": "1.0.0",
            "supportedModes": ["deployment"],
            "entrypoint": entrypoint,
            "configSchema": {"type": "object", "properties": {"out": {"type": "string"}}},
            "secretSchema": {"token": {"required": False, "expectedKeys": ["value"]}},
        },
    }


def write_module(tmp_path: Path) -> None:
    (tmp_path / "user_impulses.py").write_text(textwrap.dedent(MODULE))


async def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() and path.read_text() else None


async def test_trigger_story_twice_with_one_key_starts_one_run(tmp_path: Path) -> None:
    write_module(tmp_path)
    out = tmp_path / "report.json"
    async with home(tmp_path) as h:
        await h.client.create(story())
        await h.client.create(template("twice", "user_impulses:twice"))
        await h.client.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "tok", "namespace": "default"},
                "stringData": {"value": "hunter22"},
            }
        )
        await h.client.create(
            impulse(
                "user",
                "twice",
                secrets={"token": "tok"},
                execution={"debug": True},
                **{"with": {"out": str(out)}},
            )
        )
        report = await h.until(lambda: read_json(out), "the impulse reported")
        runs = await h.runs()
        assert [r["metadata"]["name"] for r in runs] == [report["runs"][0]] == [report["runs"][1]]
        assert report["decisions"] == ["Created", "Created"]
        env = report["env"]
        assert (env["BUBU_IMPULSE_NAME"], env["BUBU_IMPULSE_NAMESPACE"]) == ("user", "default")
        assert (env["BUBU_TARGET_STORY_NAME"], env["BUBU_TARGET_STORY_NAMESPACE"]) == ("s", "default")
        assert env["BUBU_DEBUG"] == "true"
        assert json.loads(env["BUBU_STEP_CONFIG"]) == {"out": str(out)}
        assert env["BUBU_TRIGGER_DEDUPE_MODE"] == "none"
        assert env["token_value"] == "hunter22"
        assert report["secrets"] == {"token": {"value": "hunter22"}}
        assert runs[0]["spec"]["impulseRef"] == {"name": "user", "namespace": "default"}
        status = await h.status_of("user", lambda s: s.get("phase") == "Running")
        assert condition(status, "Listening")["status"] == "True"


async def test_a_crashed_or_killed_child_is_restarted(tmp_path: Path) -> None:
    write_module(tmp_path)
    marker = tmp_path / "starts"
    async with home(tmp_path) as h:
        await h.client.create(story())
        await h.client.create(template("crashy", "user_impulses:crashy"))
        await h.client.create(impulse("user", "crashy", **{"with": {"out": str(marker)}}))
        await h.until(lambda: _runs(h, 1), "the run of the second start")
        entry = h.supervisor.running[("default", "user")]
        assert entry.supervised is not None and entry.supervised.restarts == 1
        runtime = entry.supervised.runtime
        assert isinstance(runtime, ChildImpulse) and runtime.process is not None
        os.kill(runtime.process.pid, signal.SIGKILL)
        await h.until(lambda: _runs(h, 2), "the run of the third start")
        assert marker.read_text() == "3"
        assert entry.supervised.restarts == 2


async def _runs(h: Home, n: int) -> bool:
    return len(await h.runs()) >= n


async def test_an_async_impulse_and_an_entrypoint_that_does_not_load(tmp_path: Path) -> None:
    write_module(tmp_path)
    out = tmp_path / "async.json"
    async with home(tmp_path) as h:
        await h.client.create(story())
        await h.client.create(template("asynchronous", "user_impulses:asynchronous"))
        await h.client.create(template("ghost", "no_such_module:run"))
        await h.client.create(impulse("user", "asynchronous", **{"with": {"out": str(out)}}))
        await h.client.create(impulse("broken", "ghost"))
        trigger, decision = await h.until(lambda: read_json(out), "the async impulse reported")
        assert trigger.startswith("s-trigger-") and decision == "Created"
        status = await h.status_of("broken", lambda s: s.get("phase") == "Failed")
        message = condition(status, "Ready")["message"]
        assert message.startswith("entrypoint no_such_module:run cannot be loaded")
        assert "ModuleNotFoundError: No module named 'no_such_module'" in message
