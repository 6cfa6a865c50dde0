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
"""

from bobrapet.api.admission.config import AdmissionConfig
from bobrapet.api.admission.lookup import Lookup, MemoryLookup
from bobrapet.api.admission.pipeline import Admitted, admit

__all__ = ["AdmissionConfig", "Admitted", "Lookup", "MemoryLookup", "admit"]
