"""Log output of a CLI process: one ``warning: ...`` line per record, no tracebacks.

Controllers run inside commands that write (``apply``, ``delete`` settle them); their
log records must not reach the terminal as Python tracebacks (that is what ``logging``
prints when nothing is configured). :func:`configure` installs a handler on the
``bobrapet`` logger that prints WARNING and above as single lines on stderr; with
``BOBRAPET_DEBUG=1`` in the environment, exception details are printed too.

Invariant: configuring is idempotent, and does nothing when the host already configured
logging (handlers on the root logger, e.g. a test runner or an embedding program).
"""

from __future__ import annotations

import logging
import os
import sys

_MARK = "_bobrapet_cli_handler"


class LineFormatter(logging.Formatter):
    """``warning: <message>``; the exception text only when ``debug``."""

    def __init__(self, debug: bool) -> None:
        super().__init__()
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        text = f"warning: {record.getMessage()}"
        if self.debug and record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure() -> None:
    """Install the CLI handler (see the module docstring)."""
    if logging.getLogger().handlers:
        return
    logger = logging.getLogger("bobrapet")
    if any(getattr(handler, _MARK, False) for handler in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(LineFormatter(debug=os.environ.get("BOBRAPET_DEBUG", "") not in ("", "0")))
    setattr(handler, _MARK, True)
    logger.addHandler(handler)  # the logger's level is left alone (root's WARNING by default)
