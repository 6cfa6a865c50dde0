"""``bobrapet delete``: by ``KIND NAME...``, ``KIND/NAME...`` (the form ``get -o name``
prints), ``KIND --all``, ``KIND -l SELECTOR`` or ``-f PATH...``.

Invariants: every argument is checked before anything is deleted; ``--all`` and ``-l``
need a KIND and no names; deleting a StoryRun also deletes the step logs (and recorded
step inputs) of its StepRuns and of its child runs' StepRuns; deleting StepRuns, StoryRuns
or StoryTriggers removes the blobs they left in storage (:mod:`bobrapet.host.cleanup`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from bobrapet.api import kinds
from bobrapet.api.errors import NotFound, StatusError
from bobrapet.api.kinds import STEP_RUN, STORY_RUN, STORY_TRIGGER, Kind
from bobrapet.cli.app import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, app, fail, state
from bobrapet.cli.commands.common import load_documents, namespace_option, resolve_kind, run
from bobrapet.host.embedded import ControlPlane

Target = tuple[Kind, str, str | None]
#: Kinds whose deletion leaves blobs (and logs) behind in the home.
LEAVES_BLOBS = (STORY_RUN, STEP_RUN, STORY_TRIGGER)


@app.command("delete")
def delete_command(
    args: Annotated[list[str] | None, typer.Argument(metavar="[KIND NAME... | KIND/NAME...]")] = None,
    filenames: Annotated[
        list[str] | None,
        typer.Option("--filename", "-f", help="Delete the objects named in these manifests."),
    ] = None,
    namespace: Annotated[str | None, namespace_option()] = None,
    all_objects: Annotated[
        bool, typer.Option("--all", help="Delete every object of KIND in the namespace.")
    ] = False,
    selector: Annotated[
        str | None,
        typer.Option("--selector", "-l", help="Delete the objects of KIND matching labels, e.g. app=x."),
    ] = None,
    ignore_not_found: Annotated[
        bool, typer.Option("--ignore-not-found", help="Treat missing objects as deleted.")
    ] = False,
) -> None:
    """Delete resources by kind and name, those named in manifests, or all/selected of a kind
    (owned objects cascade; a StoryRun's step logs go with it)."""
    if filenames:
        if args or all_objects or selector:
            raise fail("give either -f PATH or KIND NAME... / KIND --all / KIND -l, not both", EXIT_USAGE)
        targets = _file_targets(filenames, namespace)
        failures = run(_delete_all(targets, ignore_not_found))
    elif all_objects or selector is not None:
        if not args or len(args) != 1 or "/" in args[0]:
            flag = "--all" if all_objects else "-l"
            raise fail(f"usage: bobrapet delete KIND {flag} ... (one KIND, no names)", EXIT_USAGE)
        kind = resolve_kind(args[0])
        ns = (namespace or "default") if kind.namespaced else None
        failures = run(_delete_matching(kind, ns, None if all_objects else selector))
    else:
        targets = _name_targets(args or [], namespace)
        failures = run(_delete_all(targets, ignore_not_found))
    raise typer.Exit(EXIT_REJECTED if failures else EXIT_OK)


def _file_targets(filenames: list[str], namespace: str | None) -> list[Target]:
    targets: list[Target] = []
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
    return targets


def _name_targets(args: list[str], namespace: str | None) -> list[Target]:
    """``KIND NAME...`` or ``KIND/NAME...`` (kinds may differ in the slash form)."""
    usage = "usage: bobrapet delete KIND NAME..., KIND/NAME..., KIND --all, KIND -l SELECTOR or -f PATH"
    if not args:
        raise fail(usage, EXIT_USAGE)
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise fail(f"mix of KIND/NAME and bare names ({' '.join(args)}); {usage}", EXIT_USAGE)
        targets: list[Target] = []
        for arg in args:
            kind_name, _, name = arg.partition("/")
            if not kind_name or not name or "/" in name:
                raise fail(f'"{arg}": expected KIND/NAME, e.g. storyrun/hello-x1y2z', EXIT_USAGE)
            kind = resolve_kind(kind_name)
            targets.append((kind, name, (namespace or "default") if kind.namespaced else None))
        return targets
    if len(args) < 2:
        raise fail(f"{usage} (KIND {args[0]} names no object)", EXIT_USAGE)
    kind = resolve_kind(args[0])
    ns = (namespace or "default") if kind.namespaced else None
    return [(kind, name, ns) for name in args[1:]]


async def _delete_matching(kind: Kind, namespace: str | None, selector: str | None) -> int:
    async with ControlPlane(state.home) as plane:
        if not plane.exists:
            state.err.print("No resources found.", markup=False)
            return 0
        try:
            found = await plane.client.list(kind, namespace, labels=selector)
        except StatusError as err:
            raise fail(f"-l: {err.message}", EXIT_USAGE) from None
    if not found:
        where = f" in {namespace} namespace" if namespace else ""
        state.err.print(f"No resources found{where}.", markup=False)
        return 0
    targets = [(kind, str(o["metadata"]["name"]), namespace) for o in found]
    return await _delete_all(targets, ignore_not_found=True)


async def _delete_all(targets: list[Target], ignore_not_found: bool) -> int:
    async with ControlPlane(state.home) as plane:
        if not plane.exists:
            if ignore_not_found:
                return 0
            for kind, name, _ in targets:
                state.err.print(f"error: {NotFound(kind.kind, name, kind.group or None)}", markup=False)
            return len(targets)
        async with contextlib.AsyncExitStack() as stack:
            if any(kind in LEAVES_BLOBS for kind, _, _ in targets):
                from bobrapet.host.cleanup import cleaning_up

                await stack.enter_async_context(cleaning_up(plane))
            deleted, logs, failures = await _delete_each(plane, targets, ignore_not_found)
            # Controllers remove their finalizers; report what is really gone afterwards.
            await plane.settle()
        for kind, name, ns in deleted:
            state.out.print(await _outcome(plane, kind, name, ns), markup=False, highlight=False)
        if any(kind == STORY_RUN for kind, _, _ in deleted):
            from bobrapet.controllers.steplog import remove_step_logs

            remove_step_logs(logs)
    return failures


async def _delete_each(
    plane: ControlPlane, targets: list[Target], ignore_not_found: bool
) -> tuple[list[Target], list[Path], int]:
    """Delete every target: (those deleted, the step logs of deleted runs, failures)."""
    failures = 0
    deleted: list[Target] = []
    logs: list[Path] = []
    for kind, name, ns in targets:
        if kind == STORY_RUN:
            from bobrapet.controllers.steplog import run_logs

            logs.extend(await run_logs(plane.client, state.home, ns or "default", name))
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
    return deleted, logs, failures


async def _outcome(plane: ControlPlane, kind: Kind, name: str, namespace: str | None) -> str:
    """``kind/name deleted``, or why the object still exists (finalizers nobody removes)."""
    label = f"{kind.singular}/{name}"
    try:
        obj = await plane.client.get(kind, name, namespace)
    except NotFound:
        return f"{label} deleted"
    pending = (obj.get("metadata") or {}).get("finalizers") or []
    return f"{label} marked for deletion; waiting for finalizers: {', '.join(map(str, pending))}"
