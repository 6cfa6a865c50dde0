"""CLI commands; importing this package registers them on the app."""

from bobrapet.cli.commands import (
    apply,
    cancel,
    config,
    crds,
    delete,
    explain,
    gates,
    get,
    logs,
    redrive,
    run,
    serve,
    validate,
    version,
    wait,
)

__all__ = [
    "apply",
    "cancel",
    "config",
    "crds",
    "delete",
    "explain",
    "gates",
    "get",
    "logs",
    "redrive",
    "run",
    "serve",
    "validate",
    "version",
    "wait",
]
