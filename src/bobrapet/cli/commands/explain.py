"""``bobrapet explain KIND[.field.path]``: field documentation from the models."""

from __future__ import annotations

from typing import Annotated

import typer

from bobrapet.api import kinds
from bobrapet.cli.app import EXIT_USAGE, app, fail, state
from bobrapet.cli.commands.common import resolve_kind


def split_target(target: str) -> tuple[kinds.Kind, list[str]]:
    """``story.spec.steps`` → (Story, ["spec", "steps"]); the kind may be ``kind.group``."""
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        kind = kinds.resolve(".".join(parts[:cut]))
        if kind is not None:
            return kind, parts[cut:]
    return resolve_kind(parts[0]), parts[1:]


@app.command("explain")
def explain_command(
    target: Annotated[str, typer.Argument(metavar="KIND[.FIELD.PATH]", help="e.g. story.spec.steps")],
) -> None:
    """Describe a resource kind or one of its fields."""
    from bobrapet.api.explain import explain

    kind, path = split_target(target)
    try:
        text = explain(kind, path)
    except KeyError as err:
        raise fail(str(err.args[0]) if err.args else str(err), EXIT_USAGE) from None
    state.out.print(text, markup=False, highlight=False)
