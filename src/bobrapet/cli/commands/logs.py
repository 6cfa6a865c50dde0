"""``bobrapet logs RUN [STEP]``: print the captured stdout/stderr of a run's steps.

The engine writes each StepRun's output to ``<home>/logs/<namespace>/<steprun>.log``.
A run's StepRuns carry label ``bubustack.io/storyrun`` (the run's name, hash-shortened
beyond 63 characters); the step is ``spec.stepId`` (for parallel branches the branch name,
with label ``bubustack.io/parent-step``), so STEP may name a step, a branch or a parallel
step (all its branches).

Invariants: log bytes are written to stdout as they are (invalid UTF-8 replaced); a
header ``== step <id> (<steprun>) ==`` precedes each log when more than one is printed;
``--tail N`` keeps the last N lines of each log; reading never creates a state directory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from bobrapet.api import runmeta
from bobrapet.api.errors import StatusError
from bobrapet.api.kinds import STEP_RUN
from bobrapet.cli.app import EXIT_REJECTED, app, fail, state
from bobrapet.cli.commands.common import namespace_option, run
from bobrapet.cli.commands.wait import all_steps, log_path, read_run, step_names, story_of
from bobrapet.executors.logpath import LOG_DIR
from bobrapet.host.embedded import ControlPlane

__all__ = ["LOG_DIR", "log_path", "logs_command", "read_log", "select"]

PARENT_STEP_LABEL = runmeta.PARENT_STEP


def step_id(step_run: Mapping[str, Any]) -> str:
    return str((step_run.get("spec") or {}).get("stepId") or "")


def _order(step_run: Mapping[str, Any]) -> tuple[str, str]:
    status = step_run.get("status") or {}
    meta = step_run.get("metadata") or {}
    return (str(status.get("startedAt") or meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def select(step_runs: Sequence[Mapping[str, Any]], step: str | None) -> list[Mapping[str, Any]]:
    """The StepRuns of ``step`` (its own, or the branches of a parallel step); all when None."""
    ordered = sorted(step_runs, key=_order)
    if step is None:
        return ordered
    return [
        s
        for s in ordered
        if step_id(s) == step
        or ((s.get("metadata") or {}).get("labels") or {}).get(PARENT_STEP_LABEL) == step
    ]


def read_log(path: Path, tail: int | None) -> str | None:
    """The log text (its last ``tail`` lines), or None when the step wrote nothing yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    text = raw.decode("utf-8", errors="replace")
    if tail is None:
        return text
    if tail == 0:
        return ""
    return "".join(deque(text.splitlines(keepends=True), maxlen=tail))


def header_line(step_run: Mapping[str, Any]) -> str:
    """``== step <id> (<steprun>) ==``: what precedes a log when several are printed."""
    return f"== step {step_id(step_run)} ({step_run['metadata']['name']}) =="


@app.command("logs")
def logs_command(
    name: Annotated[str, typer.Argument(metavar="RUN", help="The StoryRun.")],
    step: Annotated[str | None, typer.Argument(metavar="[STEP]", help="Only this step.")] = None,
    namespace: Annotated[str | None, namespace_option()] = None,
    tail: Annotated[
        int | None, typer.Option("--tail", min=0, help="Only the last N lines of each step's log.")
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep printing new output, of steps that start later too, until the run ends (or Ctrl-C).",
        ),
    ] = False,
) -> None:
    """Print what the steps of a run wrote to stdout/stderr."""
    ns = namespace or "default"
    if follow:
        _follow(name, step, ns, tail)
        return
    chosen = run(_step_runs(name, step, ns))
    several = len(chosen) > 1
    for step_run in chosen:
        sr_name = str(step_run["metadata"]["name"])
        text = read_log(log_path(state.home, ns, sr_name), tail)
        if several:
            typer.echo(header_line(step_run))
        if text is None:
            state.err.print(f"no logs yet for step {step_id(step_run)} ({sr_name})", markup=False)
            continue
        typer.echo(text, nl=bool(text) and not text.endswith("\n"))


def _follow(name: str, step: str | None, namespace: str, tail: int | None) -> None:
    """``logs -f``: what is there, then what comes, until the run ends (exit 0) or Ctrl-C (exit 0)."""
    from bobrapet.cli import startup
    from bobrapet.cli.following import LogFollower, finished
    from bobrapet.cli.watching import WATCH_POLL
    from bobrapet.runtime.informer import bookmark

    def write(text: str) -> None:
        typer.echo(text, nl=False)

    async def go() -> str:
        async with ControlPlane(state.home, poll_interval=WATCH_POLL) as plane:
            if not plane.exists:
                await read_run(plane, name, namespace)  # exits: not found
            since = await bookmark(plane.client)  # before reading: no change is missed
            current = await read_run(plane, name, namespace)
            step_runs = await plane.client.list(STEP_RUN, namespace, labels=runmeta.steps_selector(name))
            chosen = select(step_runs, step)
            if not chosen and (finished(current) or not await _may_start(plane, current, step)):
                raise await _no_logs(plane, current, step, step_runs)
            several = step is None or await _is_parallel(plane, current, step)
            follower = LogFollower(
                plane.client,
                state.home,
                namespace,
                name,
                matches=lambda s: bool(select([s], step)),
                header=header_line if several else None,
                write=write,
            )
            startup.resume()  # long-running: collect garbage again
            return await follower.follow(since, current, chosen, tail)

    try:
        ending = run(go())
    except KeyboardInterrupt:
        return
    except StatusError as err:
        raise fail(err.message, EXIT_REJECTED) from None
    if ending == "deleted":
        state.err.print(f"storyrun {name} was deleted", markup=False, highlight=False)


async def _step_runs(name: str, step: str | None, namespace: str) -> list[Mapping[str, Any]]:
    async with ControlPlane(state.home) as plane:
        current = await read_run(plane, name, namespace)
        step_runs = await plane.client.list(STEP_RUN, namespace, labels=runmeta.steps_selector(name))
        chosen = select(step_runs, step)
        if chosen:
            return chosen
        raise await _no_logs(plane, current, step, step_runs)


async def _may_start(plane: ControlPlane, current: Mapping[str, Any], step: str | None) -> bool:
    """Whether logs of ``step`` (None: any step) may still come in ``current``'s run."""
    if step is None:
        return True
    states = (current.get("status") or {}).get("stepStates") or {}
    return step in states or step in step_names(await story_of(plane, current))


async def _is_parallel(plane: ControlPlane, current: Mapping[str, Any], step: str) -> bool:
    """Whether ``step`` is a parallel step (its branches have a log each)."""
    story = await story_of(plane, current)
    return any(s.get("name") == step and s.get("type") == "parallel" for s in all_steps(story))


async def _no_logs(
    plane: ControlPlane, current: Mapping[str, Any], step: str | None, step_runs: Sequence[Mapping[str, Any]]
) -> typer.Exit:
    """The error for a run (or step) without any log to show."""
    name = str(current["metadata"]["name"])
    with_logs = sorted({step_id(s) for s in step_runs})
    if step is None:
        return fail(f"run {name} has no step logs yet (no engram step has started)", EXIT_REJECTED)
    story = await story_of(plane, current)
    states = (current.get("status") or {}).get("stepStates") or {}
    listed = ", ".join(with_logs) if with_logs else "none yet"
    known = step_names(story)
    if step in states or step in known:
        return fail(
            f"step '{step}' of run {name} has no logs (only engram steps write logs, once started); "
            f"steps with logs: {listed}",
            EXIT_REJECTED,
        )
    steps = ", ".join(known) or "unknown (its story no longer exists)"
    return fail(f"run {name} has no step '{step}'; steps: {steps}; steps with logs: {listed}", EXIT_REJECTED)
