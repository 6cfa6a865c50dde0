"""ctx.trigger_story outside an engine (recorded in memory) and the wire of its replies."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

import pytest

from bobrapet.sdk import (
    Context,
    MemoryTriggers,
    StoryNotFound,
    TriggerError,
    TriggerPending,
    TriggerRejected,
    TriggerResult,
)
from bobrapet.sdk.triggers import FAILED, NOT_FOUND, PENDING, REJECTED, result_of


def test_calls_are_recorded_and_decided_in_memory() -> None:
    memory = MemoryTriggers()
    ctx = Context(
        env={"BUBU_TRIGGER_TOKEN": "", "BUBU_TRIGGER_RETRY_MAX_ATTEMPTS": "2", "OTHER": "x"}, triggers=memory
    )
    first = ctx.trigger_story("child", {"n": 1})
    assert first == TriggerResult("child-1-trigger", "default", "Created", "child-1")
    assert ctx.trigger_story("child", {"n": 2}).story_run == "child-2"
    assert ctx.trigger_story("child", {"n": 1}).story_run == "child-3"  # the second identical call
    assert [c["call"] for c in memory.calls] == [1, 1, 2]
    assert memory.calls[0] == {
        "story": "child",
        "inputs": {"n": 1},
        "wait": True,
        "call": 1,
        "env": {"BUBU_TRIGGER_RETRY_MAX_ATTEMPTS": "2"},  # only the delivery policy, set values only
    }


def test_a_key_gives_the_same_run_and_refuses_other_inputs() -> None:
    ctx = Context(env={})  # outside an engine: MemoryTriggers by default
    first = ctx.trigger_story("child", {"n": 1}, key="k1")
    assert ctx.trigger_story("child", {"n": 1}, key="k1") == first
    with pytest.raises(TriggerError, match="already used") as err:
        ctx.trigger_story("child", {"n": 2}, key="k1")
    assert err.value.exit_class == "terminal"


def test_known_stories_and_wait() -> None:
    ctx = Context(env={}, triggers=MemoryTriggers(stories={"child"}))
    with pytest.raises(StoryNotFound, match='story "nope" not found in namespace "default"'):
        ctx.trigger_story("nope")
    assert ctx.trigger_story("child", wait=False).decision is None


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("",), {}, "story must be a non-empty string"),
        (("s", [1]), {}, "inputs must be a mapping"),
        (("s", {"x": object()}), {}, "inputs must be JSON data"),
        (("s",), {"key": ""}, "key must be a non-empty string"),
        (("s",), {"key": "k" * 257}, "key must be at most 256 characters"),
        (("s",), {"namespace": ""}, "namespace must be a non-empty string"),
    ],
)
def test_bad_calls_raise_where_they_are_made(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    memory = MemoryTriggers()
    with pytest.raises(ValueError, match=message):
        Context(env={}, triggers=memory).trigger_story(*args, **kwargs)
    assert memory.calls == []


def test_a_closed_context_refuses_triggers() -> None:
    ctx = Context(env={})
    ctx.close()
    with pytest.raises(RuntimeError, match="stories can no longer be triggered"):
        ctx.trigger_story("child")


def test_async_form() -> None:
    async def main() -> TriggerResult:
        return await Context(env={}).trigger_story_async("child", {"a": 1}, namespace="other")

    assert asyncio.run(main()).story_run == "child-1"


def test_the_async_form_does_not_block_the_loop() -> None:
    class Slow:
        def __init__(self) -> None:
            self.future: Future[dict[str, Any]] = Future()

        def call(self, payload: dict[str, Any]) -> Future[dict[str, Any]]:
            return self.future

    slow = Slow()

    async def main() -> TriggerResult:
        task = asyncio.ensure_future(Context(env={}, triggers=slow).trigger_story_async("child"))
        await asyncio.sleep(0.01)  # the loop runs while the call waits
        slow.future.set_result({"trigger": "t", "namespace": "ns", "decision": "Reused", "storyRun": "r"})
        return await task

    assert asyncio.run(main()) == TriggerResult("t", "ns", "Reused", "r")


@pytest.mark.parametrize(
    ("reply", "error", "exit_class"),
    [
        ({"error": "no", "kind": REJECTED, "reason": "StoryRunConflict"}, TriggerRejected, "terminal"),
        ({"error": "no", "kind": NOT_FOUND}, StoryNotFound, "terminal"),
        ({"error": "no", "kind": PENDING}, TriggerPending, "retry"),
        ({"error": "no", "kind": FAILED, "terminal": True}, TriggerError, "terminal"),
        ({"error": "no"}, TriggerError, "retry"),  # an engine error: retryable
    ],
)
def test_error_replies_become_exceptions(
    reply: dict[str, Any], error: type[TriggerError], exit_class: str
) -> None:
    with pytest.raises(error, match=r"^no$") as raised:
        result_of(reply)
    assert type(raised.value) is error
    assert raised.value.exit_class == exit_class
    if isinstance(raised.value, TriggerRejected):
        assert raised.value.reason == "StoryRunConflict"
        assert raised.value.to_wire()["code"] == "TriggerRejected"
