"""Trigger frames between a warm worker and the engine: ctx.trigger_story in a Python engram is
answered by the request's triggers port (a recording fake here)."""

from __future__ import annotations

import asyncio
import dataclasses
import os

from bobrapet.execution.triggers import StepTriggerError, TriggerAnswer, TriggerCall
from bobrapet.executors.local import LocalExecutor
from bobrapet.sdk.triggers import NOT_FOUND, REJECTED

E = "engrams.triggers"


class FakeTriggers:
    """A StepTriggers recording calls; ``error`` is raised for every call when set."""

    def __init__(self, error: StepTriggerError | None = None, delay: float = 0.0) -> None:
        self.calls: list[TriggerCall] = []
        self.error = error
        self.delay = delay

    async def trigger(self, call: TriggerCall) -> TriggerAnswer:
        self.calls.append(call)
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        run = f"{call.story}-{len(self.calls)}"
        if not call.wait:
            return TriggerAnswer(f"{run}-trigger", "default")
        return TriggerAnswer(f"{run}-trigger", call.namespace or "default", "Created", run)


async def test_a_trigger_call_reaches_the_port_and_its_answer_the_engram(
    executor: LocalExecutor, make_request
) -> None:
    triggers = FakeTriggers(delay=0.2)  # the engine answers in a background task
    request = make_request("a", f"{E}:trigger", inputs={"n": 3, "key": "k1"})
    request = dataclasses.replace(request, env={**request.env, "BUBU_TRIGGER_RETRY_MAX_ATTEMPTS": "3"})
    result = await executor.run(dataclasses.replace(request, triggers=triggers))
    assert result.phase == "Succeeded", result.message
    assert result.output == {
        "trigger": "child-1-trigger",
        "decision": "Created",
        "run": "child-1",
        "again": [None, None],
    }
    first, again = triggers.calls
    assert (first.story, first.inputs, first.key, first.wait, first.call) == (
        "child",
        {"n": 3},
        "k1",
        True,
        1,
    )
    assert first.env == {"BUBU_TRIGGER_RETRY_MAX_ATTEMPTS": "3"}  # the step's environment, not the worker's
    assert (again.key, again.wait, again.call) == (None, False, 2)  # the same call again: index 2
    assert "BUBU_TRIGGER_RETRY_MAX_ATTEMPTS" not in os.environ


async def test_async_engram_trigger(executor: LocalExecutor, make_request) -> None:
    triggers = FakeTriggers()
    result = await executor.run(
        dataclasses.replace(make_request("a", f"{E}:trigger_async"), triggers=triggers)
    )
    assert result.output == {"run": "child-1", "namespace": "other"}
    assert triggers.calls[0].namespace == "other"


async def test_a_rejection_is_an_exception_with_its_reason(executor: LocalExecutor, make_request) -> None:
    error = StepTriggerError(
        'storytrigger "t" was rejected (InputTooLarge): too big', kind=REJECTED, reason="InputTooLarge"
    )
    triggers = FakeTriggers(error)
    result = await executor.run(dataclasses.replace(make_request("a", f"{E}:rejected"), triggers=triggers))
    assert result.output == {
        "reason": "InputTooLarge",
        "message": 'storytrigger "t" was rejected (InputTooLarge): too big',
        "exitClass": "terminal",
    }


async def test_an_uncaught_trigger_error_fails_the_step_terminally(
    executor: LocalExecutor, make_request
) -> None:
    error = StepTriggerError('story "missing" not found in namespace "default"', kind=NOT_FOUND)
    result = await executor.run(
        dataclasses.replace(make_request("a", f"{E}:uncaught"), triggers=FakeTriggers(error))
    )
    assert result.phase == "Failed" and result.exit_class == "terminal"
    assert result.message == 'story "missing" not found in namespace "default"'
    assert result.error is not None and result.error["code"] == "StoryNotFound"


async def test_without_a_triggers_port_the_step_fails_terminally(
    executor: LocalExecutor, make_request
) -> None:
    result = await executor.run(make_request("a", f"{E}:uncaught"))
    assert result.phase == "Failed" and result.exit_class == "terminal"
    assert "triggering stories is not available for this step" in (result.message or "")
