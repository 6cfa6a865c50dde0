"""``bobrapet catalog install|list``: the built-in ImpulseTemplates and the installed templates.

``install`` applies the templates shipped in :mod:`bobrapet.api.builtin_catalog` exactly as
``apply`` would (admission, create or update, one ``kind/name verb`` line each), so running
it again prints ``unchanged`` and writes nothing. ``list`` prints the EngramTemplates and
ImpulseTemplates of the home, built-in or not; it never creates a home.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bobrapet.api.builtin_catalog import builtin_documents, builtin_names, is_builtin
from bobrapet.api.kinds import ENGRAM_TEMPLATE, IMPULSE_TEMPLATE
from bobrapet.cli.app import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, app, fail, state
from bobrapet.cli.commands.apply import apply_documents
from bobrapet.cli.commands.common import run
from bobrapet.cli.output import dump_json, dump_yaml, print_table, rows_table
from bobrapet.host.embedded import ControlPlane

catalog_app = typer.Typer(
    name="catalog",
    help="The built-in ImpulseTemplates (webhook, github, cron, nats, redis-stream, amqp).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(catalog_app, name="catalog")

LIST_FORMATS = ("table", "json", "yaml", "name")


@catalog_app.command("install")
def install_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME]...", help="Only these templates (default: all built-in ones)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show what would change; store nothing.")
    ] = False,
) -> None:
    """Install the built-in ImpulseTemplates, or update them to this version (idempotent)."""
    docs = builtin_documents()
    if names:
        known = [str(doc.obj["metadata"]["name"]) for doc in docs]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise fail(
                f"no built-in template named {', '.join(unknown)}; built-in templates: {', '.join(known)}",
                EXIT_USAGE,
            )
        docs = [doc for doc in docs if doc.obj["metadata"]["name"] in names]

    async def install() -> int:
        async with ControlPlane(state.home) as plane:
            failures = await apply_documents(plane.client, docs, None, dry_run=dry_run, out=state.out)
            if not dry_run:
                await plane.settle()
        return failures

    raise typer.Exit(EXIT_REJECTED if run(install()) else EXIT_OK)


@catalog_app.command("list")
def list_command(
    output: Annotated[str, typer.Option("--output", "-o", help="table|json|yaml|name")] = "table",
) -> None:
    """List the installed EngramTemplates and ImpulseTemplates, built-in or not."""
    if output not in LIST_FORMATS:
        raise fail(f'unknown output format "{output}"; use one of: {", ".join(LIST_FORMATS)}', EXIT_USAGE)

    async def read() -> list[dict[str, Any]]:
        async with ControlPlane(state.home) as plane:
            if not plane.exists:  # listing must not create a home
                return []
            found = []
            for kind in (ENGRAM_TEMPLATE, IMPULSE_TEMPLATE):
                found += sorted(await plane.client.list(kind), key=lambda t: str(t["metadata"]["name"]))
            return found

    templates = run(read())
    _print(templates, output)
    installed = {str(t["metadata"]["name"]) for t in templates if t.get("kind") == IMPULSE_TEMPLATE.kind}
    missing = [name for name in builtin_names() if name not in installed]
    if missing:
        state.err.print(
            f"note: built-in templates not installed: {', '.join(missing)} "
            "(install them with `bobrapet catalog install`)",
            markup=False,
            highlight=False,
        )


def _print(templates: list[dict[str, Any]], output: str) -> None:
    if output in ("json", "yaml"):
        data = {"apiVersion": "v1", "kind": "List", "items": templates, "metadata": {}}
        text = dump_json(data) if output == "json" else dump_yaml(data)
        state.out.out(text.rstrip("\n"), highlight=False)
        return
    if output == "name":
        for t in templates:
            state.out.out(f"{str(t['kind']).lower()}/{t['metadata']['name']}", highlight=False)
        return
    if not templates:
        state.err.print("No templates installed.", markup=False)
        return
    head = ["KIND", "NAME", "VERSION", "BUILT-IN", "STATUS", "USAGE"]
    print_table(state.out, rows_table(head, (_row(t) for t in templates)))


def _row(template: dict[str, Any]) -> list[str]:
    spec, status = template.get("spec") or {}, template.get("status") or {}
    return [
        str(template.get("kind") or ""),
        str(template["metadata"]["name"]),
        str(spec.get("version") or "<none>"),
        "yes" if is_builtin(template) else "no",
        str(status.get("validationStatus") or "<none>"),
        str(status.get("usageCount") or 0),
    ]
