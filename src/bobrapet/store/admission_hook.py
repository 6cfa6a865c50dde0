"""The seam between a store backend and admission (DESIGN contract 6).

A store that admits objects itself (the embedded SQLite store) calls an
:class:`Admission` before every create and update (never for status writes),
passing the prepared object (status dropped or carried over, system metadata
filled in) and the stored object for updates. Admission returns the object to
store (possibly defaulted) and warnings, or raises a
:class:`~bobrapet.api.errors.StatusError` (usually ``Invalid``); nothing is
written when it raises.

An admission may also offer ``admit_trusted`` (:class:`TrustedAdmission`): the store
calls it instead for ``create(..., trusted=True)``, which controllers use for objects
the engine built from admitted objects (a Story's StepRuns). It returns ``None`` when
the kind has no short path, and the store then admits the object fully.

Admission reads other objects only through a :class:`Lookup`; the store exposes
one as ``client.lookup``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from bobrapet.api.admission.lookup import Lookup

__all__ = ["Admission", "Lookup", "TrustedAdmission"]


class Admission(Protocol):
    async def __call__(
        self, obj: dict[str, Any], old: dict[str, Any] | None, *, subresource: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        """Return ``(admitted object, warnings)`` or raise a StatusError."""
        ...


@runtime_checkable
class TrustedAdmission(Protocol):
    def admit_trusted(self, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
        """Admit an engine-built object cheaply; ``None``: admit it fully instead.

        ``obj`` is the store's private copy (it may be defaulted in place and returned); when
        the answer is ``None`` it must be left unchanged (the store admits it fully).
        """
        ...
