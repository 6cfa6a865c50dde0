"""``bobrapet logs RUN [STEP] -f``: print the step logs of a run as they grow, until it ends.

Whoever drives the run (``bobrapet run`` in another terminal, ``wait``, a long-lived engine)
writes the logs; this process only reads. It learns about the run from the store's watch
(which reads the change log in the database, so other processes' writes are seen): a new
StepRun of the run (a step that starts later, a parallel branch, a redrive's new StepRun)
adds a log to follow, a finished StepRun has its log read to the end, and the run reaching
a terminal phase ends the follow. Log files are polled every :data:`TAIL_INTERVAL` seconds,
and only those of StepRuns that have not finished (none: no polling at all).

Invariants:

* every byte of a followed log is printed exactly once, in order, by complete lines (an
  unterminated last line is printed, with a newline, once its StepRun has finished);
* a StepRun that finished has its whole log printed (the executor completes a log before
  the outcome is recorded), so when the run is terminal, after one last look at its
  StepRuns, everything the selected steps wrote has been printed and the follow returns;
* a run that is terminal but has a redrive pending is not finished: the follow goes on;
* when ``headers`` is set, the line ``== step <id> (<steprun>) ==`` precedes output whenever
  it comes from another log than the previous output;
* nothing is written to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bobrapet.api import runmeta
from bobrapet.api.errors import StatusError
from bobrapet.api.kinds import STEP_RUN, STORY_RUN, Kind
from bobrapet.api.runmeta import redrive_pending
from bobrapet.api.types.enums import TERMINAL_PHASES
from bobrapet.cli.logtail import LogTail
from bobrapet.executors.logpath import step_log_path
from bobrapet.runtime.informer import bookmark
from bobrapet.store.client import Client, Resource

#: Seconds between two looks at the logs of running steps.
TAIL_INTERVAL = 0.2

Ending = Literal["finished", "deleted"]


def phase_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def finished(run: Resource) -> bool:
    """The run is terminal and no redrive of it is pending."""
    return phase_of(run) in TERMINAL_PHASES and not redrive_pending(run)


@dataclass
class _Log:
    step_run: Mapping[str, Any]
    tail: LogTail
    #: Its StepRun has not finished: the log may grow.
    active: bool = True
    #: Its StepRun finished since the log was last read: read it to the end once.
    closing: bool = False


@dataclass
class LogFollower:
    """Follows the logs of one run's selected StepRuns (see the module docstring).

    ``matches`` selects the StepRuns of the run to follow (a step, its branches, or all);
    ``header`` is the line printed before a log's output; ``write`` prints text.
    """

    client: Client
    home: Path
    namespace: str
    run: str
    matches: Callable[[Mapping[str, Any]], bool]
    header: Callable[[Mapping[str, Any]], str] | None
    write: Callable[[str], None]
    tail_interval: float = TAIL_INTERVAL
    _logs: dict[str, _Log] = field(default_factory=dict)
    _shown: str | None = None
    _run: Resource | None = None
    _deleted: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(
        self,
        since: str | None,
        run: Resource,
        step_runs: Iterable[Mapping[str, Any]],
        tail: int | None = None,
    ) -> Ending:
        """Print the logs of ``step_runs`` (their last ``tail`` lines), then follow the run
        from resourceVersion ``since`` (taken before ``run`` and ``step_runs`` were read)."""
        self._run = run
        for step_run in step_runs:
            self._start(step_run, tail)
        watchers = [
            asyncio.create_task(self._watch(STEP_RUN, since, self._on_step_run)),
            asyncio.create_task(self._watch(STORY_RUN, since, self._on_run)),
        ]
        for task in watchers:
            task.add_done_callback(lambda _: self._wake.set())  # a failed watch ends the follow
        try:
            return await self._loop(watchers)
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)

    async def _loop(self, watchers: list[asyncio.Task[None]]) -> Ending:
        while True:
            self._wake.clear()
            for task in watchers:
                if task.done():
                    task.result()  # a failed watch ends the follow with its error
            if self._deleted:
                self._drain(final=True)
                return "deleted"
            if self._run is not None and finished(self._run):
                await self._last_look()
                return "finished"
            self._drain()
            polling = any(log.active for log in self._logs.values())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tail_interval if polling else None)

    async def _last_look(self) -> None:
        """The run ended: take up StepRuns not seen yet, print every log to its end."""
        for step_run in await self.client.list(
            STEP_RUN, self.namespace, labels=runmeta.steps_selector(self.run)
        ):
            if self.matches(step_run):
                self._update(step_run)
        self._drain(final=True)

    # ------------------------------------------------------------------ logs

    def _start(self, step_run: Mapping[str, Any], tail: int | None) -> None:
        log = self._update(step_run)
        if tail is not None:
            self._print(log, log.tail.skip_to_tail(tail))
        self._read(log, final=log.closing)

    def _update(self, step_run: Mapping[str, Any]) -> _Log:
        name = str(step_run["metadata"]["name"])
        log = self._logs.get(name)
        if log is None:
            path = step_log_path(self.home, self.namespace, name)
            log = self._logs[name] = _Log(step_run, LogTail(path))
        log.step_run = step_run
        ended = phase_of(step_run) in TERMINAL_PHASES
        if ended and log.active:
            log.closing = True
        log.active = not ended
        return log

    def _drain(self, *, final: bool = False) -> None:
        for log in self._logs.values():
            if final or log.active or log.closing:
                self._read(log, final=final or log.closing)

    def _read(self, log: _Log, *, final: bool) -> None:
        data = log.tail.read(final=final)
        if final:
            log.closing = False
        self._print(log, data)

    def _print(self, log: _Log, data: bytes) -> None:
        if not data:
            return
        name = str(log.step_run["metadata"]["name"])
        if self.header is not None and self._shown != name:
            self.write(self.header(log.step_run) + "\n")
        self._shown = name
        text = data.decode("utf-8", errors="replace")
        self.write(text if text.endswith("\n") else text + "\n")

    # --------------------------------------------------------------- watches

    def _on_step_run(self, event_type: str, step_run: Resource) -> None:
        if event_type == "DELETED" or runmeta.story_run_of(step_run) != self.run:
            return
        if self.matches(step_run):
            self._update(step_run)
            self._wake.set()

    def _on_run(self, event_type: str, run: Resource) -> None:
        if (run.get("metadata") or {}).get("name") != self.run:
            return
        if event_type == "DELETED":
            self._deleted = True
        else:
            self._run = run
        self._wake.set()

    async def _watch(self, kind: Kind, since: str | None, handle: Callable[[str, Resource], None]) -> None:
        """Hand every event of ``kind`` in the namespace to ``handle``; after lost events
        (410), hand it the current objects instead and watch on from now."""
        while True:
            try:
                async for event in self.client.watch(kind, self.namespace, since=since):
                    handle(event.type, event.object)
                raise StatusError("the store was closed while following", "ServiceUnavailable", 503)
            except StatusError as exc:
                if exc.code != 410:
                    raise
                since = await bookmark(self.client)
                for obj in await self._current(kind):
                    handle("MODIFIED", obj)

    async def _current(self, kind: Kind) -> list[Resource]:
        if kind is STEP_RUN:
            return await self.client.list(STEP_RUN, self.namespace, labels=runmeta.steps_selector(self.run))
        found = await self.client.list(STORY_RUN, self.namespace, fields=f"metadata.name={self.run}")
        if not found:
            self._deleted = True
        return found
