"""bobrapet.sdk: what engram code imports (standard library only, cheap to import).

``Context`` is the ``ctx`` of a Python engram; ``StructuredError`` lets user code choose the
recorded error type, exit class and retryability; ``EffectResult`` is what
``ctx.effect_once`` returns, ``MemoryEffects`` its in-memory record for engram unit tests;
``preview`` makes debug previews.
"""

from bobrapet.sdk.context import Context
from bobrapet.sdk.effects import EffectError, EffectResult, MemoryEffects
from bobrapet.sdk.errors import StructuredError
from bobrapet.sdk.preview import preview

__all__ = ["Context", "EffectError", "EffectResult", "MemoryEffects", "StructuredError", "preview"]
