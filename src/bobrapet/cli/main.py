"""Entry point of the ``bobrapet`` console script."""

from __future__ import annotations

import sys

from bobrapet.cli import commands, logs  # noqa: F401  (importing commands registers them)
from bobrapet.cli.app import app


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (usage errors → 2, handled by the parser)."""
    logs.configure()
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
