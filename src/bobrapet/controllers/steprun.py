"""StepRun controller (reference §4.4, embedded execution): resolve, claim, execute, record.

One attempt of a StepRun is executed by exactly one engine process. Launching it is
gather → decide → apply: this controller *gathers* (the run's snapshot, Engram, template,
bound Secrets), the pure :func:`bobrapet.engine.decide_launch` *decides* (an attempt to
execute, a launch failure with a reason code, or wait), and this controller *applies*:

1. inputs are resolved with the same template variables the StoryRun engine uses
   (:func:`bobrapet.engine.run_variables`), ``requires`` checked, the EngramTemplate's
   input schema applied; any failure is written to the StepRun with a reason code;
2. the engine *claims* the attempt by writing ``podName: <engine id>`` with the
   resourceVersion it read (compare-and-swap: a concurrent claim by another engine makes
   this write fail with ``Conflict``): ``phase: Running`` when the executor had a free slot
   for it (reserved before the write), else ``Pending`` with reason ``WaitingForCapacity``;
   such an attempt starts when the executor gives it a slot, and ``Running`` is written only
   if it still runs :data:`~bobrapet.controllers.attempts.RUNNING_HOLD` seconds later (a
   short step goes from waiting straight to its outcome), so a step is ``Running`` only
   while its code runs;
3. the attempt is handed to the :class:`~bobrapet.controllers.attempts.AttemptRunner` (a
   manager runnable), which runs it on the executor (the
   :class:`~bobrapet.executors.protocol.Executor` seam) in a background task, never inside
   a reconcile; its request carries the attempt's effects port
   (:class:`~bobrapet.controllers.effects.StepRunEffects`, the EffectClaims of
   ``ctx.effect_once``) and triggers port
   (:class:`~bobrapet.controllers.step_triggers.StepRunTriggers`, ``ctx.trigger_story``);
4. its outcome is turned into the StepRun's status by :func:`bobrapet.engine.complete`
   (success, failure, timeout, or a scheduled retry) and written — unless another engine
   took the attempt over meanwhile.

A ``Running`` (or waiting-for-capacity) StepRun claimed by an engine whose lease is gone
(the process died) is claimed again and re-executed; while that engine lives, the StepRun is only re-checked
every :data:`TAKEOVER_CHECK` seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from bobrapet.api.conditions import Reason
from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import CONFIG_MAP, ENGRAM, SECRET, STEP_RUN
from bobrapet.api.phases import is_terminal_phase
from bobrapet.api.runmeta import story_run_of
from bobrapet.api.types.story import Story
from bobrapet.controllers import runs, steplog
from bobrapet.controllers.attempts import Attempt, AttemptRunner
from bobrapet.controllers.effects import StepRunEffects, holder_identity
from bobrapet.controllers.events import EventRecorder
from bobrapet.controllers.execution import ExecutionEnv
from bobrapet.controllers.offloaded import MAX_ROUNDS, load_blobs, offload_inputs
from bobrapet.controllers.output_cache import read_cache
from bobrapet.controllers.scope import UNKNOWN_RETRY
from bobrapet.controllers.secrets import fetch_secrets
from bobrapet.controllers.status import is_deleting
from bobrapet.controllers.step_triggers import StepRunTriggers
from bobrapet.engine import (
    BLOCKED_RETRY,
    CACHE_HIT,
    MISSING_REFERENCE_RETRY,
    LaunchAttempt,
    LaunchBlocked,
    LaunchFailed,
    LaunchInput,
    LaunchNeeds,
    Snapshot,
    StepOutcome,
    annotated,
    complete,
    decide_launch,
    is_waiting_for_capacity,
    launch_failed,
    launch_secret_names,
    retry_wait,
)
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.lease import EngineLease
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.runtime.watches import Predicate, Watch, changed, map_objects
from bobrapet.storage.errors import StorageError
from bobrapet.store.client import Resource, WatchEvent

log = logging.getLogger("bobrapet.controllers.steprun")

NAME = "steprun"
TAKEOVER_CHECK = 1.0

__all__ = [
    "BLOCKED_RETRY",
    "MISSING_REFERENCE_RETRY",
    "NAME",
    "TAKEOVER_CHECK",
    "StepRunReconciler",
    "setup",
]


class StepRunReconciler:
    def __init__(self, manager: Manager, env: ExecutionEnv) -> None:
        self.client = manager.client
        self.clock = manager.clock
        self.env = env
        self.config = env.config
        self.caches = runs.RunCaches(manager)
        self.events = EventRecorder(manager.client, manager.clock, env.lease.id)
        #: Owns the attempts this engine executes; the manager starts and stops it.
        self.runner = AttemptRunner(
            manager.client, manager.clock, env, self.events, cached=self.caches.step_runs.get
        )
        manager.add_runnable(self.runner)
        #: A StepRun's StoryRun by (name, namespace): the StoryRun controller's
        #: :meth:`~bobrapet.controllers.storyrun.StoryRunReconciler.planned_run` (its status
        #: as planned, step progress not yet written included) when both run in this engine.
        self.run_of: Callable[[str, str | None], Resource | None] = self.caches.story_runs.get
        self.controller: Controller | None = None

    @property
    def attempts(self) -> dict[tuple[str, str], Attempt]:
        """The attempts running in this engine, by StepRun (namespace, name)."""
        return self.runner.attempts

    async def __call__(self, request: Request) -> Result:
        return await retry_on_conflict(lambda: self._reconcile(request), attempts=10)

    async def _reconcile(self, request: Request) -> Result:
        key = (request.namespace or "", request.name)
        try:
            step_run = await self.client.get(STEP_RUN, request.name, request.namespace)
        except NotFound:
            await self._cancel_local(key)
            return Result()
        if is_deleting(step_run):
            await self._cancel_local(key)
            return Result()
        status = step_run.get("status") or {}
        phase = status.get("phase")
        if is_terminal_phase(phase):
            # Finished by someone else (e.g. another engine recorded a cancel): a local attempt
            # can no longer record anything, so it must not keep running.
            await self._cancel_local(key)
            return Result()
        cancel = runs.annotations_of(step_run).get(runs.ANNOTATION_CANCEL) == "true"
        if key in self.runner:
            if cancel:
                await self._cancel_local(key)
            return Result()
        if cancel:
            await self._write_outcome_now(step_run, "Canceled", "Step canceled before it ran.")
            return Result()
        scope = self.env.scope
        if scope is not None and not (admitted := scope.admits_step_run(step_run, self.caches.story_runs)):
            return Result(requeue_after=UNKNOWN_RETRY) if admitted is None else Result()
        if phase == "Running" or is_waiting_for_capacity(status):
            holder = status.get("podName")
            if holder and holder != self.env.lease.id and EngineLease.is_alive(self.env.lease_dir, holder):
                return Result(requeue_after=TAKEOVER_CHECK)
            log.info("taking over %s/%s from engine %s", key[0], key[1], holder)
        wait = retry_wait(status, self.clock.now())
        if wait is not None and wait > 0:
            return Result(requeue_after=wait)
        return await self._launch(step_run)

    # -- launching: gather -> decide -> apply ----------------------------------------------------
    async def _launch(self, step_run: Resource) -> Result:
        gathered = await self._gather(step_run)
        if gathered is None:
            return Result(requeue_after=BLOCKED_RETRY)  # the cache has not seen the run yet
        decision = await self._decide(gathered)
        if isinstance(decision, LaunchBlocked):
            if decision.status is not None:
                await self._write(step_run, decision.status)
            return Result(requeue_after=decision.requeue_after)
        if isinstance(decision, LaunchFailed):
            for event in decision.events:
                await self.events.record(step_run, event.type, event.reason, event.message)
            await self._write(step_run, decision.status)
            return Result()
        await self._claim_and_submit(step_run, decision)
        return Result()

    async def create_launched(self, body: Resource, run: Resource) -> Resource:
        """Create the engine-built StepRun ``body``; when its attempt can launch, claim it in
        the same write and start it (no claim write, no reconcile round trip).

        Otherwise (blocked, failing, or the run not cached yet) it is created unclaimed and
        this controller's reconcile launches it as usual. The spec the engine builds carries
        every field admission would default that launching reads (``idempotencyKey``), so
        deciding on ``body`` before it is stored decides what the stored StepRun would get.
        ``run`` is the StoryRun as its reconcile planned it (its status, which the inputs
        read, is written after its new StepRuns are created).
        Raises what :meth:`Client.create` raises (``AlreadyExists``, ``Invalid``).
        """
        gathered = await self._gather(body, run)
        decision = await self._decide(gathered) if gathered is not None else None
        if not isinstance(decision, LaunchAttempt):
            return await self.client.create(body, trusted=True)
        return await self._claim_and_submit(body, decision, create=True)

    async def _decide(self, gathered: LaunchInput) -> LaunchAttempt | LaunchFailed | LaunchBlocked:
        """:func:`decide_launch`, gathering what it asks for (:class:`LaunchNeeds`: offloaded
        values for compound templates, ConfigMaps/Secrets the input references) in between."""
        decision = decide_launch(gathered)
        for _ in range(MAX_ROUNDS):
            if not isinstance(decision, LaunchNeeds):
                return decision
            if decision.blobs:
                gathered = replace(
                    gathered, blobs=await load_blobs(self.config, decision.blobs, gathered.blobs)
                )
            if decision.objects:
                namespace = str(gathered.step_run["metadata"].get("namespace") or "")
                found = await self._objects(namespace, decision.objects)
                gathered = replace(gathered, objects={**gathered.objects, **found})
            decision = decide_launch(gathered)
        if isinstance(decision, LaunchNeeds):  # references inside references, too deep
            return LaunchBlocked("OffloadedData", BLOCKED_RETRY, None, "offloaded data is nested too deeply")
        return decision

    async def _objects(
        self, namespace: str, wanted: tuple[tuple[str, str], ...]
    ) -> dict[tuple[str, str], Resource | None]:
        """The ConfigMaps/Secrets (kind, name) of ``namespace`` (``None``: missing)."""
        found: dict[tuple[str, str], Resource | None] = {}
        for kind, name in wanted:
            try:
                found[(kind, name)] = await self.client.get(
                    CONFIG_MAP if kind == "ConfigMap" else SECRET, name, namespace
                )
            except NotFound:
                found[(kind, name)] = None
        return found

    async def _gather(self, step_run: Resource, run: Resource | None = None) -> LaunchInput | None:
        """Everything :func:`~bobrapet.engine.decide_launch` needs (``None``: run not cached yet).

        ``run``: the StepRun's StoryRun, when the caller has it (else it is read from the cache).
        """
        metadata = step_run["metadata"]
        namespace = str(metadata.get("namespace") or "")
        name = str(metadata["name"])
        spec = step_run.get("spec") or {}
        run_name = story_run_of(step_run)
        run = run or self.run_of(run_name, namespace)
        if run is None:
            return None
        found = await self.caches.snapshots.of_step_run(run, step_run)  # the run's copy, not the live Story
        engram_ref = spec.get("engramRef") or {}
        engram_ns = str(engram_ref.get("namespace") or namespace)
        engram = self.caches.engrams.get(str(engram_ref.get("name") or ""), engram_ns)
        template = None
        if engram is not None:
            template_name = str(((engram.get("spec") or {}).get("templateRef") or {}).get("name") or "")
            template = self.caches.templates.get(template_name)
        secrets: dict[str, Resource | None] = {}
        if template is not None:  # secrets never cross namespaces: the StepRun's namespace
            names = launch_secret_names(step_run, found.story, engram)
            secrets = await fetch_secrets(self.client, namespace, names) if names else {}
        return LaunchInput(
            step_run=step_run,
            snapshot=self._snapshot(run, found.story, self.clock.now()),
            story_name=found.name,
            engram=engram,
            template=template,
            secrets=secrets,
            holder=self.env.lease.id,
            log_path=self.env.log_path(namespace, name),
            workdir=self.env.workdir,
        )

    async def _claim_and_submit(
        self, step_run: Resource, decision: LaunchAttempt, *, create: bool = False
    ) -> Resource:
        """Reserve a slot, write the claim (compare-and-swap; with ``create``, the StepRun is
        created claimed), record the launch events, hand over the attempt."""
        metadata = step_run["metadata"]
        namespace = str(metadata.get("namespace") or "")
        run_name = story_run_of(step_run)
        if decision.cache is not None and decision.cache.reads:
            hit, output = await read_cache(self.config, decision.cache, decision.now, decision.template)
            if hit:
                return await self._record_hit(step_run, decision, output, create=create)
        base = decision.request
        if decision.offload_inputs:
            try:
                base = await offload_inputs(self.config, base, str(metadata["name"]))
            except StorageError as exc:
                message = f"cannot offload the step's input to storage: {exc.message}"
                failed = launch_failed(
                    decision.status, reason=Reason.INPUT_TOO_LARGE, message=message, now=decision.now,
                    error_type="storage_error",
                )  # fmt: skip
                if create:
                    return await self.client.create(step_run, trusted=True, status=failed)
                return await self.client.update_status({**step_run, "status": failed})
        request = replace(
            base,
            log_header=steplog.attempt_header(decision.attempt, decision.now),
            inputs_log=self.env.inputs_log_path(namespace, run_name),
            inputs_record=steplog.inputs_record(
                step_run=str(metadata["name"]),
                attempt=decision.attempt,
                at=decision.now,
                inputs=base.inputs,
                template=decision.template,
                secret_values=decision.request.secrets.redaction_terms(),
            ),
        )
        executor = self.env.executor
        ready = executor.reserve(request)
        claim = decision.claim(ready=ready, capacity=None if ready else executor.capacity)
        try:
            if create:
                stored = await self.client.create(step_run, trusted=True, status=claim)
            else:
                stored = await self.client.update_status({**step_run, "status": claim})
        except BaseException:
            executor.release(request.key)
            raise
        attempt = Attempt(request.key, decision.template, decision.step, stored, cache=decision.cache)
        holder = holder_identity(self.env.lease.id, decision.attempt)
        request = replace(
            request,
            effects=StepRunEffects(self.client, self.clock, stored, holder),
            triggers=StepRunTriggers(self.client, self.clock, stored, self.env.trigger_offload),
        )
        self.runner.submit(stored, request, attempt, waiting=not ready)
        for event in decision.events:
            await self.events.record(stored, event.type, event.reason, event.message)
        return stored

    async def _record_hit(
        self, step_run: Resource, decision: LaunchAttempt, output: Any, *, create: bool
    ) -> Resource:
        """The step succeeds with its cached output, without running (reference §7.6)."""
        assert decision.cache is not None
        now = decision.now
        outcome = StepOutcome(
            phase="Succeeded", output=output, exit_code=0, exit_class=None, error=None,
            message="output from the cache", signals=[], started_at=now, finished_at=now,
        )  # fmt: skip
        post = decision.step.post_execution if decision.step is not None else None
        status = complete(
            step_run, outcome, template=decision.template, post_execution=post, now=now, jitter_fraction=0.0,
            deterministic_templates=self.config.deterministic_templates,
        )  # fmt: skip
        body = annotated(step_run, decision.cache.annotations(CACHE_HIT))
        if create:
            return await self.client.create(body, trusted=True, status=status)
        updated = await self.client.update(body)
        return await self.client.update_status({**updated, "status": status})

    def _snapshot(self, run: Resource, story: Story | None, now: datetime) -> Snapshot:
        return Snapshot(
            run=run,
            story=story,
            engrams={},
            templates={},
            step_runs=self.caches.step_runs_of(run, story),
            child_runs=self.caches.child_runs_of(run),
            now=now,
            config=self.config,
        )

    async def _cancel_local(self, key: tuple[str, str]) -> None:
        await self.runner.cancel(key)

    # -- status writes --------------------------------------------------------------------------
    async def _write(self, step_run: Resource, status: dict[str, Any]) -> None:
        if (step_run.get("status") or {}) != status:
            await self.client.update_status({**step_run, "status": status})

    async def _write_outcome_now(self, step_run: Resource, phase: str, message: str) -> None:
        now = self.clock.now()
        outcome = StepOutcome(
            phase="Canceled", output=None, exit_code=-1, exit_class=None, error=None, message=message,
            signals=[], started_at=now, finished_at=now,
        )  # fmt: skip
        status = complete(step_run, outcome, template=None, post_execution=None, now=now, jitter_fraction=0.0)
        await self._write(step_run, status)

    async def shutdown(self) -> None:
        """Stop local attempts (engine exit): their StepRuns stay claimed until another engine
        takes over. The manager does this when it stops (the runner is its runnable)."""
        await self.runner.stop()


_ACTIONABLE_PHASES = (None, "", "Pending", "Blocked")


def _trigger(obj: Resource) -> Any:
    metadata = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return (
        metadata.get("generation"),
        bool(metadata.get("deletionTimestamp")),
        status.get("phase"),
        status.get("retries"),
        runs.annotations_of(obj).get(runs.ANNOTATION_CANCEL),
    )


def _actionable(holder: str) -> Predicate:
    """Changes this controller acts on: a StepRun waiting to run, a cancel request, deletion.

    Moving to ``Running`` or a terminal phase is an engine's own write (a running attempt of
    another engine is re-checked on a timer), so those events are skipped; so is the
    creation of a StepRun this engine (``holder``) created claimed and already runs.
    """
    seen = changed(_trigger)

    def predicate(event: WatchEvent) -> bool:
        if not seen(event):
            return False
        obj = event.object
        if event.type == "ADDED":
            status = obj.get("status") or {}
            return not (status.get("podName") == holder and status.get("phase") == "Running")
        if event.type != "MODIFIED":
            return True
        phase = (obj.get("status") or {}).get("phase")
        return (
            phase in _ACTIONABLE_PHASES
            or is_deleting(obj)
            or runs.annotations_of(obj).get(runs.ANNOTATION_CANCEL) == "true"
        )

    return predicate


def _step_runs_of_engram(manager: Manager) -> Any:
    cache = runs.step_runs(manager)

    def mapper(engram: Resource) -> list[Request]:
        metadata = engram.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "")
        found = []
        for obj in cache.list(namespace):
            ref = (obj.get("spec") or {}).get("engramRef") or {}
            phase = (obj.get("status") or {}).get("phase")
            if ref.get("name") == metadata.get("name") and phase == "Blocked":
                found.append(Request.for_object(obj))
        return found

    return mapper


def setup(manager: Manager, env: ExecutionEnv) -> tuple[Controller, StepRunReconciler]:
    reconciler = StepRunReconciler(manager, env)
    controller = Controller(
        NAME,
        STEP_RUN,
        reconciler,
        primary_predicate=_actionable(env.lease.id),
        workers=8,
        base_delay=0.05,
        max_delay=30.0,
        reconcile_timeout=60.0,
        watches=[
            Watch(ENGRAM, map_objects(_step_runs_of_engram(manager))),
        ],
    )
    reconciler.controller = controller
    return manager.add(controller), reconciler
