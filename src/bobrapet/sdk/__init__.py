"""bobrapet.sdk: what engram code imports (standard library only, cheap to import).

``Context`` is the ``ctx`` of a Python engram; ``StructuredError`` lets user code choose the
recorded error type, exit class and retryability; ``EffectResult`` is what
``ctx.effect_once`` returns, ``MemoryEffects`` its in-memory record for engram unit tests;
``TriggerResult`` is what ``ctx.trigger_story`` returns (``TriggerRejected``,
``StoryNotFound``, ``TriggerPending`` and their base ``TriggerError`` what it raises),
``MemoryTriggers`` its in-memory record; ``preview`` makes debug previews.
"""

from bobrapet.sdk.context import Context
from bobrapet.sdk.effects import EffectError, EffectResult, MemoryEffects
from bobrapet.sdk.errors import StructuredError
from bobrapet.sdk.preview import preview
from bobrapet.sdk.triggers import (
    MemoryTriggers,
    StoryNotFound,
    TriggerError,
    TriggerPending,
    TriggerRejected,
    TriggerResult,
)

__all__ = [
    "Context",
    "EffectError",
    "EffectResult",
    "MemoryEffects",
    "MemoryTriggers",
    "StoryNotFound",
    "StructuredError",
    "TriggerError",
    "TriggerPending",
    "TriggerRejected",
    "TriggerResult",
    "preview",
]
