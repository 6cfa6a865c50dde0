"""Helpers shared by the commands: kind resolution, manifest loading, async running."""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer

from bobrapet.api import kinds
from bobrapet.api.kinds import Kind
from bobrapet.api.manifest import Document, ManifestError, load
from bobrapet.cli.app import EXIT_REJECTED, EXIT_USAGE, fail

T = TypeVar("T")

# Order in which kinds are applied so references resolve (templates before engrams, …).
APPLY_ORDER = [
    "ConfigMap",
    "Secret",
    "ReferenceGrant",
    "Transport",
    "EngramTemplate",
    "ImpulseTemplate",
    "Engram",
    "Story",
    "Impulse",
    "TransportBinding",
    "StoryTrigger",
    "StoryRun",
    "StepRun",
    "EffectClaim",
]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def resolve_kind(name: str) -> Kind:
    kind = kinds.resolve(name)
    if kind is None:
        close = difflib.get_close_matches(name.lower(), kinds.all_aliases(), n=1)
        hint = f'; did you mean "{close[0]}"?' if close else ""
        raise fail(f'unknown resource type "{name}"{hint} (see: bobrapet api-resources)', EXIT_USAGE)
    return kind


def load_documents(paths: list[str], verb: str) -> list[Document]:
    """Every document of ``paths``; input holding no object at all is an error (exit 1)."""
    if not paths:
        raise fail("no input: pass -f FILE, -f DIR or -f - for stdin", EXIT_USAGE)
    try:
        docs = load(paths)
    except ManifestError as err:
        missing = "no such file or directory" in str(err)
        raise fail(str(err), EXIT_USAGE if missing else EXIT_REJECTED) from None
    if not docs:
        sources = ", ".join("<stdin>" if p == "-" else p for p in paths)
        raise fail(f"no objects passed to {verb}: {sources} holds no YAML or JSON document", EXIT_REJECTED)
    return docs


def apply_rank(doc: Document) -> int:
    kind = doc.obj.get("kind") if isinstance(doc.obj, dict) else None
    return APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)


def sorted_for_apply(docs: list[Document]) -> list[Document]:
    return sorted(docs, key=apply_rank)


def object_label(doc: Document) -> str:
    """``story/hello`` for messages, tolerant of broken documents."""
    obj = doc.obj if isinstance(doc.obj, dict) else {}
    kind = str(obj.get("kind") or "object").lower()
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = (meta or {}).get("name") or (meta or {}).get("generateName") or "<unnamed>"
    return f"{kind}/{name}"


def namespace_option() -> Any:
    return typer.Option("--namespace", "-n", help="Namespace (default: default).")


def complete_kind(incomplete: str) -> list[str]:
    """Shell completion of a KIND argument: plural names first, then the other aliases."""
    short = [n for k in kinds.ALL_KINDS for n in (k.plural, k.singular, *k.short_names)]
    names = short if "." not in incomplete else short + kinds.all_aliases()
    return [n for n in dict.fromkeys(names) if n.startswith(incomplete.lower())]
