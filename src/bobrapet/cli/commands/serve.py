"""``bobrapet serve``: the long-lived service of a home — its engine and a Kubernetes-shaped HTTP API.

The process wiring lives in :mod:`bobrapet.server.service`; this command parses the
options, prints where it listens once the engine is up, and maps failures to exit codes:
0 after a graceful shutdown (SIGTERM, Ctrl-C), 2 for usage problems (a non-loopback
``--host`` without ``--token``, a port that cannot be had, a bad ``--grace``), 1 when a
serve of this home already runs or the service failed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bobrapet.api.durations import parse_duration
from bobrapet.cli import startup
from bobrapet.cli.app import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, app, fail, state
from bobrapet.cli.commands.common import run
from bobrapet.cli.commands.wait import workers_option
from bobrapet.host import serve_file


def parse_grace(text: str) -> float:
    """Seconds of ``--grace`` (a duration, ``0s`` for none)."""
    try:
        seconds = parse_duration(text).total_seconds()
    except ValueError as err:
        raise fail(f"--grace: {err}", EXIT_USAGE) from None
    if seconds < 0:
        raise fail(f'--grace: must not be negative (got "{text}")', EXIT_USAGE)
    return seconds


@app.command("serve")
def serve_command(
    host: Annotated[
        str,
        typer.Option(
            "--host", metavar="ADDRESS", help="Address to listen on (anything but loopback needs --token)."
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port", metavar="PORT", min=0, max=65535, help="Port to listen on (0: any free port)."
        ),
    ] = 8080,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="TOKEN",
            envvar="BOBRAPET_SERVE_TOKEN",
            help="Require `Authorization: Bearer TOKEN` on every endpoint but /healthz and /readyz "
            "(env BOBRAPET_SERVE_TOKEN).",
        ),
    ] = None,
    grace: Annotated[
        str,
        typer.Option(
            "--grace", metavar="DURATION", help="On SIGTERM/Ctrl-C, how long running steps may finish."
        ),
    ] = "30s",
    workers: Annotated[int | None, workers_option()] = None,
) -> None:
    """Run the engine of this home and serve its resources over HTTP until stopped.

    kubectl works against it: `kubectl --server http://127.0.0.1:8080 get storyruns`.
    Other bobrapet commands on the same home use this engine instead of starting their own.
    """
    from bobrapet.server.service import ServeError, ServeOptions, Service, check_bind, is_loopback

    seconds = parse_grace(grace)
    try:
        check_bind(host, token)
    except ServeError as err:
        raise fail(str(err), EXIT_USAGE) from None
    running = serve_file.live(state.home)
    if running is not None:
        raise fail(
            f"bobrapet serve already runs on this home (pid {running.pid}, {running.address}); "
            "stop it first or use another --home",
            EXIT_REJECTED,
        )
    options = ServeOptions(home=state.home, host=host, port=port, token=token, grace=seconds, workers=workers)

    def ready(record: serve_file.ServeRecord, took: float) -> None:
        startup.resume()  # the engine is loaded: collect again while the service runs
        state.err.print(
            f"bobrapet serve: listening on {record.address} (home {state.home}, pid {record.pid}); "
            f"ready in {took:.2f}s",
            markup=False,
            highlight=False,
        )
        if not is_loopback(record.host):
            state.err.print(
                "note: the API is plain HTTP; put a TLS-terminating proxy in front of it on networks "
                "you do not trust (the bearer token travels with every request)",
                markup=False,
                highlight=False,
            )

    service = Service(options, on_ready=ready)
    try:
        run(service.run())
    except ServeError as err:
        raise fail(str(err), EXIT_USAGE) from None
    except RuntimeError as err:
        raise fail(str(err), EXIT_REJECTED) from None
    except KeyboardInterrupt:
        pass  # Ctrl-C before the service took over the signals: nothing was left running
    state.err.print("bobrapet serve: stopped", markup=False, highlight=False)
    raise typer.Exit(EXIT_OK)
