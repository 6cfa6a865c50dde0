"""Progress of a StoryRun on stderr: a live table on a terminal, one line per change otherwise.

Both views are fed the StoryRun wire dict (and optionally its StepRuns) each time it
changes; neither writes to the store nor reads the clock except through the injected
``clock`` (a monotonic seconds function), so rendering is deterministic under test.

Invariants:
* :class:`PlainProgress` prints exactly one line per observed change of a step's
  (phase, retries) or of the run's phase, in the order the changes are seen; an update
  that changes nothing prints nothing, and ``Pending`` (of a step or the run) prints nothing.
* A step the run still reports ``Pending`` whose StepRun is ``Running`` is shown Running,
  and one it reports ``Pending`` or ``Running`` whose StepRun ``Succeeded`` is shown
  Succeeded, and a step the run does not list yet is shown from its StepRun (the StepRun is
  the fresher of the two: the run's status mirrors step progress a little later).
* Durations are shown as ``12ms``, ``0.2s``, ``1m5s`` (:func:`format_seconds`), also the
  run's Go-style ``status.duration`` (``11.908ms`` → ``12ms``).
* A step's duration is taken from its ``startedAt``/``finishedAt`` when both are
  sub-second precise, else from when this view first saw the step active and when it saw
  it finish, else from the second-precision timestamps; unknown otherwise.
* The live view only swaps a reference to the latest snapshot on update; the table is
  built on rich's refresh thread, so an update costs O(1) there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.text import Text

from bobrapet.api.durations import parse_duration
from bobrapet.api.runmeta import PARENT_STEP
from bobrapet.api.types.enums import TERMINAL_PHASES

if TYPE_CHECKING:
    from rich.table import Table

# rich's Live and Table are imported by LiveProgress only: plain progress (not a terminal,
# as under ``-o json`` in a pipe) never loads them.

Clock = Callable[[], float]
# Phases after which a step's message explains a problem worth printing.
_TROUBLE = frozenset({"Failed", "Timeout", "Aborted", "Canceled", "Blocked"})
_STYLES = {
    "Succeeded": "green",
    "Failed": "red",
    "Timeout": "red",
    "Aborted": "red",
    "Canceled": "magenta",
    "Finished": "magenta",
    "Compensated": "magenta",
    "Running": "yellow",
    "Paused": "cyan",
    "Blocked": "red",
    "Skipped": "dim",
    "Pending": "dim",
}


@dataclass(frozen=True)
class StepView:
    """One step of the run as the views show it."""

    name: str
    phase: str
    message: str
    started_at: str | None
    finished_at: str | None
    retries: int

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES


@dataclass(frozen=True)
class RunView:
    """The run summary plus its steps in the order the run reports them."""

    name: str
    phase: str
    message: str
    duration: str | None
    steps: tuple[StepView, ...]

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES


@dataclass(frozen=True)
class _StepRunFacts:
    retries: int
    running: bool
    succeeded: bool = False
    #: A branch of a parallel step (the run lists the parallel step, not its branches).
    branch: bool = False


def _step_run_facts(step_runs: Sequence[Mapping[str, Any]]) -> dict[str, _StepRunFacts]:
    """stepId → retries and running-ness of its StepRun (parallel branches keyed by branch name)."""
    found: dict[str, _StepRunFacts] = {}
    for step_run in step_runs:
        step_id = (step_run.get("spec") or {}).get("stepId")
        status = step_run.get("status") or {}
        retries = status.get("retries")
        if isinstance(step_id, str):
            found[step_id] = _StepRunFacts(
                retries=retries if isinstance(retries, int) and retries > 0 else 0,
                running=status.get("phase") == "Running",
                succeeded=status.get("phase") == "Succeeded",
                branch=PARENT_STEP in ((step_run.get("metadata") or {}).get("labels") or {}),
            )
    return found


_NO_FACTS = _StepRunFacts(retries=0, running=False)


def _step_view(name: str, state: Mapping[str, Any], facts: _StepRunFacts) -> StepView:
    phase = str(state.get("phase") or "Pending")
    if phase == "Pending" and facts.running:
        phase = "Running"
    elif phase in ("Pending", "Running") and facts.succeeded:
        phase = "Succeeded"
    return StepView(
        name=name,
        phase=phase,
        message=str(state.get("message") or ""),
        started_at=state.get("startedAt"),
        finished_at=state.get("finishedAt"),
        retries=facts.retries,
    )


def snapshot(run: Mapping[str, Any], step_runs: Sequence[Mapping[str, Any]] = ()) -> RunView:
    """The view model of ``run`` (a StoryRun wire dict) and, optionally, its StepRuns."""
    status = run.get("status") or {}
    facts = _step_run_facts(step_runs) if step_runs else {}
    states = status.get("stepStates") or {}
    steps = tuple(
        _step_view(name, state, facts.get(name, _NO_FACTS))
        for name, state in states.items()
        if isinstance(state, dict)
    ) + tuple(  # started steps the run's status does not mirror yet
        _step_view(name, {}, fact) for name, fact in facts.items() if name not in states and not fact.branch
    )
    return RunView(
        name=str((run.get("metadata") or {}).get("name") or ""),
        phase=str(status.get("phase") or "Pending"),
        message=str(status.get("message") or ""),
        duration=readable_duration(status.get("duration")),
        steps=steps,
    )


def readable_duration(text: object) -> str | None:
    """A Go duration such as ``11.908ms`` or ``2.784605s`` as :func:`format_seconds` shows it.

    Text that is not a duration is returned as it is; None or empty gives None.
    """
    if not text:
        return None
    try:
        return format_seconds(parse_duration(str(text)).total_seconds())
    except (ValueError, OverflowError):
        return str(text)


def parse_time(text: str | None) -> tuple[float, bool] | None:
    """(epoch seconds, has a fractional part) of an RFC 3339 timestamp, or None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp(), "." in text


def format_seconds(seconds: float) -> str:
    """``12ms``, ``0.2s``, ``9.9s``, ``42s``, ``1m5s``, ``2h3m``."""
    seconds = max(seconds, 0.0)
    if seconds < 0.1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m" if hours else f"{minutes}m{secs}s"


class _Timing:
    """When this process first saw each step active and when it saw it finish."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.run_started: float | None = None

    def observe(self, step: StepView) -> None:
        if step.terminal:
            if step.name not in self.finished:
                self.finished[step.name] = self.clock()
        else:
            if self.finished.pop(step.name, None) is not None:  # redriven: it runs again
                self.started.pop(step.name, None)
            if step.phase != "Pending" and step.name not in self.started:
                self.started[step.name] = self.clock()

    def duration(self, step: StepView) -> float | None:
        """Seconds the step took (terminal) or has been running (active); None if unknown."""
        start, end = parse_time(step.started_at), parse_time(step.finished_at)
        if step.terminal and start and end and (start[1] or end[1]):
            return end[0] - start[0]
        seen = self.started.get(step.name)
        if seen is not None:
            return self.finished.get(step.name, self.clock()) - seen
        if step.terminal and start and end:
            return end[0] - start[0]
        return None


@dataclass(frozen=True)
class GateHint:
    """How to decide a gate from another terminal: ``<cli> approve RUN STEP<flags>``.

    ``cli`` is the program with its global options (``bobrapet --home H``), ``flags`` what
    follows the step (`` -n NS``), so the printed commands work when pasted.
    """

    cli: str = "bobrapet"
    flags: str = ""

    def both(self, run: str, step: str) -> str:
        return f"{self.one('approve', run, step)} | {self.one('reject', run, step)}"

    def one(self, verb: str, run: str, step: str) -> str:
        return f"{self.cli} {verb} {run} {step}{self.flags}"

    def short(self, run: str, step: str) -> str:
        return f"{self.cli} approve|reject {run} {step}{self.flags}"


class ProgressView(Protocol):
    """What ``run``/``wait`` feed: every new version of the run (and its StepRuns)."""

    def update(self, run: Mapping[str, Any], step_runs: Sequence[Mapping[str, Any]] = ()) -> None: ...


class PlainProgress:
    """One line per change, e.g. ``step fetch Running`` then ``step fetch Succeeded 0.2s``."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        clock: Clock = time.monotonic,
        gates: Collection[str] = (),
        hint: GateHint = GateHint(),
    ) -> None:
        self.write = write
        self.gates = frozenset(gates)
        self.hint = hint
        self.timing = _Timing(clock)
        self._seen: dict[str, tuple[str, int]] = {}
        self._run_phase: str | None = None

    def update(self, run: Mapping[str, Any], step_runs: Sequence[Mapping[str, Any]] = ()) -> None:
        view = snapshot(run, step_runs)
        if self.timing.run_started is None:
            self.timing.run_started = self.timing.clock()
        run_changed = view.phase != self._run_phase and view.phase != "Pending"
        self._run_phase = view.phase
        if run_changed and not view.terminal:  # the run starts before its steps ...
            self.write(self.run_line(view))
        for step in view.steps:
            key = (step.phase, step.retries)
            if self._seen.get(step.name) == key:
                continue
            self._seen[step.name] = key
            self.timing.observe(step)
            if step.phase != "Pending":
                self.write(self.step_line(view.name, step))
        if run_changed and view.terminal:  # ... and ends after them
            self.write(self.run_line(view))

    def step_line(self, run_name: str, step: StepView) -> str:
        line = f"step {step.name} {step.phase}"
        if step.terminal and step.phase != "Skipped":
            took = self.timing.duration(step)
            if took is not None:
                line += f" {format_seconds(took)}"
        if step.retries:
            line += f" (retry {step.retries})"
        if step.message and step.phase in _TROUBLE:
            line += f": {step.message}"
        if step.name in self.gates and not step.terminal and step.phase != "Pending":
            line += f" (waiting for a decision: {self.hint.both(run_name, step.name)})"
        return line

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run_line(self, view: RunView) -> str:
        line = f"run {view.name} {view.phase}"
        if view.terminal:
            if view.duration:
                line += f" {view.duration}"
            if view.message:
                line += f": {view.message}"
        return line


class LiveProgress:
    """A table of the steps, redrawn in place on a terminal (a rich ``Live``)."""

    def __init__(
        self,
        console: Console,
        *,
        clock: Clock = time.monotonic,
        gates: Collection[str] = (),
        steps: Sequence[str] = (),
        hint: GateHint = GateHint(),
    ) -> None:
        self.console = console
        self.gates = frozenset(gates)
        self.hint = hint
        self.order = tuple(steps)
        self.timing = _Timing(clock)
        self._view: RunView | None = None
        from rich.live import Live

        self._live = Live(
            console=console,
            get_renderable=self.render,
            refresh_per_second=8,
            transient=False,
            redirect_stdout=False,  # stdout carries the result (``-o json``): never the display
            redirect_stderr=False,
        )

    def update(self, run: Mapping[str, Any], step_runs: Sequence[Mapping[str, Any]] = ()) -> None:
        view = snapshot(run, step_runs)
        if self.timing.run_started is None:
            self.timing.run_started = self.timing.clock()
        for step in view.steps:
            self.timing.observe(step)
        self._view = view

    def render(self) -> RenderableType:
        view = self._view
        if view is None:
            return Text("starting…", style="dim")
        head = Text.assemble(
            ("run ", "bold"), (view.name, "bold"), " ", (view.phase, _STYLES.get(view.phase, ""))
        )
        done = sum(1 for s in view.steps if s.terminal)
        total = max(len(self.order), len(view.steps))
        elapsed = view.duration if view.terminal and view.duration else self._run_elapsed()
        head.append(f"  {done}/{total} steps  {elapsed}", style="dim")
        return Group(head, self.table(view))

    def _run_elapsed(self) -> str:
        started = self.timing.run_started
        return format_seconds(self.timing.clock() - started) if started is not None else ""

    def table(self, view: RunView) -> Table:
        from rich.table import Table

        tbl = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
        for column in ("STEP", "PHASE", "TIME", "MESSAGE"):
            tbl.add_column(column, no_wrap=column != "MESSAGE", overflow="ellipsis")
        known = {s.name: s for s in view.steps}
        names = [*self.order, *(s.name for s in view.steps if s.name not in set(self.order))]
        for name in names:
            step = known.get(name)
            if step is None:
                tbl.add_row(Text(name), Text("-", style="dim"), Text(""), Text(""))
                continue
            took = self.timing.duration(step) if step.phase != "Skipped" else None
            message = "" if step.phase == "Succeeded" else step.message  # success needs no words
            if step.retries:
                message = f"(retry {step.retries}) {message}"
            if name in self.gates and not step.terminal and step.phase != "Pending":
                message = self.hint.short(view.name, name)
            tbl.add_row(
                Text(name),
                Text(step.phase, style=_STYLES.get(step.phase, "")),
                Text(format_seconds(took) if took is not None else ""),
                Text(message, style="dim"),
            )
        return tbl

    def __enter__(self) -> LiveProgress:
        self._live.start(refresh=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()


def open_progress(
    console: Console,
    *,
    gates: Collection[str] = (),
    steps: Sequence[str] = (),
    clock: Clock = time.monotonic,
    hint: GateHint = GateHint(),
) -> PlainProgress | LiveProgress:
    """The live table when ``console`` is a terminal, else plain lines printed on it.

    Use as a context manager around the wait; feed it with ``update``.
    """
    if console.is_terminal:
        return LiveProgress(console, clock=clock, gates=gates, steps=steps, hint=hint)

    def write(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    return PlainProgress(write, clock=clock, gates=gates, hint=hint)
