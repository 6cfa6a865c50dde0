"""``bobrapet version`` and ``bobrapet completion SHELL``.

``version`` prints the package version, the Python running it and the schema version of
the state store (the one this release writes, and the one of the home's ``state.db`` when
it exists, read without migrating it). ``completion`` prints the shell completion script
(``source <(bobrapet completion bash)``); completions are served by the CLI itself via
the ``_BOBRAPET_COMPLETE`` environment variable the script sets.
"""

from __future__ import annotations

import json
import platform
import sqlite3
import sys
from pathlib import Path
from typing import Annotated

import typer

from bobrapet import __version__
from bobrapet.cli.app import EXIT_USAGE, app, fail, state
from bobrapet.host.embedded import STATE_FILE

SHELLS = ("bash", "zsh", "fish", "powershell")
COMPLETE_VAR = "_BOBRAPET_COMPLETE"


def home_schema_version(home: Path) -> int | None:
    """``PRAGMA user_version`` of the home's store, read-only; None when there is no store."""
    path = home / STATE_FILE
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def version_info(home: Path) -> dict[str, object]:
    from bobrapet.store.sqlite.schema import SCHEMA_VERSION

    return {
        "bobrapet": __version__,
        "python": platform.python_version(),
        "pythonExecutable": sys.executable,
        "platform": platform.platform(terse=True),
        "storeSchemaVersion": SCHEMA_VERSION,
        "home": str(home),
        "homeSchemaVersion": home_schema_version(home),
    }


@app.command("version")
def version_command(
    output: Annotated[
        str | None, typer.Option("--output", "-o", metavar="json|yaml", help="Machine-readable output.")
    ] = None,
) -> None:
    """Print the versions of bobrapet, Python and the state store schema."""
    info = version_info(state.home)
    if output == "json":
        state.out.out(json.dumps(info, indent=2), highlight=False)
    elif output == "yaml":
        from bobrapet.cli.output import dump_yaml

        state.out.out(dump_yaml(info).rstrip("\n"), highlight=False)
    elif output is None:
        home = info["homeSchemaVersion"]
        lines = [
            f"bobrapet {info['bobrapet']}",
            f"python   {info['python']} ({info['pythonExecutable']})",
            f"store    schema {info['storeSchemaVersion']}"
            + (
                f"; home {info['home']}: schema {home}"
                if home is not None
                else f"; home {info['home']}: none yet"
            ),
        ]
        state.out.out("\n".join(lines), highlight=False)
    else:
        raise fail(f'unknown output format "{output}" for -o; use json or yaml', EXIT_USAGE)


@app.command("completion")
def completion_command(
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh, fish or powershell.")],
) -> None:
    """Print the shell completion script, e.g. `source <(bobrapet completion bash)`.

    To install: bash `bobrapet completion bash > ~/.local/share/bash-completion/completions/bobrapet`;
    zsh `bobrapet completion zsh > "${fpath[1]}/_bobrapet"`; fish
    `bobrapet completion fish > ~/.config/fish/completions/bobrapet.fish`.
    """
    if shell not in SHELLS:
        raise fail(f'unsupported shell "{shell}"; use one of: {", ".join(SHELLS)}', EXIT_USAGE)
    from typer._completion_shared import get_completion_script

    script = get_completion_script(prog_name="bobrapet", complete_var=COMPLETE_VAR, shell=shell)
    state.out.out(script.rstrip("\n"), highlight=False)
