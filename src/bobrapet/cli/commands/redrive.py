"""``bobrapet redrive RUN [--from STEP]``: run a StoryRun again (reference §4.2 steps 7-8).

Without ``--from`` it sets annotation ``storyrun.bubustack.io/redrive-token`` to a fresh
token: the engine deletes every child and restarts the run from scratch. With
``--from STEP`` it sets ``storyrun.bubustack.io/redrive-from-step`` to ``STEP:<token>``: the
engine resets STEP and everything downstream of it, keeping the rest.

Without ``--no-wait`` the command then drives the run to its end like ``run`` (progress on
stderr, the result on stdout, exit 0 only when it ends Succeeded).

A redrive runs the Story the run started with (its recorded copy), whatever edits the
Story had since. ``--latest`` (full redrive only) also sets
``storyrun.bubustack.io/redrive-latest`` to the token: the run restarts on the current Story.

Invariants: a token is new on every call (UTC time to the microsecond, plus a counter
against equal clock readings) and never contains ``:``; STEP must be a step of the run's
Story; the write re-reads the run on every conflict.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from bobrapet.api.errors import NotFound, StatusError
from bobrapet.api.kinds import STORY, STORY_RUN
from bobrapet.api.runmeta import REDRIVE_FROM_STEP, REDRIVE_LATEST, REDRIVE_TOKEN
from bobrapet.cli.app import EXIT_REJECTED, EXIT_USAGE, app, fail, state
from bobrapet.cli.commands.common import namespace_option, run
from bobrapet.cli.commands.wait import (
    check_output,
    exit_code,
    interrupted,
    output_option,
    parse_timeout,
    print_result,
    read_run,
    run_command_hint,
    story_of,
    timeout_option,
    wait_for_run,
    workers_option,
)
from bobrapet.cli.errors import format_status_error
from bobrapet.host.embedded import ControlPlane
from bobrapet.runtime.retry import retry_on_conflict

_counter = itertools.count()


def new_token(now: datetime | None = None) -> str:
    """A fresh, time-ordered token such as ``20260501T120000123456Z0``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment.strftime('%Y%m%dT%H%M%S%fZ')}{next(_counter)}"


def main_steps(story: dict[str, Any] | None) -> list[str]:
    steps = ((story or {}).get("spec") or {}).get("steps") or []
    return [str(s["name"]) for s in steps if isinstance(s, dict) and s.get("name")]


@app.command("redrive")
def redrive_command(
    name: Annotated[str, typer.Argument(metavar="RUN", help="The StoryRun to run again.")],
    from_step: Annotated[
        str | None,
        typer.Option("--from", help="Re-run only this step and the steps downstream of it."),
    ] = None,
    latest: Annotated[
        bool,
        typer.Option(
            "--latest",
            help="Restart on the current version of the Story instead of the one the run started with.",
        ),
    ] = False,
    namespace: Annotated[str | None, namespace_option()] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Request the redrive and return (drive it with `wait`).")
    ] = False,
    output: Annotated[str | None, output_option()] = None,
    timeout: Annotated[str | None, timeout_option()] = None,
    workers: Annotated[int | None, workers_option()] = None,
) -> None:
    """Run a StoryRun again (from scratch, or from one step) and drive it to the end, like `run`.

    Exit 0 when the run ends Succeeded, 1 otherwise; --no-wait returns once it is requested.
    """
    check_output(output)
    seconds = parse_timeout(timeout)
    ns = namespace or "default"
    if latest and from_step is not None:
        raise fail(
            "--latest cannot be combined with --from: a partial redrive keeps finished steps of the "
            "run's own Story; redrive from the start with --latest to run the current Story",
            EXIT_USAGE,
        )
    key, value = run(_redrive(name, from_step, ns, latest=latest))
    what = f"from step {from_step}" if from_step else "from the start"
    if latest:
        what += " on the current Story"
    if no_wait:
        state.out.print(
            f"storyrun/{name} redrive requested {what} ({key}={value})", markup=False, highlight=False
        )
        state.err.print(
            f"run `{run_command_hint('wait', name, ns)}` to drive it", markup=False, highlight=False
        )
        return
    state.err.print(f"storyrun/{name} redrive requested {what}", markup=False, highlight=False)
    try:
        final, logged = run(wait_for_run(name, ns, seconds, timeout, workers))
    except KeyboardInterrupt:
        raise interrupted(name, ns) from None
    print_result(final, output, logged)
    raise typer.Exit(exit_code(final))


async def _redrive(
    name: str, from_step: str | None, namespace: str, *, latest: bool = False
) -> tuple[str, str]:
    async with ControlPlane(state.home) as plane:
        current = await read_run(plane, name, namespace)
        if from_step is not None:
            story = await story_of(plane, current)
            if story is None:
                raise fail(
                    f"cannot check --from {from_step}: the story of run {name} no longer exists",
                    EXIT_REJECTED,
                )
            steps = main_steps(story)
            if from_step not in steps:
                raise fail(
                    f"--from: story {story['metadata']['name']} has no step '{from_step}'; "
                    f"steps: {', '.join(steps)}",
                    EXIT_USAGE,
                )
        if not latest and (note := await _edited_since(plane, current)) is not None:
            state.err.print(note, markup=False, highlight=False)
        key = REDRIVE_FROM_STEP if from_step else REDRIVE_TOKEN
        value = f"{from_step}:{new_token()}" if from_step else new_token()

        async def write() -> None:
            fresh = await plane.client.get(STORY_RUN, name, namespace)
            meta = fresh["metadata"]
            meta["annotations"] = {**(meta.get("annotations") or {}), key: value}
            if latest:
                meta["annotations"][REDRIVE_LATEST] = value
            await plane.client.update(fresh)

        try:
            await retry_on_conflict(write)
        except StatusError as err:
            for line in format_status_error(err):
                state.err.print(line, markup=False, highlight=False)
            raise typer.Exit(EXIT_REJECTED) from None
        return key, value


async def _edited_since(plane: ControlPlane, run_obj: dict[str, Any]) -> str | None:
    """A note when the run's Story was edited after the run recorded its copy: a redrive
    runs the copy, so an edit meant as a fix needs ``--latest``."""
    pinned = ((run_obj.get("status") or {}).get("storySnapshot") or {}).get("generation")
    ref = (run_obj.get("spec") or {}).get("storyRef") or {}
    namespace = str(ref.get("namespace") or run_obj["metadata"].get("namespace") or "default")
    if not isinstance(pinned, int) or not ref.get("name"):
        return None
    try:
        story = await plane.client.get(STORY, str(ref["name"]), namespace)
    except NotFound:
        return None
    current = story["metadata"].get("generation")
    if not isinstance(current, int) or current == pinned:
        return None
    return (
        f"note: storyrun/{run_obj['metadata']['name']} runs story/{ref['name']} as it was at generation "
        f"{pinned}; the Story is now at generation {current}. A redrive keeps the run's copy: to run "
        "the edited Story, redrive from the start with --latest."
    )
