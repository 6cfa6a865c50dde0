"""Admission: defaulting and validation for every kind (DESIGN contract 6).

The same code runs in the embedded store on create/update, in ``bobrapet
validate`` and behind the Kubernetes admission webhook. It never touches a
backend directly: references to other objects are read through a
:class:`Lookup` the caller supplies.

Contract::

    result = await admit(obj, old=None, lookup=lookup, config=AdmissionConfig())
    result.object    # the defaulted object (wire form, camelCase)
    result.warnings  # human-readable warnings (admission still succeeded)

``admit`` raises :class:`bobrapet.api.errors.Invalid` (one ``Cause`` per field
problem, ``field`` a path such as ``spec.steps[1].needs[0]``) or
:class:`bobrapet.api.errors.BadRequest` (unknown apiVersion/kind, not a mapping).

Pass ``subresource="status"`` for status writes (only status rules apply).
:class:`MemoryLookup` is a dict-backed Lookup for tests and offline validation.
:func:`admit_trusted` is the short path for objects the engine built itself
(see :mod:`.trusted`).

The names are loaded on first use: importing the package (or its light modules such as
:mod:`.lookup`, which the store imports) does not load every kind's rules, jsonschema and
the template analyser; commands that never write start faster.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bobrapet.api.admission.config import AdmissionConfig
    from bobrapet.api.admission.lookup import Lookup, MemoryLookup
    from bobrapet.api.admission.pipeline import Admitted, admit
    from bobrapet.api.admission.trusted import admit_trusted

__all__ = ["AdmissionConfig", "Admitted", "Lookup", "MemoryLookup", "admit", "admit_trusted"]

_HOMES = {
    "AdmissionConfig": "config",
    "Lookup": "lookup",
    "MemoryLookup": "lookup",
    "Admitted": "pipeline",
    "admit": "pipeline",
    "admit_trusted": "trusted",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
