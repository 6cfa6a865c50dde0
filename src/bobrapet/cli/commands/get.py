"""``bobrapet get``, ``describe`` and ``api-resources``: read objects."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bobrapet.api import kinds
from bobrapet.api.errors import NotFound, StatusError
from bobrapet.cli.app import EXIT_REJECTED, EXIT_USAGE, app, fail, state
from bobrapet.cli.commands.common import complete_kind, namespace_option, resolve_kind, run
from bobrapet.cli.events import events_of, events_section
from bobrapet.cli.output import check_format, describe, print_objects
from bobrapet.host.embedded import ControlPlane

if TYPE_CHECKING:
    from bobrapet.cli.watching import Selection


@app.command("get")
def get_command(
    kind_name: Annotated[
        str, typer.Argument(metavar="KIND", help="e.g. stories, story, srun.", autocompletion=complete_kind)
    ],
    name: Annotated[str | None, typer.Argument(metavar="[NAME]")] = None,
    namespace: Annotated[str | None, namespace_option()] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="List across all namespaces.")
    ] = False,
    output: Annotated[
        str,
        typer.Option("--output", "-o", help="table|wide|json|yaml|name|jsonpath=TEMPLATE (kubectl subset)."),
    ] = "table",
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Label selector, e.g. app=x,tier!=db.")
    ] = None,
    field_selector: Annotated[
        str | None, typer.Option("--field-selector", help="e.g. status.phase=Running.")
    ] = None,
    no_headers: Annotated[
        bool, typer.Option("--no-headers", help="Tables without the header line (for scripts).")
    ] = False,
    sort_by: Annotated[
        str | None,
        typer.Option(
            "--sort-by", metavar="JSONPATH", help="Sort by a field, e.g. .metadata.creationTimestamp."
        ),
    ] = None,
    watch: Annotated[
        bool,
        typer.Option("--watch", "-w", help="After listing, print each change (until Ctrl-C)."),
    ] = False,
    watch_only: Annotated[
        bool, typer.Option("--watch-only", help="Print only the changes, not the current list.")
    ] = False,
    output_watch_events: Annotated[
        bool,
        typer.Option(
            "--output-watch-events", help="With --watch: show the event type (ADDED, MODIFIED, DELETED)."
        ),
    ] = False,
) -> None:
    """List resources of a kind, or show one; with -w, keep printing their changes."""
    problem = check_format(output)
    if problem is not None:
        raise fail(problem, EXIT_USAGE)
    sort_path = None
    if sort_by is not None:
        from bobrapet.cli.jsonpath import JsonPathError, sort_key_path

        try:
            sort_path = sort_key_path(sort_by)
        except JsonPathError as err:
            raise fail(str(err), EXIT_USAGE) from None
    kind = resolve_kind(kind_name)
    ns = None if (all_namespaces or not kind.namespaced) else (namespace or "default")
    if watch or watch_only:
        from bobrapet.cli.watching import Selection

        selection = Selection(kind, ns, name, selector, field_selector)
        _watch(selection, output, sort_path, watch_only, output_watch_events, headers=not no_headers)
        return

    async def read() -> list[dict[str, Any]]:
        async with ControlPlane(state.home) as plane:
            if not plane.exists:
                if name is not None:
                    raise NotFound(kind.kind, name, kind.group or None)
                return []
            if name is not None:
                return [await plane.client.get(kind, name, ns)]
            return await plane.client.list(kind, ns, labels=selector, fields=field_selector)

    try:
        items = run(read())
    except StatusError as err:
        raise fail(err.message, EXIT_REJECTED) from None
    if name is None and not items and output in ("table", "wide"):
        where = (
            " in any namespace" if ns is None and kind.namespaced else (f" in {ns} namespace" if ns else "")
        )
        state.err.print(f"No resources found{where}.", markup=False)
        return
    if sort_path is not None:
        items = sort_objects(items, sort_path)
    show_ns = kind.namespaced and all_namespaces
    print_objects(
        state.out,
        kind,
        items,
        output,
        single=name is not None,
        show_namespace=show_ns,
        headers=not no_headers,
    )


def _watch(
    selection: Selection, output: str, sort_path: str | None, watch_only: bool, events: bool, *, headers: bool
) -> None:
    """``get -w``: list, then print changes until Ctrl-C (exit 0)."""
    from bobrapet.cli import startup
    from bobrapet.cli.watching import WATCH_POLL, WatchPrinter, open_home, watch_objects

    kind = selection.kind
    printer = WatchPrinter(
        state.out,
        kind,
        output,
        show_namespace=kind.namespaced and selection.namespace is None,
        headers=headers,
        events=events,
    )

    def arrange(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return items if sort_path is None else sort_objects(items, sort_path)

    async def follow() -> None:
        async with ControlPlane(state.home, poll_interval=WATCH_POLL) as plane:
            client = await open_home(plane)
            startup.resume()  # long-running: collect garbage again
            await watch_objects(client, selection, printer, watch_only=watch_only, arrange=arrange)

    try:
        run(follow())
    except KeyboardInterrupt:
        return
    except StatusError as err:
        raise fail(err.message, EXIT_REJECTED) from None


def sort_objects(items: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """``items`` ordered by the first value ``path`` selects (numbers numerically, missing last)."""
    from bobrapet.cli.jsonpath import evaluate

    def key(item: dict[str, Any]) -> tuple[int, float, str]:
        found = evaluate(path, item)
        value = found[0] if found else None
        if value is None:
            return (2, 0.0, "")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, float(value), "")
        return (1, 0.0, value if isinstance(value, str) else json.dumps(value, sort_keys=True))

    return sorted(items, key=key)


@app.command("describe")
def describe_command(
    kind_name: Annotated[str, typer.Argument(metavar="KIND", autocompletion=complete_kind)],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    namespace: Annotated[str | None, namespace_option()] = None,
) -> None:
    """Show one resource in detail: metadata, spec, status and conditions."""
    kind = resolve_kind(kind_name)
    ns = (namespace or "default") if kind.namespaced else None

    async def read() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with ControlPlane(state.home) as plane:
            if not plane.exists:  # reading must not create a state directory
                raise NotFound(kind.kind, name, kind.group or None)
            obj = await plane.client.get(kind, name, ns)
            return obj, ([] if kind is kinds.EVENT else await events_of(plane.client, kind, obj))

    try:
        obj, events = run(read())
    except StatusError as err:
        raise fail(err.message, EXIT_REJECTED) from None
    text = describe(kind, obj)
    if kind.kind == "StepRun":
        from bobrapet.api.runmeta import story_run_of
        from bobrapet.cli.output import describe_inputs
        from bobrapet.controllers.steplog import read_inputs
        from bobrapet.executors.logpath import inputs_log_path

        inputs_log = inputs_log_path(state.home, str(ns or "default"), story_run_of(obj))
        text += "\n" + "\n".join(describe_inputs(read_inputs(inputs_log, name)))
    if kind is not kinds.EVENT:
        text += "\n" + events_section(events)
    state.out.print(text, markup=False, highlight=False)


@app.command("api-resources")
def api_resources_command() -> None:
    """List every resource kind with its short names and API group."""
    rows = [f"{'NAME':<20}{'SHORTNAMES':<14}{'APIVERSION':<34}{'NAMESPACED':<12}KIND"]
    for k in kinds.ALL_KINDS:
        rows.append(
            f"{k.plural:<20}{','.join(k.short_names):<14}{k.api_version:<34}"
            f"{str(k.namespaced).lower():<12}{k.kind}"
        )
    state.out.print("\n".join(rows), markup=False, highlight=False)
