"""``condition``: its own ``if`` decides; true → Succeeded at once, false → Skipped.

Invariant (deliberate difference): a condition Skipped because its ``if`` was false makes
every transitive dependent Skipped too (see ``readiness``); it produces no output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from bobrapet.engine.context import Context
    from bobrapet.engine.dag import Node

DONE_MESSAGE: Final = "Primitive evaluated and outputs are available."
FALSE_MESSAGE: Final = "Condition evaluated to false."


def launch(ctx: Context, node: Node) -> None:
    ctx.set_state(node.name, "Succeeded", DONE_MESSAGE)


def refresh(ctx: Context, node: Node, state: Mapping[str, Any]) -> None:
    launch(ctx, node)
