"""bobrapet.sdk: what engram code imports (standard library only, cheap to import).

``Context`` is the ``ctx`` of a Python engram; ``StructuredError`` lets user code choose the
recorded error type, exit class and retryability; ``preview`` makes debug previews.
"""

from bobrapet.sdk.context import Context
from bobrapet.sdk.errors import StructuredError
from bobrapet.sdk.preview import preview

__all__ = ["Context", "StructuredError", "preview"]
