"""``bobrapet apply -f PATH...``: create or update objects in the embedded control plane."""

from __future__ import annotations

import copy
import json
from typing import Annotated, Any

import typer
from rich.console import Console

from bobrapet.api import kinds
from bobrapet.api.errors import BadRequest, NotFound, StatusError
from bobrapet.api.manifest import Document
from bobrapet.cli.app import EXIT_OK, EXIT_REJECTED, app, state
from bobrapet.cli.commands.common import (
    load_documents,
    namespace_option,
    run,
    sorted_for_apply,
)
from bobrapet.cli.errors import format_status_error
from bobrapet.host.embedded import ControlPlane
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.store.client import Client

# Top-level keys a manifest owns (besides metadata); status is never applied.
_OWNED_KEYS = ("spec", "data", "binaryData", "stringData", "type", "immutable")
# Which label/annotation keys the last apply set, so a key removed from the manifest is
# removed from the object while keys others added (controllers, other tools) are kept.
LAST_APPLIED = "bobrapet.bubustack.io/last-applied-keys"
_MAPS = ("labels", "annotations")


def _applied_keys(meta: dict[str, Any]) -> str:
    keys = {m: sorted(k for k in (meta.get(m) or {}) if k != LAST_APPLIED) for m in _MAPS}
    return json.dumps(keys, separators=(",", ":"))


def _record_applied_keys(meta: dict[str, Any]) -> None:
    annotations = meta.get("annotations")
    annotations = dict(annotations) if isinstance(annotations, dict) else {}
    annotations[LAST_APPLIED] = _applied_keys(meta)
    meta["annotations"] = annotations


def _previously_applied(existing_meta: dict[str, Any]) -> dict[str, list[str]]:
    raw = (existing_meta.get("annotations") or {}).get(LAST_APPLIED)
    try:
        value = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        value = {}
    return (
        {m: [k for k in value.get(m, []) if isinstance(k, str)] for m in _MAPS}
        if isinstance(value, dict)
        else {}
    )


def _merge_map(current: Any, desired: Any, previously: list[str]) -> dict[str, Any]:
    """Three-way merge of a label/annotation map (what ``kubectl apply`` does)."""
    wanted = desired if isinstance(desired, dict) else {}
    merged = {
        k: v
        for k, v in (current if isinstance(current, dict) else {}).items()
        if k in wanted or k not in previously
    }
    merged.update(wanted)
    return merged


def place_in_namespace(kind: kinds.Kind, obj: dict[str, Any], namespace: str | None) -> None:
    """Apply ``-n`` and the default namespace; reject a conflicting namespace."""
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict) or not kind.namespaced:
        return
    current = meta.get("namespace")
    if namespace and current and current != namespace:
        raise BadRequest(
            f'the namespace of the object ("{current}") does not match --namespace "{namespace}"'
        )
    meta["namespace"] = current or namespace or "default"


def _update_body(kind: kinds.Kind, existing: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The existing object with what the manifest owns replaced by the manifest's values."""
    body = copy.deepcopy(existing)
    body.pop("status", None)
    for key in _OWNED_KEYS:
        if key in desired:
            body[key] = desired[key]
        else:
            body.pop(key, None)
    meta = desired.get("metadata") or {}
    previously = _previously_applied(body["metadata"])
    for key in _MAPS:
        merged = _merge_map(body["metadata"].get(key), meta.get(key), previously.get(key, []))
        if merged:
            body["metadata"][key] = merged
        else:
            body["metadata"].pop(key, None)
    for key in ("finalizers", "ownerReferences"):
        if key in meta:
            body["metadata"][key] = meta[key]
    if isinstance(meta.get("finalizers"), list) and kind.finalizer:
        # The controller's own finalizer is not the manifest's to remove: dropping it
        # would make every re-apply a write (and the controller add it back at once).
        stored = (existing.get("metadata") or {}).get("finalizers") or []
        if kind.finalizer in stored and kind.finalizer not in meta["finalizers"]:
            body["metadata"]["finalizers"] = [*meta["finalizers"], kind.finalizer]
    return body


async def apply_one(
    client: Client, doc: Document, namespace: str | None, dry_run: bool
) -> tuple[str, str, list[str]]:
    """Create or update one object; returns (verb, ``kind/name``, warnings)."""
    obj = doc.obj
    kind = (
        kinds.for_object(str(obj.get("apiVersion")), str(obj.get("kind"))) if isinstance(obj, dict) else None
    )
    if kind is None or not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        # Admission produces the precise message (not a mapping, unknown kind, no metadata).
        from bobrapet.api.admission import admit

        await admit(obj, None, client_lookup(client))
        raise BadRequest("cannot apply this document: it names no known apiVersion/kind")
    obj = copy.deepcopy(obj)
    place_in_namespace(kind, obj, namespace)
    _record_applied_keys(obj["metadata"])
    # Controllers (``bobrapet serve``) may write the object between our read and our
    # update: re-read and try again on Conflict, as ``kubectl apply`` does.
    return await retry_on_conflict(lambda: _create_or_update(client, kind, obj, dry_run))


async def _create_or_update(
    client: Client, kind: kinds.Kind, obj: dict[str, Any], dry_run: bool
) -> tuple[str, str, list[str]]:
    warnings: list[str] = []
    meta = obj["metadata"]
    existing = None
    if meta.get("name"):
        try:
            existing = await client.get(kind, meta["name"], meta.get("namespace"))
        except NotFound:
            existing = None
    if existing is None:
        created = await client.create(obj, dry_run=dry_run, warnings=warnings)
        return "created", f"{kind.singular}/{created['metadata'].get('name')}", warnings
    result = await client.update(_update_body(kind, existing, obj), dry_run=dry_run, warnings=warnings)
    same = result["metadata"].get("resourceVersion") == existing["metadata"].get("resourceVersion")
    label = f"{kind.singular}/{meta['name']}"
    return ("unchanged" if same else "configured"), label, warnings


def client_lookup(client: Client) -> Any:
    return client.lookup  # type: ignore[attr-defined]


@app.command("apply")
def apply_command(
    filenames: Annotated[
        list[str],
        typer.Option("--filename", "-f", help="File, directory or - (stdin); repeatable."),
    ],
    namespace: Annotated[str | None, namespace_option()] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show what would change; store nothing.")
    ] = False,
) -> None:
    """Create or update resources from YAML/JSON manifests (all documents, in dependency order)."""
    docs = sorted_for_apply(load_documents(filenames, "apply"))
    failures = run(_apply_all(docs, namespace, dry_run))
    raise typer.Exit(EXIT_REJECTED if failures else EXIT_OK)


async def apply_documents(
    client: Client, docs: list[Document], namespace: str | None, *, dry_run: bool, out: Console
) -> int:
    """Apply every document, printing ``kind/name verb`` to ``out`` (errors and warnings to
    stderr); returns how many were rejected."""
    failures = 0
    suffix = " (dry run)" if dry_run else ""
    for doc in docs:
        try:
            verb, label, warnings = await apply_one(client, doc, namespace, dry_run)
        except StatusError as err:
            failures += 1
            for line in format_status_error(err, doc):
                state.err.print(line, markup=False, highlight=False)
            continue
        for warning in warnings:
            state.err.print(f"warning: {label}: {warning}", markup=False, highlight=False)
        out.print(f"{label} {verb}{suffix}", markup=False, highlight=False)
    return failures


async def _apply_all(docs: list[Document], namespace: str | None, dry_run: bool) -> int:
    async with ControlPlane(state.home) as plane:
        failures = await apply_documents(plane.client, docs, namespace, dry_run=dry_run, out=state.out)
        if not dry_run:
            await plane.settle()
    return failures
