"""Primitive step kinds (reference §2.5, with Bobrapet's deliberate differences).

Each module exposes ``launch(ctx, node)`` — called once the step is ready (dependencies
done, ``if`` true) — and ``refresh(ctx, node, state)`` — called on every plan while the
step is started and not terminal. Both only touch ``ctx`` (states, plan actions, wake-ups).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bobrapet.engine.primitives import condition, execute_story, gate, parallel, sleep, stop, wait

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node

Launch = Callable[["Context", "Node"], None]
Refresh = Callable[["Context", "Node", Mapping[str, Any]], None]

LAUNCH: dict[str, Launch] = {
    "condition": condition.launch,
    "parallel": parallel.launch,
    "sleep": sleep.launch,
    "stop": stop.launch,
    "executeStory": execute_story.launch,
    "wait": wait.launch,
    "gate": gate.launch,
}
REFRESH: dict[str, Refresh] = {
    "condition": condition.refresh,
    "parallel": parallel.refresh,
    "sleep": sleep.refresh,
    "stop": stop.refresh,
    "executeStory": execute_story.refresh,
    "wait": wait.refresh,
    "gate": gate.refresh,
}
