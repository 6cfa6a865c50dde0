"""``bobrapet wait RUN``: drive an existing StoryRun to a terminal phase and print the result;
``bobrapet wait --all``: drive every unfinished run of the home (see :mod:`bobrapet.cli.batch`).

``wait RUN`` (and ``run``) drive only their own run and its child runs: an engine scoped
to them (:mod:`bobrapet.controllers.scope`) neither starts nor takes over other runs, so
when it exits no run it touched is left half-done; other unfinished runs are named in a
note and left exactly as they were for ``wait --all`` (or their own ``wait``).

Also the pieces ``run`` shares: reading a run and its Story, driving it inside an
:class:`~bobrapet.host.engine_host.EngineHost` with the progress view on stderr, and the
result on stdout.

Invariants: stdout holds only the result (``-o json`` exactly the final StoryRun object);
progress and messages go to stderr. Exit 0 when the run Succeeded, 1 when it ended in any
other phase, was not found or the wait timed out, 2 for usage errors, 130 on Ctrl-C. An
interrupted or timed-out wait changes nothing: the run keeps its state and a later
``wait`` resumes it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bobrapet.api import runmeta
from bobrapet.api.durations import parse_duration
from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import STEP_RUN, STORY_RUN
from bobrapet.api.runmeta import redrive_pending
from bobrapet.api.types.enums import TERMINAL_PHASES
from bobrapet.cli import startup
from bobrapet.cli.app import EXIT_REJECTED, EXIT_USAGE, app, fail, state
from bobrapet.cli.commands.common import namespace_option, run
from bobrapet.cli.output import dump_json, dump_yaml
from bobrapet.cli.progress import GateHint, format_seconds, open_progress, parse_time, readable_duration
from bobrapet.executors.logpath import step_log_path
from bobrapet.host.embedded import ControlPlane

if TYPE_CHECKING:
    from bobrapet.executors.protocol import Executor
    from bobrapet.host.runs_view import RunsView

EXIT_INTERRUPTED = 130
RESULT_FORMATS = ("json", "yaml")
_FAILED_PHASES = ("Failed", "Timeout", "Aborted")


# --------------------------------------------------------------------------- arguments


def output_option() -> Any:
    return typer.Option(
        "--output",
        "-o",
        metavar="json|yaml",
        help="Print the final StoryRun as json or yaml (default: summary).",
    )


def timeout_option() -> Any:
    return typer.Option(
        "--timeout",
        metavar="DURATION",
        help='Stop waiting after this long, e.g. "30s", "5m" (the run keeps going later).',
    )


def workers_option() -> Any:
    return typer.Option(
        "--workers", min=1, metavar="N", help="Worker processes for Python engrams (default: automatic)."
    )


def check_output(fmt: str | None) -> None:
    if fmt is not None and fmt not in RESULT_FORMATS:
        raise fail(
            f'unknown output format "{fmt}" for -o; use one of: {", ".join(RESULT_FORMATS)}', EXIT_USAGE
        )


def parse_timeout(text: str | None) -> float | None:
    """Seconds of ``--timeout`` (a positive Go duration), or None when not given."""
    if text is None:
        return None
    try:
        seconds = parse_duration(text).total_seconds()
    except ValueError as err:
        raise fail(f"--timeout: {err}", EXIT_USAGE) from None
    if seconds <= 0:
        raise fail(f'--timeout: must be a positive duration such as "30s" (got "{text}")', EXIT_USAGE)
    return seconds


# --------------------------------------------------------------------------- reading runs


def home_flag() -> str:
    """`` --home H`` when the home in use is not the one a bare command would find."""
    default = Path(os.environ.get("BOBRAPET_HOME") or ".bobrapet")
    return "" if state.home == default else f" --home {state.home}"


def namespace_flag(namespace: str) -> str:
    return "" if namespace == "default" else f" -n {namespace}"


def run_command_hint(verb: str, name: str, namespace: str) -> str:
    """``bobrapet wait NAME [-n NS]`` — the command line to continue with ``name``."""
    return f"bobrapet{home_flag()} {verb} {name}{namespace_flag(namespace)}"


def gate_hint(namespace: str) -> GateHint:
    """The approve/reject commands as they work when pasted in another terminal."""
    return GateHint(cli=f"bobrapet{home_flag()}", flags=namespace_flag(namespace))


async def read_run(plane: ControlPlane, name: str, namespace: str) -> dict[str, Any]:
    """The StoryRun, or exit 1 with a message saying how to list runs."""
    try:
        if not plane.exists:
            raise NotFound(STORY_RUN.kind, name, STORY_RUN.group)
        return await plane.client.get(STORY_RUN, name, namespace)
    except NotFound:
        raise fail(
            f'storyrun "{name}" not found in namespace "{namespace}" '
            f"(list runs with `bobrapet get storyruns -n {namespace}`)",
            EXIT_REJECTED,
        ) from None


async def story_of(plane: ControlPlane, run_obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Story the run executes (its recorded copy once started), or None when it no longer exists."""
    from bobrapet.controllers.story_snapshots import read_run_story

    return await read_run_story(plane.client, dict(run_obj))


def all_steps(story: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    spec = (story or {}).get("spec") or {}
    steps: list[Mapping[str, Any]] = []
    for key in ("steps", "compensations", "finally"):
        steps.extend(s for s in spec.get(key) or [] if isinstance(s, Mapping))
    return steps


def step_names(story: Mapping[str, Any] | None) -> list[str]:
    """Names of the main steps, compensations and finally steps, in declaration order."""
    return [str(s["name"]) for s in all_steps(story) if s.get("name")]


def gate_steps(story: Mapping[str, Any] | None) -> list[str]:
    return [str(s["name"]) for s in all_steps(story) if s.get("name") and s.get("type") == "gate"]


def phase_of(run_obj: Mapping[str, Any]) -> str:
    return str((run_obj.get("status") or {}).get("phase") or "")


def is_terminal(run_obj: Mapping[str, Any]) -> bool:
    return phase_of(run_obj) in TERMINAL_PHASES


# --------------------------------------------------------------------------- driving


async def drive(
    plane: ControlPlane,
    run_obj: dict[str, Any],
    *,
    story: Mapping[str, Any] | None,
    timeout: float | None,
    timeout_text: str | None,
    workers: int | None,
    pool: Executor | None = None,
) -> dict[str, Any]:
    """Drive ``run_obj`` until it is terminal, showing progress; returns the final run.

    When a ``bobrapet serve`` of the home runs, its engine drives the run and this process
    only follows it (no engine, no worker pool of its own); should that serve stop
    meanwhile, this process drives the run itself from then on.

    ``pool``: the worker pool started early (:func:`bobrapet.host.pool.start_early`) for the
    engine to use (the caller still closes it); None: the engine starts its own.
    """
    from bobrapet.host.serve_file import live

    meta = run_obj["metadata"]
    name, namespace = str(meta["name"]), str(meta.get("namespace") or "default")
    with open_progress(
        state.err, gates=gate_steps(story), steps=step_names(story), hint=gate_hint(namespace)
    ) as view:
        # Until the engine takes up a pending redrive, the run shows its previous attempt:
        # showing that would announce an end before the new attempt starts.
        progress = _Progress(view, run_obj)
        deadline = None if timeout is None else time.monotonic() + timeout
        serve = live(state.home)
        if serve is not None:
            from bobrapet.host.follower import RunFollower, ServeGone

            try:
                async with RunFollower(plane, serve) as follower:
                    state.err.print(
                        f"following: bobrapet serve (pid {serve.pid}, {serve.address}) drives this run",
                        markup=False,
                        highlight=False,
                    )
                    return await _wait(follower, name, namespace, timeout, timeout_text, progress)
            except ServeGone as gone:
                state.err.print(f"note: {gone}; driving the run here", markup=False, highlight=False)
                timeout = _remaining(deadline)
        from bobrapet.controllers.scope import RunScope
        from bobrapet.host.engine_host import EngineHost

        factory = None if pool is None else _given(pool)
        scope = RunScope.of([(namespace, name)])
        async with EngineHost(plane, workers=workers, scope=scope, executor_factory=factory) as host:
            startup.resume()  # the engine is loaded: collect again while it runs
            _note_other_runs(host, namespace, name)
            return await _wait(host, name, namespace, timeout, timeout_text, progress)


def _remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (a ``time.monotonic()`` value; None: no limit)."""
    return None if deadline is None else max(deadline - time.monotonic(), 0.001)


class _Progress:
    """Feeds the progress view, holding back a run that still shows its previous attempt."""

    def __init__(self, view: Any, run_obj: dict[str, Any]) -> None:
        self.view = view
        self.previous_end = (run_obj.get("status") or {}).get("finishedAt")
        self.stale = redrive_pending(run_obj)
        if not self.stale:
            view.update(run_obj)

    def update(self, current: dict[str, Any], step_runs: list[dict[str, Any]]) -> None:
        if self.stale and (redrive_pending(current) or _same_end(current, self.previous_end)):
            return
        self.stale = False
        self.view.update(current, step_runs)


async def _wait(
    host: RunsView,
    name: str,
    namespace: str,
    timeout: float | None,
    timeout_text: str | None,
    progress: _Progress,
) -> dict[str, Any]:
    """``host.wait_for_run`` with progress, its failures as the command's exits."""

    def on_update(current: dict[str, Any]) -> None:
        progress.update(current, host.step_runs(namespace, name))

    try:
        return await host.wait_for_run(namespace, name, timeout=timeout, on_update=on_update)
    except TimeoutError:
        raise fail(
            f"timed out waiting for run {name} after {timeout_text}; it keeps its state, "
            f"resume with `{run_command_hint('wait', name, namespace)}`",
            EXIT_REJECTED,
        ) from None
    except NotFound:
        raise fail(f'storyrun "{name}" was deleted while waiting for it', EXIT_REJECTED) from None


def _given(pool: Executor) -> Callable[[], Executor]:
    return lambda: pool


def _note_other_runs(host: Any, namespace: str, name: str) -> None:
    """Say so when other runs of the home are unfinished: this engine leaves them alone
    (``wait --all`` drives them)."""
    others = sorted(
        f"{r['metadata'].get('namespace') or 'default'}/{r['metadata']['name']}"
        for r in host.unfinished_runs()
        if not host.drives(r) and not runs_label(r, runmeta.PARENT_STORYRUN)
    )
    if not others:
        return
    shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
    state.err.print(
        f"note: {len(others)} other unfinished run(s) of this home are not driven by this command: "
        f"{shown} (drive them with `bobrapet{home_flag()} wait --all`)",
        markup=False,
        highlight=False,
    )


def runs_label(obj: Mapping[str, Any], key: str) -> str:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return str(labels.get(key) or "")


def _same_end(run_obj: Mapping[str, Any], previous_end: object) -> bool:
    """Whether ``run_obj`` still shows the end of the attempt before a redrive."""
    return is_terminal(run_obj) and (run_obj.get("status") or {}).get("finishedAt") == previous_end


def interrupted(name: str, namespace: str) -> typer.Exit:
    """The Ctrl-C exit: nothing is lost, say how to go on."""
    state.err.print(
        f"interrupted: run {name} keeps its state; resume with `{run_command_hint('wait', name, namespace)}`",
        markup=False,
        highlight=False,
    )
    return typer.Exit(EXIT_INTERRUPTED)


# --------------------------------------------------------------------------- result


def log_path(home: Path, namespace: str, step_run: str) -> Path:
    return step_log_path(home, namespace, step_run)


def failed_steps(run_obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(step, message) of every step that ended Failed, Timeout or Aborted, in run order."""
    states = (run_obj.get("status") or {}).get("stepStates") or {}
    return [
        (str(step), str(s.get("message") or ""))
        for step, s in states.items()
        if isinstance(s, Mapping) and s.get("phase") in _FAILED_PHASES
    ]


async def failed_steps_with_logs(plane: ControlPlane, run_obj: Mapping[str, Any]) -> list[str]:
    """The failed steps of the run that left a log (their own, or one of their branches')."""
    failed = [step for step, _ in failed_steps(run_obj)]
    if not failed:
        return []
    meta = run_obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    selector = runmeta.steps_selector(str(meta.get("name")))
    step_runs = await plane.client.list(STEP_RUN, namespace, labels=selector)
    logged: set[str] = set()
    for step_run in step_runs:
        sr_meta = step_run.get("metadata") or {}
        if not log_path(state.home, namespace, str(sr_meta.get("name"))).is_file():
            continue
        logged.add(str((step_run.get("spec") or {}).get("stepId") or ""))
        logged.add(str((sr_meta.get("labels") or {}).get(runmeta.PARENT_STEP) or ""))
    return [step for step in failed if step in logged]


def run_duration(run_obj: Mapping[str, Any]) -> str | None:
    status = run_obj.get("status") or {}
    if status.get("duration"):
        return readable_duration(status["duration"])
    start, end = parse_time(status.get("startedAt")), parse_time(status.get("finishedAt"))
    return format_seconds(end[0] - start[0]) if start and end else None


def _logs_line(name: str, namespace: str, logged: Collection[str] | None) -> str | None:
    """How to see the failed steps' output; None when none of them wrote any."""
    command = run_command_hint("logs", name, namespace)
    if logged is None:
        return f"logs: {command} [STEP]"
    steps = list(logged)
    if not steps:
        return None
    if len(steps) == 1:
        return f"logs: {run_command_hint('logs', f'{name} {steps[0]}', namespace)}"
    return f"logs: {command} [STEP] (steps with logs: {', '.join(steps)})"


def summary(run_obj: Mapping[str, Any], logged: Collection[str] | None = None) -> str:
    """The human result: name, phase, duration, message, failed steps and output.

    ``logged`` names the failed steps that wrote a log (then the logs hint names the step,
    and is left out when there is none); None when unknown.
    """
    status = run_obj.get("status") or {}
    meta = run_obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    head = f"storyrun/{name} {phase_of(run_obj) or 'Pending'}"
    took = run_duration(run_obj)
    lines = [head + (f" in {took}" if took else "")]
    if status.get("message"):
        lines.append(f"message: {status['message']}")
    failed = failed_steps(run_obj)
    if failed:
        lines.append("failed steps:")
        lines.extend(f"  {step}: {message}".rstrip() for step, message in failed)
        logs = _logs_line(name, str(meta.get("namespace") or "default"), logged)
        if logs:
            lines.append(logs)
    if "output" in status and status["output"] is not None:
        lines.append("output:")
        lines.extend("  " + line for line in dump_yaml(status["output"]).rstrip("\n").splitlines())
    return "\n".join(lines)


def print_result(run_obj: Mapping[str, Any], fmt: str | None, logged: Collection[str] | None = None) -> None:
    if fmt == "json":
        text = dump_json(run_obj)
    elif fmt == "yaml":
        text = dump_yaml(run_obj)
    else:
        text = summary(run_obj, logged)
    state.out.out(text.rstrip("\n"), highlight=False)


def exit_code(run_obj: Mapping[str, Any]) -> int:
    return 0 if phase_of(run_obj) == "Succeeded" else EXIT_REJECTED


# --------------------------------------------------------------------------- command


@app.command("wait")
def wait_command(
    name: Annotated[
        str | None, typer.Argument(metavar="[RUN]", help="The StoryRun to drive and wait for.")
    ] = None,
    all_runs: Annotated[
        bool,
        typer.Option("--all", help="Drive every unfinished run of the home (all namespaces) to its end."),
    ] = False,
    namespace: Annotated[str | None, namespace_option()] = None,
    output: Annotated[str | None, output_option()] = None,
    timeout: Annotated[str | None, timeout_option()] = None,
    workers: Annotated[int | None, workers_option()] = None,
) -> None:
    """Drive a StoryRun (or, with --all, every unfinished run) to a terminal phase with live progress.

    ``wait RUN`` drives only RUN and its child runs; other unfinished runs of the home are
    left as they are (a note names them) — ``wait --all`` drives them.
    """
    check_output(output)
    seconds = parse_timeout(timeout)
    if all_runs:
        if name is not None:
            raise fail("give either RUN or --all, not both", EXIT_USAGE)
        _wait_all(output, seconds, timeout, workers)
    if name is None:
        raise fail("missing RUN: bobrapet wait RUN (or --all for every unfinished run)", EXIT_USAGE)
    ns = namespace or "default"
    try:
        final, logged = run(wait_for_run(name, ns, seconds, timeout, workers))
    except KeyboardInterrupt:
        raise interrupted(name, ns) from None
    print_result(final, output, logged)
    raise typer.Exit(exit_code(final))


def _wait_all(output: str | None, seconds: float | None, timeout: str | None, workers: int | None) -> None:
    from bobrapet.cli.batch import drive_many, exit_code_many, print_many

    async def go() -> list[dict[str, Any]]:
        async with ControlPlane(state.home) as plane:
            if not plane.exists:
                return []
            return await drive_many(plane, None, timeout=seconds, timeout_text=timeout, workers=workers)

    try:
        finals = run(go())
    except KeyboardInterrupt:
        state.err.print(
            f"interrupted: runs keep their state; resume with `bobrapet{home_flag()} wait --all`",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if not finals:
        state.err.print("no unfinished runs in this home", markup=False, highlight=False)
        if output is not None:
            print_many([], output)
        raise typer.Exit(0)
    print_many(finals, output)
    raise typer.Exit(exit_code_many(finals))


async def wait_for_run(
    name: str, namespace: str, timeout: float | None, timeout_text: str | None, workers: int | None
) -> tuple[dict[str, Any], list[str]]:
    """The final run and its failed steps that wrote logs (an engine drives the run when it is
    unfinished or a redrive of it is pending)."""
    async with ControlPlane(state.home) as plane:
        current = await read_run(plane, name, namespace)
        if not is_terminal(current) or redrive_pending(current):  # else: no engine start-up
            story = await story_of(plane, current)
            current = await drive(
                plane, current, story=story, timeout=timeout, timeout_text=timeout_text, workers=workers
            )
        return current, await failed_steps_with_logs(plane, current)
