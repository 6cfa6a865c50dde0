"""``bobrapet config view|set|unset``: the embedded operator configuration (``<home>/config.yaml``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from bobrapet.cli.app import EXIT_REJECTED, EXIT_USAGE, app, fail, state
from bobrapet.cli.output import dump_yaml
from bobrapet.host.config_file import ConfigFileError, load, path_of, set_value, unset_value

config_app = typer.Typer(
    name="config",
    help="View or change the operator configuration of this home (reference ConfigMap keys).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(config_app, name="config")


def _display(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@config_app.command("view")
def view_command(
    output: Annotated[str, typer.Option("--output", "-o", help="table|yaml|json")] = "table",
) -> None:
    """Show every key with its effective value and where it comes from (default or file)."""
    if output not in ("table", "yaml", "json"):
        raise fail(f'unknown output format "{output}"; use one of: table, yaml, json', EXIT_USAGE)
    try:
        settings = load(state.home)
    except ConfigFileError as err:
        raise fail(str(err)) from None
    if output != "table":
        data = {s.key: {"value": s.value, "source": s.source} for s in settings.effective}
        text = json.dumps(data, indent=2) if output == "json" else dump_yaml(data)
        state.out.out(text.rstrip("\n"), highlight=False)
        return
    rows = [("KEY", "VALUE", "SOURCE")] + [(s.key, _display(s.value), s.source) for s in settings.effective]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}" for r in rows]
    lines.append(f"# file: {path_of(state.home)}")
    state.out.print("\n".join(lines), markup=False, highlight=False)


@config_app.command("set")
def set_command(
    key: Annotated[str, typer.Argument(metavar="KEY", help="e.g. timeout.default-step")],
    value: Annotated[str, typer.Argument(metavar="VALUE", help="e.g. 10m")],
) -> None:
    """Set KEY to VALUE (validated; the file is replaced atomically). Engines started later use it."""
    from bobrapet.engine.operator_config import ConfigError

    try:
        stored = set_value(state.home, key, value)
    except ConfigError as err:
        raise fail(str(err), EXIT_REJECTED) from None
    except ConfigFileError as err:
        raise fail(str(err), EXIT_REJECTED) from None
    state.out.print(f"{key} set to {_display(stored)}", markup=False, highlight=False)


@config_app.command("unset")
def unset_command(key: Annotated[str, typer.Argument(metavar="KEY")]) -> None:
    """Remove KEY from the file (back to its default)."""
    from bobrapet.engine.operator_config import ConfigError

    try:
        removed = unset_value(state.home, key)
    except (ConfigError, ConfigFileError) as err:
        raise fail(str(err), EXIT_REJECTED) from None
    state.out.print(
        f"{key} {'reset to its default' if removed else 'was not set'}", markup=False, highlight=False
    )
