"""Driving several StoryRuns at once: ``run --inputs-file`` with many entries, ``wait --all``.

Progress goes to stderr as one line per run when it finishes (``[3/10] storyrun/x
Succeeded in 1.2s``), readable in a terminal and in a CI log alike; the result goes to
stdout: one line per run (``-o json|yaml``: a ``List`` of the final StoryRuns).

Invariants: runs are followed by ``(namespace, name)``; a run deleted while waited for
counts as not succeeded; the exit code is 0 only when every run Succeeded. Child runs
(``executeStory``) are driven with their parent and never listed on their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bobrapet.api import runmeta
from bobrapet.cli import startup
from bobrapet.cli.app import EXIT_OK, EXIT_REJECTED, fail, state
from bobrapet.cli.output import dump_json, dump_yaml
from bobrapet.host.embedded import ControlPlane
from bobrapet.host.runs_view import is_terminal

if TYPE_CHECKING:
    from bobrapet.executors.protocol import Executor
    from bobrapet.host.runs_view import RunsView

Key = tuple[str, str]


def key_of(run: Mapping[str, Any]) -> Key:
    meta = run.get("metadata") or {}
    return (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))


def is_child(run: Mapping[str, Any]) -> bool:
    labels = (run.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(runmeta.PARENT_STORYRUN))


def phase(run: Mapping[str, Any]) -> str:
    return str((run.get("status") or {}).get("phase") or "Pending")


def result_line(run: Mapping[str, Any]) -> str:
    """``storyrun/x Succeeded in 1.2s`` (``-n ns`` when not default), plus the message of a failure."""
    from bobrapet.cli.commands.wait import run_duration

    namespace, name = key_of(run)
    took = run_duration(run)
    where = "" if namespace == "default" else f" -n {namespace}"
    line = f"storyrun/{name}{where} {phase(run)}" + (f" in {took}" if took else "")
    message = (run.get("status") or {}).get("message")
    if phase(run) != "Succeeded" and message:
        line += f": {message}"
    return line


class Tally:
    """Counts finished runs and prints a progress line for each."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done: dict[Key, dict[str, Any]] = {}

    def finish(self, run: dict[str, Any]) -> None:
        key = key_of(run)
        if key in self.done:
            return
        self.done[key] = run
        self.total = max(self.total, len(self.done))
        width = len(str(self.total))
        state.err.print(
            f"[{len(self.done):>{width}}/{self.total}] {result_line(run)}", markup=False, highlight=False
        )


def _given(pool: Executor) -> Callable[[], Executor]:
    return lambda: pool


async def drive_many(
    plane: ControlPlane,
    targets: Sequence[Key] | None,
    *,
    timeout: float | None,
    timeout_text: str | None,
    workers: int | None,
    pool: Executor | None = None,
) -> list[dict[str, Any]]:
    """Drive ``targets`` (None: every unfinished run of the home) until each has finished.

    ``pool``: the worker pool started early for the engine to use (the caller closes it).
    When a ``bobrapet serve`` of the home runs, its engine drives the runs and this process
    follows them (driving them itself should the serve stop).

    Returns the final StoryRuns, in the order of ``targets`` (for None: in the order they
    finished). A run deleted meanwhile is returned as it was last seen, marked deleted.
    """
    from bobrapet.host.serve_file import live

    batch = _Batch(targets)
    serve = live(state.home)
    deadline = None if timeout is None else time.monotonic() + timeout
    if serve is not None:
        from bobrapet.host.follower import RunFollower, ServeGone

        try:
            async with RunFollower(plane, serve) as follower:
                state.err.print(
                    f"following: bobrapet serve (pid {serve.pid}, {serve.address}) drives these runs",
                    markup=False,
                    highlight=False,
                )
                return await batch.wait(follower, timeout, timeout_text)
        except ServeGone as gone:
            state.err.print(f"note: {gone}; driving the runs here", markup=False, highlight=False)
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0.001)
    from bobrapet.controllers.scope import RunScope
    from bobrapet.host.engine_host import EngineHost

    scope = None if targets is None else RunScope.of(targets)
    factory = None if pool is None else _given(pool)
    async with EngineHost(plane, workers=workers, scope=scope, executor_factory=factory) as host:
        startup.resume()  # the engine is loaded: collect again while it runs
        return await batch.wait(host, timeout, timeout_text)


class _Batch:
    """The runs waited for and those finished so far (kept when the driver changes)."""

    def __init__(self, targets: Sequence[Key] | None) -> None:
        self.targets = targets
        self.wanted: list[Key] | None = None if targets is None else list(dict.fromkeys(targets))
        self.tally: Tally | None = None
        self.last: dict[Key, dict[str, Any]] = {}

    async def wait(
        self, host: RunsView, timeout: float | None, timeout_text: str | None
    ) -> list[dict[str, Any]]:
        if self.wanted is None:
            self.wanted = [key_of(r) for r in host.unfinished_runs() if not is_child(r)]
            if not self.wanted:
                return []
        wanted = self.wanted
        if self.tally is None:
            state.err.print(
                f"driving {len(wanted)} run(s); progress: one line per finished run",
                markup=False,
                highlight=False,
            )
            self.tally = Tally(len(wanted))
        tally, last = self.tally, self.last
        known = set(wanted)

        def done() -> bool:
            if self.targets is None:
                for new in host.unfinished_runs():
                    if not is_child(new) and key_of(new) not in known:
                        known.add(key_of(new))  # a run created meanwhile (e.g. a trigger)
                        wanted.append(key_of(new))
                        tally.total += 1
            pending = False
            for namespace, name in wanted:
                if (namespace, name) in tally.done:
                    continue
                run = host.run(namespace, name)
                if run is None:
                    if (namespace, name) in last:  # deleted while we waited
                        seen = last[(namespace, name)]
                        status = {**(seen.get("status") or {}), "message": "deleted while waiting for it"}
                        tally.finish({**seen, "status": status})
                        continue
                    pending = True  # created just now: the cache has not seen it yet
                    continue
                last[(namespace, name)] = run
                if is_terminal(run):
                    tally.finish(run)
                else:
                    pending = True
            return not pending

        if not await host.run_until(done, timeout=timeout):
            left = len(wanted) - len(tally.done)
            hint = f"bobrapet{_home_flag()} wait --all"
            raise fail(
                f"timed out after {timeout_text}: {left} of {len(wanted)} run(s) not finished; "
                f"they keep their state, resume with `{hint}`",
                EXIT_REJECTED,
            )
        return [tally.done[k] for k in wanted if k in tally.done]


def _home_flag() -> str:
    from bobrapet.cli.commands.wait import home_flag

    return home_flag()


def print_many(finals: Sequence[Mapping[str, Any]], fmt: str | None) -> None:
    """The result of several runs on stdout, and a one-line tally on stderr."""
    if fmt in ("json", "yaml"):
        data = {"apiVersion": "v1", "kind": "List", "items": list(finals), "metadata": {}}
        text = dump_json(data) if fmt == "json" else dump_yaml(data)
        state.out.out(text.rstrip("\n"), highlight=False)
    else:
        for run in finals:
            state.out.out(result_line(run), highlight=False)
    counts: dict[str, int] = {}
    for run in finals:
        counts[phase(run)] = counts.get(phase(run), 0) + 1
    summary = ", ".join(f"{n} {p}" for p, n in sorted(counts.items()))
    state.err.print(f"{len(finals)} run(s): {summary}", markup=False, highlight=False)


def exit_code_many(finals: Sequence[Mapping[str, Any]]) -> int:
    """0 when every run Succeeded, else 1."""
    return EXIT_OK if all(phase(r) == "Succeeded" for r in finals) else EXIT_REJECTED
