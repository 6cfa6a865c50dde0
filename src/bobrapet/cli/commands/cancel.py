"""``bobrapet cancel RUN``: ask for a graceful cancel (``spec.cancelRequested: true``, reference §4.7).

The only spec change a StoryRun admits. The engine then lets running steps finish within
the grace period, stops the rest and ends the run ``Finished``/``Canceled``; compensations
and finally do not run. No engine needs to run for the request to be recorded.

Invariants: the write re-reads the run on every conflict; a finished run or one already
asked to cancel is left untouched (exit 0, saying so).
"""

from __future__ import annotations

from typing import Annotated

import typer

from bobrapet.api.errors import StatusError
from bobrapet.cli.app import EXIT_REJECTED, app, state
from bobrapet.cli.commands.common import namespace_option, run
from bobrapet.cli.commands.wait import phase_of, read_run, run_command_hint
from bobrapet.cli.errors import format_status_error
from bobrapet.host.embedded import ControlPlane
from bobrapet.impulses.runs import CancelOutcome, request_cancel


@app.command("cancel")
def cancel_command(
    name: Annotated[str, typer.Argument(metavar="RUN", help="The StoryRun to cancel.")],
    namespace: Annotated[str | None, namespace_option()] = None,
) -> None:
    """Cancel a run gracefully: running steps get a grace period, nothing new starts."""
    ns = namespace or "default"
    outcome = run(_cancel(name, ns))
    state.out.print(outcome, markup=False, highlight=False)
    if outcome.endswith("cancel requested"):
        state.err.print(
            f"an engine driving the run stops it; if none is, run `{run_command_hint('wait', name, ns)}`",
            markup=False,
            highlight=False,
        )


async def _cancel(name: str, namespace: str) -> str:
    """What happened, as the line to print."""
    async with ControlPlane(state.home) as plane:
        await read_run(plane, name, namespace)
        try:
            outcome, fresh = await request_cancel(plane.client, name, namespace)
        except StatusError as err:
            for line in format_status_error(err):
                state.err.print(line, markup=False, highlight=False)
            raise typer.Exit(EXIT_REJECTED) from None
        if outcome is CancelOutcome.FINISHED:
            return f"storyrun/{name} already finished ({phase_of(fresh)}); nothing to cancel"
        return f"storyrun/{name} cancel {outcome.value}"
