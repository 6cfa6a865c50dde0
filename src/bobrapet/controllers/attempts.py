"""The attempt runner: owns the StepRun attempts this engine executes, records their outcomes.

The StepRun reconciler claims an attempt and hands it over (:meth:`AttemptRunner.submit`);
the runner runs it on the executor in a background task (never inside a reconcile) and
turns its :class:`~bobrapet.execution.request.ExecutionResult` into the StepRun's status with
:func:`bobrapet.engine.complete` (success, failure, timeout, or a scheduled retry).

Invariants:

* at most one attempt per StepRun runs here (keyed by namespace and name);
* an attempt that waited for capacity starts when the executor gives it a slot, unless the
  claim was lost meanwhile (then nothing runs). While this engine's claim write is the
  StepRun's latest version (as the cache shows it, else as the store does) the claim is
  current: nobody takes over the claims of a live engine (its lease), and a cancel or a
  deletion is a newer version (which also cancels the attempt through the reconciler), so
  it starts without a write; otherwise the claim is checked by writing ``Running``
  (compare-and-swap), as before. An attempt started without that write
  writes ``Running`` (``startedAt``: when its code started) only if it still runs
  :data:`RUNNING_HOLD` seconds later: a short step goes from ``WaitingForCapacity`` straight
  to its outcome, so ``bobrapet get`` may show a step that waited as waiting for up to
  :data:`RUNNING_HOLD` seconds after its code started;
* an outcome is written only while this engine still holds the claim (another engine may
  have taken the attempt over or finished it); a failing write is retried with back-off
  (nobody else would finish a StepRun a live engine holds); an engine error while running
  is recorded as a failed attempt, never left ``Running``;
* the runner is a manager runnable: :meth:`AttemptRunner.stop` (engine exit, after the
  controllers stopped) cancels the local attempts; their StepRuns stay claimed until
  another engine takes them over.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import STEP_RUN
from bobrapet.api.types.story import Step
from bobrapet.controllers.events import EventRecorder, EventSpec
from bobrapet.controllers.execution import ExecutionEnv
from bobrapet.controllers.offloaded import MAX_ROUNDS, load_blobs
from bobrapet.controllers.output_cache import write_cache
from bobrapet.controllers.progress_hold import STATUS_HOLD
from bobrapet.engine import (
    CACHE_STORED,
    CacheEntry,
    StepOutcome,
    annotated,
    claimed,
    complete,
    holds_claim,
    is_waiting_for_capacity,
    outcome_events,
)
from bobrapet.execution.request import ExecutionRequest
from bobrapet.runtime import metrics
from bobrapet.runtime.clock import Clock
from bobrapet.runtime.retry import is_conflict
from bobrapet.store.client import Client, Resource
from bobrapet.templating import OffloadedData, Unhydrated

__all__ = ["MAX_RECORD_RETRY", "RECORD_RETRY", "RUNNING_HOLD", "Attempt", "AttemptRunner"]

log = logging.getLogger("bobrapet.controllers.attempts")

NAME = "steprun-attempts"
RECORD_RETRY = 0.05
MAX_RECORD_RETRY = 5.0
#: An attempt that waited for capacity and started without a write is written ``Running``
#: only if it still runs this long after its code started (its StoryRun holds step progress
#: as long, :data:`~bobrapet.controllers.progress_hold.STATUS_HOLD`).
RUNNING_HOLD = STATUS_HOLD

#: Looks a StepRun up in the engine's cache by (name, namespace).
CachedStepRun = Callable[[str, str | None], Resource | None]


class Attempt:
    """A launched attempt: what is needed to record its outcome."""

    def __init__(
        self,
        key: str,
        template: Mapping[str, Any] | None,
        step: Step | None,
        stored: Resource | None = None,
        cache: CacheEntry | None = None,
    ) -> None:
        self.key = key
        self.template = template
        self.step = step
        #: Where a successful output is cached (reference §7.6; ``None``: no cache policy).
        self.cache = cache
        #: The StepRun as this engine last wrote it (the claim, then any Running write).
        self.stored: Resource = stored or {}
        self.task: asyncio.Task[None] | None = None
        #: A waiting attempt started without a write: writes ``Running`` after RUNNING_HOLD.
        self.report: asyncio.Task[None] | None = None
        #: That delayed ``Running`` write has begun (it is awaited, not cancelled, then).
        self.reporting = False


class AttemptRunner:
    """Runs claimed attempts on ``env.executor`` and records their outcomes (a runnable)."""

    def __init__(
        self,
        client: Client,
        clock: Clock,
        env: ExecutionEnv,
        events: EventRecorder,
        cached: CachedStepRun | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.env = env
        self.events = events
        #: The engine's StepRun cache (``None``: every waiting attempt's claim is checked by a
        #: write when it starts).
        self.cached = cached
        self.attempts: dict[tuple[str, str], Attempt] = {}
        self._stopped = False

    @property
    def name(self) -> str:
        return NAME

    # -- runnable -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Nothing to prepare: attempts are handed over by the reconciler."""

    async def stop(self) -> None:
        """Cancel the local attempts (engine exit): their StepRuns stay claimed for takeover."""
        self._stopped = True
        tasks = [a.task for a in self.attempts.values() if a.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Return once no local attempt is left (running ones finish and record their outcome).

        The engine calls it after its controllers stopped (no new attempt is handed over) and
        bounds it by its grace period; :meth:`stop` then cancels what is still running.
        """
        while self.attempts:
            tasks = [a.task for a in self.attempts.values() if a.task is not None and not a.task.done()]
            if not tasks:
                return
            await asyncio.wait(tasks)

    # -- hand-over ------------------------------------------------------------------------------
    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.attempts

    def submit(self, stored: Resource, request: ExecutionRequest, attempt: Attempt, *, waiting: bool) -> None:
        """Run ``attempt`` (claimed by the write that returned ``stored``) in the background."""
        if self._stopped:  # the engine is exiting: leave the claim for a takeover
            self.env.executor.release(request.key)
            return
        metadata = stored["metadata"]
        self.attempts[(str(metadata.get("namespace") or ""), str(metadata["name"]))] = attempt
        attempt.task = asyncio.create_task(
            self.execute(stored, request, attempt, waiting=waiting), name=attempt.key
        )

    async def cancel(self, key: tuple[str, str]) -> None:
        """Stop the local attempt of StepRun ``key`` (namespace, name), if any."""
        attempt = self.attempts.get(key)
        if attempt is not None:
            await self.env.executor.cancel(attempt.key)

    # -- executing ------------------------------------------------------------------------------
    async def execute(
        self, claimed_obj: Resource, request: ExecutionRequest, attempt: Attempt, *, waiting: bool = False
    ) -> None:
        """Run the attempt and record its outcome; ``waiting``: the claim said WaitingForCapacity."""
        attempt.stored = attempt.stored or claimed_obj
        metadata = claimed_obj["metadata"]
        key = (str(metadata.get("namespace") or ""), str(metadata["name"]))
        try:
            try:
                if waiting:
                    try:
                        result = await self.env.executor.run(
                            request, on_started=lambda: self._started(attempt)
                        )
                    finally:
                        await self._settle_report(attempt)
                else:
                    result = await self.env.executor.run(request)
                await self._record(attempt.stored, result, attempt)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an engine bug must not leave the step Running forever
                log.exception("executing %s failed", request.key)
                await self._record_until_written(attempt.stored, self._engine_error(exc), attempt)
        finally:
            if self.attempts.get(key) is attempt:
                del self.attempts[key]

    async def _started(self, attempt: Attempt) -> bool:
        """The waiting attempt got its slot: whether its code may start (the claim is held).

        Without a write while the claim is the StepRun's latest version (see the module
        docstring); then ``Running`` is written only if it still runs after :data:`RUNNING_HOLD`.
        """
        if not await self._claim_current(attempt):
            return await self._mark_running(attempt)
        attempt.report = asyncio.create_task(
            self._report_running(attempt, self.clock.now()), name=f"{attempt.key} running"
        )
        return True

    async def _claim_current(self, attempt: Attempt) -> bool:
        """Whether this engine's claim write is still the StepRun's latest version: as the
        cache shows it, else (the cache has not seen that write yet) as the store does."""
        metadata = attempt.stored["metadata"]
        name, namespace, ours = str(metadata["name"]), metadata.get("namespace"), _version(attempt.stored)
        current = self.cached(name, namespace) if self.cached is not None else None
        if current is None or _version(current) != ours:
            try:
                current = await self.client.get(STEP_RUN, name, namespace)
            except NotFound:
                return False
        if _version(current) != ours:
            return False  # changed since the claim: checked by the Running write
        status = current.get("status")
        return is_waiting_for_capacity(status) and holds_claim(status, self.env.lease.id)

    async def _report_running(self, attempt: Attempt, started: datetime) -> None:
        """Write ``Running`` (since ``started``) if the attempt still runs after RUNNING_HOLD."""
        await self.clock.sleep(RUNNING_HOLD)
        attempt.reporting = True
        try:
            if not await self._mark_running(attempt, started=started):
                log.info("%s: the claim was lost while its code ran", attempt.key)
        except Exception:  # the outcome write (a compare-and-swap) still decides
            log.exception("writing Running for %s failed", attempt.key)

    async def _settle_report(self, attempt: Attempt) -> None:
        """The attempt ended: drop a pending ``Running`` write, or let one in flight finish
        (so the outcome is written over it, not raced by it)."""
        report, attempt.report = attempt.report, None
        if report is None or report.done():
            return
        if not attempt.reporting:
            report.cancel()
        await asyncio.gather(report, return_exceptions=True)

    async def _mark_running(self, attempt: Attempt, *, started: datetime | None = None) -> bool:
        """Write ``Running`` unless the claim was lost meanwhile (``started``: when the code
        started, default now)."""
        metadata = attempt.stored["metadata"]
        current: Resource | None = attempt.stored
        for _ in range(10):
            if current is None:
                try:
                    current = await self.client.get(STEP_RUN, metadata["name"], metadata.get("namespace"))
                except NotFound:
                    return False
            status = current.get("status") or {}
            if not is_waiting_for_capacity(status) or status.get("podName") != self.env.lease.id:
                return False
            running = claimed(status, holder=self.env.lease.id, now=started or self.clock.now())
            try:
                attempt.stored = await self.client.update_status({**current, "status": running})
                return True
            except Exception as exc:
                if not is_conflict(exc):
                    raise
                current = None
        return False

    def _engine_error(self, exc: Exception) -> StepOutcome:
        now = self.clock.now()
        return StepOutcome(
            phase="Failed", output=None, exit_code=-1, exit_class="unknown", error=None,
            message=f"engine error while executing the step: {exc}", signals=[],
            started_at=now, finished_at=now,
        )  # fmt: skip

    async def _record_until_written(
        self, claimed_obj: Resource, outcome: StepOutcome, attempt: Attempt
    ) -> None:
        """:meth:`_record`, retried with back-off: nobody else would ever finish a StepRun
        this live engine holds, so giving up would leave it Running forever."""
        delay = RECORD_RETRY
        while True:
            try:
                await self._record(claimed_obj, outcome, attempt)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recording the outcome of %s failed; retrying in %.2f s", attempt.key, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RECORD_RETRY)

    async def _record(self, claimed_obj: Resource, outcome: StepOutcome, attempt: Attempt) -> None:
        """Write the attempt's outcome unless the StepRun was taken over or finished meanwhile."""
        metadata = claimed_obj["metadata"]
        current: Resource | None = claimed_obj
        post = attempt.step.post_execution if attempt.step is not None else None
        config = self.env.config
        offload = OffloadedData(config.offloaded_data_policy)
        rounds = 0
        cache_entry = attempt.cache if attempt.cache is not None and attempt.cache.writes else None
        for _ in range(10):
            if current is None:
                try:
                    current = await self.client.get(STEP_RUN, metadata["name"], metadata.get("namespace"))
                except NotFound:
                    return
            status = current.get("status") or {}
            if not holds_claim(status, self.env.lease.id):
                return
            try:
                new_status = complete(
                    current, outcome, template=attempt.template, post_execution=post, now=self.clock.now(),
                    jitter_fraction=random.random(), deterministic_templates=config.deterministic_templates,
                    offload=offload if rounds < MAX_ROUNDS else None,
                )  # fmt: skip
            except Unhydrated as exc:  # a post-execution condition over the offloaded output
                rounds += 1
                offload = replace(offload, blobs=await load_blobs(config, exc.keys, offload.blobs))
                continue
            try:
                if cache_entry is not None and new_status.get("phase") == "Succeeded":
                    # noted before the success itself: the run cannot end before its cache note
                    current = await self._store_in_cache(current, cache_entry, new_status)
                    cache_entry = None
                written = await self.client.update_status({**current, "status": new_status})
            except Exception as exc:
                if not is_conflict(exc):
                    raise
                current = None
                continue
            if (recorder := metrics.current()) is not None:
                recorder.step_recorded(written, status, new_status)
            events = outcome_events(status, new_status, attempt.template)
            if events:  # none for a normal success: no extra write on the hot path
                await self.events.record_all(
                    written, [EventSpec(e.type, e.reason, e.message) for e in events]
                )
            return

    async def _store_in_cache(
        self, current: Resource, entry: CacheEntry, new_status: dict[str, Any]
    ) -> Resource:
        """Cache a successful output and note it on the StepRun (``cache.bubustack.io/status:
        stored``); returns the StepRun to write the status onto. A conflict propagates (the
        caller re-reads and comes back); a cache that cannot be written or noted leaves the
        step's success alone."""
        annotations = entry.annotations(CACHE_STORED)
        have = (current.get("metadata") or {}).get("annotations") or {}
        if all(have.get(k) == v for k, v in annotations.items()):
            return current
        if not await write_cache(self.env.config, entry, new_status.get("output"), self.clock.now()):
            return current
        try:
            return await self.client.update(annotated(current, annotations))
        except Exception as exc:
            if is_conflict(exc):
                raise
            log.warning("recording the cache entry of %s failed: %s", entry.blob, exc)
            return current


def _version(obj: Resource) -> str | None:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return None if version is None else str(version)
