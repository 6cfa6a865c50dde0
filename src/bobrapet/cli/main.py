"""Entry point of the ``bobrapet`` console script."""

from __future__ import annotations

import sys

import click

from bobrapet.cli import commands  # noqa: F401  (registers every command)
from bobrapet.cli.app import EXIT_USAGE, app


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (usage errors → 2, never a traceback for them)."""
    try:
        result = app(args=argv, prog_name="bobrapet", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code or 0)
    except click.UsageError as err:
        err.show()
        return EXIT_USAGE
    except click.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
