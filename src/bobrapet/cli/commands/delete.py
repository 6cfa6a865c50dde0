"""``bobrapet delete KIND NAME...`` and ``bobrapet delete -f PATH...``."""

from __future__ import annotations

from typing import Annotated

import typer

from bobrapet.api import kinds
from bobrapet.api.errors import NotFound, StatusError
from bobrapet.api.kinds import Kind
from bobrapet.cli.app import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, app, fail, state
from bobrapet.cli.commands.common import load_documents, namespace_option, resolve_kind, run
from bobrapet.cli.embedded import ControlPlane


@app.command("delete")
def delete_command(
    args: Annotated[list[str] | None, typer.Argument(metavar="[KIND NAME...]")] = None,
    filenames: Annotated[
        list[str] | None,
        typer.Option("--filename", "-f", help="Delete the objects named in these manifests."),
    ] = None,
    namespace: Annotated[str | None, namespace_option()] = None,
    ignore_not_found: Annotated[
        bool, typer.Option("--ignore-not-found", help="Treat missing objects as deleted.")
    ] = False,
) -> None:
    """Delete resources by kind and name, or those named in manifests (owned objects cascade)."""
    targets: list[tuple[Kind, str, str | None]] = []
    if filenames:
        if args:
            raise fail("give either KIND NAME... or -f PATH, not both", EXIT_USAGE)
        for doc in reversed(load_documents(filenames, "delete")):
            obj = doc.obj if isinstance(doc.obj, dict) else {}
            kind = kinds.for_object(str(obj.get("apiVersion")), str(obj.get("kind")))
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else None
            if kind is None or not meta or not meta.get("name"):
                raise fail(f"{doc.where()}: document names no known kind and name", EXIT_REJECTED)
            current = meta.get("namespace")
            if kind.namespaced and namespace and current and current != namespace:
                raise fail(
                    f'{doc.where()}: the namespace of the object ("{current}") does not match '
                    f'--namespace "{namespace}"',
                    EXIT_REJECTED,
                )
            ns = (current or namespace or "default") if kind.namespaced else None
            targets.append((kind, str(meta["name"]), ns))
    else:
        if not args or len(args) < 2:
            raise fail("usage: bobrapet delete KIND NAME... (or -f PATH)", EXIT_USAGE)
        kind = resolve_kind(args[0])
        ns = (namespace or "default") if kind.namespaced else None
        targets = [(kind, name, ns) for name in args[1:]]
    failures = run(_delete_all(targets, ignore_not_found))
    raise typer.Exit(EXIT_REJECTED if failures else EXIT_OK)


async def _delete_all(targets: list[tuple[Kind, str, str | None]], ignore_not_found: bool) -> int:
    failures = 0
    async with ControlPlane(state.home) as plane:
        if not plane.exists:
            if ignore_not_found:
                return 0
            for kind, name, _ in targets:
                state.err.print(f"error: {NotFound(kind.kind, name, kind.group or None)}", markup=False)
            return len(targets)
        deleted: list[tuple[Kind, str, str | None]] = []
        for kind, name, ns in targets:
            try:
                await plane.client.delete(kind, name, ns)
            except NotFound as err:
                if not ignore_not_found:
                    failures += 1
                    state.err.print(f"error: {err}", markup=False, highlight=False)
                continue
            except StatusError as err:
                failures += 1
                state.err.print(f"error: {err}", markup=False, highlight=False)
                continue
            deleted.append((kind, name, ns))
        # Controllers remove their finalizers; report what is really gone afterwards.
        await plane.settle()
        for kind, name, ns in deleted:
            state.out.print(await _outcome(plane, kind, name, ns), markup=False, highlight=False)
    return failures


async def _outcome(plane: ControlPlane, kind: Kind, name: str, namespace: str | None) -> str:
    """``kind/name deleted``, or why the object still exists (finalizers nobody removes)."""
    label = f"{kind.singular}/{name}"
    try:
        obj = await plane.client.get(kind, name, namespace)
    except NotFound:
        return f"{label} deleted"
    pending = (obj.get("metadata") or {}).get("finalizers") or []
    return f"{label} marked for deletion; waiting for finalizers: {', '.join(map(str, pending))}"
