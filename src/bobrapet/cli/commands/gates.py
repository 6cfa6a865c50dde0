"""``bobrapet approve RUN STEP`` and ``bobrapet reject RUN STEP``: decide a gate step.

The decision is written to ``StoryRun.status.gates[STEP]`` (``state``, ``message``,
``updatedAt``, ``updatedBy``) through the status subresource, re-reading the run on
every conflict. No engine needs to run: whichever engine drives the run sees it.

Invariants: only a ``type: gate`` step of the run's Story can be decided; a finished run
or a gate step that already ended is refused (exit 1) and nothing is written.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from bobrapet.api.conditions import format_time
from bobrapet.api.errors import Invalid, StatusError
from bobrapet.api.kinds import STORY_RUN
from bobrapet.api.types.enums import TERMINAL_PHASES
from bobrapet.cli.app import EXIT_REJECTED, EXIT_USAGE, app, fail, state
from bobrapet.cli.commands.common import namespace_option, run
from bobrapet.cli.commands.wait import (
    gate_steps,
    is_terminal,
    phase_of,
    read_run,
    run_command_hint,
    story_of,
)
from bobrapet.cli.errors import format_status_error
from bobrapet.host.embedded import ControlPlane
from bobrapet.runtime.retry import retry_on_conflict


def current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment
        return "unknown"


def message_option() -> Any:
    return typer.Option("--message", "-m", help="Why: recorded with the decision.")


@app.command("approve")
def approve_command(
    name: Annotated[str, typer.Argument(metavar="RUN", help="The StoryRun.")],
    step: Annotated[str, typer.Argument(metavar="STEP", help="The gate step to approve.")],
    message: Annotated[str | None, message_option()] = None,
    namespace: Annotated[str | None, namespace_option()] = None,
) -> None:
    """Approve a gate step of a run (its step then Succeeds)."""
    decide(name, step, "Approved", message, namespace or "default")


@app.command("reject")
def reject_command(
    name: Annotated[str, typer.Argument(metavar="RUN", help="The StoryRun.")],
    step: Annotated[str, typer.Argument(metavar="STEP", help="The gate step to reject.")],
    message: Annotated[str | None, message_option()] = None,
    namespace: Annotated[str | None, namespace_option()] = None,
) -> None:
    """Reject a gate step of a run (its step then Fails)."""
    decide(name, step, "Rejected", message, namespace or "default")


def decide(name: str, step: str, decision: str, message: str | None, namespace: str) -> None:
    run(_decide(name, step, decision, message, namespace))
    verb = "approved" if decision == "Approved" else "rejected"
    state.out.print(f"gate {step} of storyrun/{name} {verb}", markup=False, highlight=False)
    hint = run_command_hint("wait", name, namespace)
    state.err.print(
        f"an engine driving the run sees it at once; if none is, run `{hint}`",
        markup=False,
        highlight=False,
    )


async def _decide(name: str, step: str, decision: str, message: str | None, namespace: str) -> None:
    async with ControlPlane(state.home) as plane:
        current = await read_run(plane, name, namespace)
        story = await story_of(plane, current)
        if story is None:
            raise fail(
                f"cannot check step '{step}': the story of run {name} "
                f"('{current['spec']['storyRef'].get('name')}') no longer exists",
                EXIT_REJECTED,
            )
        gates = gate_steps(story)
        if step not in gates:
            listed = ", ".join(gates) if gates else "none"
            raise fail(
                f"step '{step}' is not a gate; gates of story {story['metadata']['name']}: {listed}",
                EXIT_USAGE,
            )
        decided = {
            "state": decision,
            "updatedAt": format_time(datetime.now(UTC)),
            "updatedBy": current_user(),
        }
        if message:
            decided["message"] = message

        async def write() -> None:
            fresh = await plane.client.get(STORY_RUN, name, namespace)
            refuse_if_over(fresh, name, step)
            status = dict(fresh.get("status") or {})
            gates_now = dict(status.get("gates") or {})
            gates_now[step] = decided
            status["gates"] = gates_now
            fresh["status"] = status
            await plane.client.update_status(fresh)

        try:
            await retry_on_conflict(write)
        except StatusError as err:
            for line in format_status_error(err):
                state.err.print(line, markup=False, highlight=False)
            raise typer.Exit(EXIT_USAGE if isinstance(err, Invalid) else EXIT_REJECTED) from None


def refuse_if_over(run_obj: dict[str, Any], name: str, step: str) -> None:
    """Exit 1 when the run or the gate step already ended: a decision would change nothing."""
    if is_terminal(run_obj):
        raise fail(
            f"run {name} already finished ({phase_of(run_obj)}); its gates can no longer be decided",
            EXIT_REJECTED,
        )
    step_state = ((run_obj.get("status") or {}).get("stepStates") or {}).get(step) or {}
    if step_state.get("phase") in TERMINAL_PHASES:
        raise fail(
            f"gate '{step}' of run {name} already ended ({step_state['phase']}); it can no longer be decided",
            EXIT_REJECTED,
        )
