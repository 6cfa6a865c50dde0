"""The ``bobrapet`` command: global options, shared state, exit-code policy.

Exit codes: 0 success; 1 an object was rejected or not found; 2 usage error.
User errors are printed as one clear message (no traceback).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bobrapet import __version__

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="bobrapet",
    help="Bobrapet: declarative workflows for AI and data pipelines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
)


@dataclass
class State:
    home: Path = field(default_factory=lambda: Path(".bobrapet"))
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))


state = State()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bobrapet {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="State directory of the embedded control plane (env BOBRAPET_HOME, default ./.bobrapet).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    state.home = home or Path(os.environ.get("BOBRAPET_HOME") or ".bobrapet")
    state.out = Console(soft_wrap=True)
    state.err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = EXIT_REJECTED) -> typer.Exit:
    """Print ``error: message`` to stderr and return the Exit to raise."""
    state.err.print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(code)
