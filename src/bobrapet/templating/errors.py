"""User-facing evaluation errors.

Invariants:

* ``str(error)`` is a one-line, user-readable message (no traceback):
  ``[<path>: ]<message>[ (in '<template text>')]``.
* :class:`Blocked` means "the data is not there yet": callers wait and retry, they never
  fail the step because of it. :class:`Offloaded` means "the data is in storage": callers
  hydrate the variables (or fail, per policy) and retry.
* ``path`` is the field path of the failing string inside the rendered value
  (``with.items[2]``); the evaluator records it while unwinding (``trail``, innermost key
  first) and :func:`~bobrapet.templating.render.render` joins it once. ``source`` is the
  template text, recorded once by the innermost evaluation.
"""

from __future__ import annotations


class TemplateError(Exception):
    """An expression could not be evaluated; ``message`` says why, ``path`` says where."""

    def __init__(self, message: str, *, path: str | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.source = source
        self.trail: list[str | int] = []

    def within(self, source: str) -> TemplateError:
        """Record the template text (only if none is recorded yet) and return ``self``."""
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.source is not None:
            short = self.source if len(self.source) <= 120 else self.source[:119] + "…"
            text += f" (in {short!r})"
        return text


class Blocked(TemplateError):
    """Evaluation needs the output of ``step``, which is not available yet."""

    def __init__(self, step: str, message: str | None = None, *, path: str | None = None) -> None:
        super().__init__(message or f"waiting for step '{step}': its output is not available yet", path=path)
        self.step = step


class Offloaded(TemplateError):
    """The expression needs the content of data offloaded to storage (``ref``): hydrate and retry."""

    def __init__(self, ref: str, message: str | None = None) -> None:
        super().__init__(
            message
            or f"the value is offloaded to storage ({ref}) and must be hydrated before use in an expression"
        )
        self.ref = ref
