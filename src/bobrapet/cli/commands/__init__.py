"""CLI commands; importing this package registers them on the app."""

from bobrapet.cli.commands import (
    apply,
    cancel,
    catalog,
    config,
    crds,
    delete,
    explain,
    gates,
    get,
    logs,
    redrive,
    run,
    trigger,
    validate,
    version,
    wait,
)

__all__ = [
    "apply",
    "cancel",
    "catalog",
    "config",
    "crds",
    "delete",
    "explain",
    "gates",
    "get",
    "logs",
    "redrive",
    "run",
    "trigger",
    "validate",
    "version",
    "wait",
]
