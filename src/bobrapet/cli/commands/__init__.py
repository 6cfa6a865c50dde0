"""CLI commands; importing this package registers them on the app."""

from bobrapet.cli.commands import apply, crds, delete, explain, get, validate

__all__ = ["apply", "crds", "delete", "explain", "get", "validate"]
