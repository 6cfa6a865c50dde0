"""Engrams calling ctx.trigger_story (the executor's trigger-frame tests)."""

from __future__ import annotations

from typing import Any

from bobrapet.sdk import Context, TriggerRejected


def trigger(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    first = ctx.trigger_story("child", {"n": inputs.get("n", 1)}, key=inputs.get("key"))
    again = ctx.trigger_story("child", {"n": inputs.get("n", 1)}, wait=False)
    return {
        "trigger": first.trigger,
        "decision": first.decision,
        "run": first.story_run,
        "again": [again.decision, again.story_run],
    }


async def trigger_async(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    result = await ctx.trigger_story_async("child", {"async": True}, namespace="other")
    return {"run": result.story_run, "namespace": result.namespace}


def rejected(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    try:
        ctx.trigger_story("child", {})
    except TriggerRejected as err:
        return {"reason": err.reason, "message": str(err), "exitClass": err.exit_class}
    return {}


def uncaught(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    ctx.trigger_story("missing", {})
    return {}
