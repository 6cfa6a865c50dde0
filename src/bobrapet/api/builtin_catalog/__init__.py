"""The ImpulseTemplates that ship with bobrapet (package data: one YAML manifest per template).

``bobrapet catalog install`` applies them through the normal admission path; each names the
runtime that runs it in ``spec.entrypoint`` (``bobrapet.impulses.<module>:<Class>``).

Invariants: every file here is one complete ImpulseTemplate manifest, labelled
``bobrapet.bubustack.io/builtin: "true"`` (:data:`BUILTIN_LABEL`), whose name is the file's
stem; :func:`builtin_documents` returns them in name order, freshly parsed (callers may
change them).
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Final

from bobrapet.api.manifest import Document, parse_text

#: Label marking a template shipped with bobrapet.
BUILTIN_LABEL: Final = "bobrapet.bubustack.io/builtin"


def builtin_documents() -> list[Document]:
    """The built-in templates as manifest documents (source ``builtin:<file>``)."""
    folder = resources.files(__name__)
    docs: list[Document] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            docs.extend(parse_text(entry.read_text(encoding="utf-8"), f"builtin:{entry.name}"))
    return docs


def builtin_names() -> list[str]:
    """Names of the built-in templates, sorted."""
    return [str(doc.obj["metadata"]["name"]) for doc in builtin_documents()]


def is_builtin(obj: dict[str, Any]) -> bool:
    """Whether a stored template carries the built-in label."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(BUILTIN_LABEL) == "true"
