"""``bobrapet validate -f PATH...``: run admission only; nothing is stored."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bobrapet.api import kinds
from bobrapet.api.admission.lookup import Lookup, MemoryLookup
from bobrapet.api.errors import StatusError
from bobrapet.api.kinds import Kind
from bobrapet.api.manifest import Document
from bobrapet.cli.app import EXIT_OK, EXIT_REJECTED, app, state
from bobrapet.cli.commands.apply import place_in_namespace
from bobrapet.cli.commands.common import (
    load_documents,
    namespace_option,
    object_label,
    run,
    sorted_for_apply,
)
from bobrapet.cli.errors import format_status_error
from bobrapet.host.embedded import ControlPlane


class ManifestLookup:
    """Admission lookups answered from the manifests being validated, then from the store.

    Lets ``validate`` check an Engram against an EngramTemplate defined in the
    same set of files, whether or not anything was applied before.
    """

    def __init__(self, docs: list[Document], fallback: Lookup | None) -> None:
        self.fallback = fallback
        self.manifests = MemoryLookup(
            doc.obj
            for doc in docs
            if isinstance(doc.obj, dict)
            and isinstance(doc.obj.get("metadata"), dict)
            and doc.obj["metadata"].get("name")
            and kinds.for_object(str(doc.obj.get("apiVersion")), str(doc.obj.get("kind"))) is not None
        )

    async def get(self, kind: Kind, name: str, namespace: str | None) -> dict[str, Any] | None:
        found = await self.manifests.get(kind, name, namespace)
        if found is not None or self.fallback is None:
            return found
        return await self.fallback.get(kind, name, namespace)

    async def list(self, kind: Kind, namespace: str | None) -> list[dict[str, Any]]:
        ours = await self.manifests.list(kind, namespace)
        if self.fallback is None:
            return ours
        names = {o["metadata"]["name"] for o in ours}
        theirs = await self.fallback.list(kind, namespace)
        return ours + [o for o in theirs if o["metadata"]["name"] not in names]


@app.command("validate")
def validate_command(
    filenames: Annotated[
        list[str],
        typer.Option("--filename", "-f", help="File, directory or - (stdin); repeatable."),
    ],
    namespace: Annotated[str | None, namespace_option()] = None,
) -> None:
    """Check manifests with the same admission rules as apply, without storing anything."""
    docs = sorted_for_apply(load_documents(filenames, "validate"))
    failures = run(_validate_all(docs, namespace))
    raise typer.Exit(EXIT_REJECTED if failures else EXIT_OK)


async def _validate_all(docs: list[Document], namespace: str | None) -> int:
    from bobrapet.api.admission import admit

    failures = 0
    placed: list[Document] = []
    for doc in docs:
        # The same namespace rules as apply, before the lookup indexes the documents.
        obj = doc.obj
        kind = None
        if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
            kind = kinds.for_object(str(obj.get("apiVersion")), str(obj.get("kind")))
        if kind is not None:
            try:
                place_in_namespace(kind, obj, namespace)
            except StatusError as err:
                failures += 1
                for line in format_status_error(err, doc):
                    state.err.print(line, markup=False, highlight=False)
                continue
        placed.append(doc)
    async with ControlPlane(state.home) as plane:
        fallback = plane.client.lookup if plane.exists else None
        lookup = ManifestLookup(placed, fallback)
        for doc in placed:
            obj = doc.obj
            try:
                result = await admit(obj, None, lookup, plane.config)
            except StatusError as err:
                failures += 1
                for line in format_status_error(err, doc):
                    state.err.print(line, markup=False, highlight=False)
                continue
            for warning in result.warnings:
                state.err.print(f"warning: {object_label(doc)}: {warning}", markup=False)
            state.out.print(f"{object_label(doc)} valid", markup=False, highlight=False)
    return failures
