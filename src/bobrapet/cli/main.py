"""Entry point of the ``bobrapet`` console script.

Nothing heavy is imported at module level: :func:`entry` sets the garbage-collection policy
of :mod:`bobrapet.cli.startup` first, then loads the commands.
"""

from __future__ import annotations

import sys

from bobrapet.cli import startup


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (usage errors → 2, handled by the parser)."""
    from bobrapet.cli import commands, logs  # noqa: F401  (importing commands registers them)
    from bobrapet.cli.app import app
    from bobrapet.host.config_file import ConfigFileError

    logs.configure()
    try:
        app(args=argv, prog_name="bobrapet")
    except ConfigFileError as err:  # a broken <home>/config.yaml: one clear line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    return 0


def entry() -> int:
    """The console script: :func:`main` under the start-up garbage-collection policy of
    :mod:`bobrapet.cli.startup` (paused while loading, no collections at exit)."""
    startup.pause()
    try:
        return main()
    finally:
        startup.before_exit()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry())
