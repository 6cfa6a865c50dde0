"""Entry point of the ``bobrapet`` console script."""

from __future__ import annotations

import sys

from bobrapet.cli import commands  # noqa: F401  (registers every command)
from bobrapet.cli.app import app


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (usage errors → 2, handled by the parser)."""
    try:
        app(args=argv, prog_name="bobrapet")
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
