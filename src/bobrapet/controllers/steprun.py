"""StepRun controller (reference §4.4, embedded execution): resolve, claim, execute, record.

One attempt of a StepRun is executed by exactly one engine process:

1. inputs are resolved with the same template variables the StoryRun engine uses
   (:func:`bobrapet.engine.run_variables`), ``requires`` checked, the EngramTemplate's
   input schema applied; any failure is written to the StepRun with a reason code;
2. the engine *claims* the attempt by writing ``podName: <engine id>`` with the
   resourceVersion it read (compare-and-swap: a concurrent claim by another engine makes
   this write fail with ``Conflict``): ``phase: Running`` when the executor had a free slot
   for it (reserved before the write), else ``Pending`` with reason ``WaitingForCapacity``
   and ``Running`` is written when the executor starts it (``on_started``), so a step is
   ``Running`` only while its code runs;
3. the attempt runs on the local executor in a background task (never inside a reconcile);
4. its outcome is turned into the StepRun's status by :func:`bobrapet.engine.steprun.complete`
   (success, failure, timeout, or a scheduled retry) and written — unless another engine
   took the attempt over meanwhile.

A ``Running`` (or waiting-for-capacity) StepRun claimed by an engine whose lease is gone
(the process died) is claimed again and re-executed; while that engine lives, the StepRun is only re-checked
every :data:`TAKEOVER_CHECK` seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from datetime import datetime
from typing import Any

from bobrapet.api.conditions import Reason
from bobrapet.api.errors import NotFound
from bobrapet.api.expressions import iter_templates
from bobrapet.api.kinds import ENGRAM, STEP_RUN
from bobrapet.api.phases import is_terminal_phase
from bobrapet.api.types.story import Step, Story
from bobrapet.controllers import runs, steplog
from bobrapet.controllers.events import EventRecorder, EventSpec
from bobrapet.controllers.execution import ExecutionEnv
from bobrapet.controllers.scope import UNKNOWN_RETRY
from bobrapet.controllers.secrets import gather_step_secrets
from bobrapet.controllers.status import is_deleting
from bobrapet.engine import (
    InputRejected,
    SecretProblem,
    Snapshot,
    StepOutcome,
    blocked,
    claimed,
    compile_graph,
    complete,
    debug_enabled,
    engram_version_mismatch,
    holds_claim,
    input_near_limit,
    is_waiting_for_capacity,
    launch_failed,
    missing_requirement,
    outcome_events,
    prepare_input,
    retry_wait,
    run_variables,
    step_timeout,
    template_seed,
    waiting_for_capacity,
)
from bobrapet.executors.local.lease import EngineLease
from bobrapet.executors.request import ExecutionRequest, build_env
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.retry import is_conflict, retry_on_conflict
from bobrapet.runtime.watches import Predicate, Watch, changed, map_objects
from bobrapet.store.client import Resource, WatchEvent
from bobrapet.templating import Blocked, TemplateError, render

log = logging.getLogger("bobrapet.controllers.steprun")

NAME = "steprun"
TAKEOVER_CHECK = 1.0
BLOCKED_RETRY = 0.25
MISSING_REFERENCE_RETRY = 5.0
RECORD_RETRY = 0.05
MAX_RECORD_RETRY = 5.0


def _find_step(story: Story | None, step_id: str) -> Step | None:
    """The step (or parallel branch) ``step_id`` of ``story``, from its compiled graph."""
    if story is None:
        return None
    graph = compile_graph(story)
    node = graph.nodes.get(step_id)
    if node is not None:
        return node.step
    owner = graph.branch_owner.get(step_id)
    if owner is None:
        return None
    return next((b for b in graph.nodes[owner].branches if b.name == step_id), None)


class _Attempt:
    """A launched attempt: what is needed to record its outcome."""

    def __init__(
        self, key: str, template: Resource | None, step: Step | None, stored: Resource | None = None
    ) -> None:
        self.key = key
        self.template = template
        self.step = step
        #: The StepRun as this engine last wrote it (the claim, then the Running write).
        self.stored: Resource = stored or {}
        self.task: asyncio.Task[None] | None = None


class StepRunReconciler:
    def __init__(self, manager: Manager, env: ExecutionEnv) -> None:
        self.client = manager.client
        self.clock = manager.clock
        self.env = env
        self.config = env.config
        self.caches = runs.RunCaches(manager)
        self.events = EventRecorder(manager.client, manager.clock, env.lease.id)
        self.attempts: dict[tuple[str, str], _Attempt] = {}
        self.controller: Controller | None = None

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
        if key in self.attempts:
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

    # -- launching ------------------------------------------------------------------------------
    async def _launch(self, step_run: Resource) -> Result:
        metadata = step_run["metadata"]
        namespace = str(metadata.get("namespace") or "")
        name = str(metadata["name"])
        spec = step_run.get("spec") or {}
        status = step_run.get("status") or {}
        now = self.clock.now()
        run_name = str((spec.get("storyRunRef") or {}).get("name") or "")
        run = self.caches.story_runs.get(run_name, namespace)
        if run is None:
            return Result(requeue_after=BLOCKED_RETRY)  # the cache has not seen the run yet
        found = await self.caches.snapshots.of_step_run(run, step_run)  # the run's copy, not the live Story
        story_name, story = found.name, found.story
        engram_ref = spec.get("engramRef") or {}
        engram_ns = str(engram_ref.get("namespace") or namespace)
        engram = self.caches.engrams.get(str(engram_ref.get("name") or ""), engram_ns)
        if engram is None:
            message = (
                f'Engram "{engram_ref.get("name")}" not found in namespace "{engram_ns}"; '
                "create it (bobrapet apply) or fix the step's ref"
            )
            await self._write(step_run, blocked(status, reason="ReferenceNotFound", message=message, now=now))
            return Result(requeue_after=MISSING_REFERENCE_RETRY)
        template_name = str(((engram.get("spec") or {}).get("templateRef") or {}).get("name") or "")
        template = self.caches.templates.get(template_name)
        if template is None:
            message = f'EngramTemplate "{template_name}" of Engram "{engram_ref.get("name")}" not found'
            await self._write(step_run, blocked(status, reason="TemplateNotFound", message=message, now=now))
            return Result(requeue_after=MISSING_REFERENCE_RETRY)
        pinned, actual = engram_ref.get("version"), (engram.get("spec") or {}).get("version")
        if pinned and actual != pinned:  # the Engram was edited after the StepRun was made
            engram_id = f"{engram_ns}/{engram_ref.get('name')}"
            message = engram_version_mismatch(engram_id, str(pinned), actual, str(spec.get("stepId")))
            await self._fail(step_run, Reason.ENGRAM_REFERENCE_INVALID, message, now)
            return Result()
        step = _find_step(story, str(spec.get("stepId") or ""))

        only = _referenced_steps(spec.get("input"), step.requires if step else None)
        variables = run_variables(self._snapshot(run, story, now), only)
        missing = missing_requirement(step.requires if step else None, variables)
        if missing is not None:
            message = f"required context '{missing}' is nil — upstream step produced no output for this key"
            await self._fail(step_run, "DependencyFailed", message, now)
            return Result()
        deterministic = self.config.deterministic_templates
        try:
            resolved = render(
                spec.get("input") or {},
                variables,
                now=None if deterministic else self.clock.now,
                deterministic=deterministic,
                seed=template_seed(run, str(spec.get("stepId") or ""), int(status.get("retries") or 0)),
            )
        except Blocked as exc:
            if _never_available(run, story, exc.step):
                message = f"Input resolution failed after dependencies completed: {exc}"
                await self._fail(step_run, "ExpressionFailed", message, now)
                return Result()
            return Result(requeue_after=BLOCKED_RETRY)
        except TemplateError as exc:
            await self._fail(step_run, "ExpressionFailed", f"Input resolution failed: {exc}", now)
            return Result()
        template_spec = template.get("spec") or {}
        try:
            inputs = prepare_input(resolved if isinstance(resolved, dict) else {}, template)
        except InputRejected as exc:
            await self._fail(step_run, "InputSchemaFailed", str(exc), now, error_type="validation_error")
            return Result()
        size = len(json.dumps(inputs, separators=(",", ":")))
        if self.config.max_inline_step_input and size > self.config.max_inline_step_input:
            message = (
                f"step input for {spec.get('stepId')} is {size} bytes which exceeds the max inline "
                f"limit of {self.config.max_inline_step_input} bytes"
            )
            await self._fail(step_run, "InputTooLarge", message, now)
            return Result()
        if near := input_near_limit(str(spec.get("stepId")), size, self.config.max_inline_step_input):
            await self.events.record(step_run, near.type, near.reason, near.message)
        entrypoint = template_spec.get("entrypoint")
        command = template_spec.get("command")
        if not entrypoint and not command:
            message = (
                f'EngramTemplate "{template_name}" has neither spec.entrypoint nor spec.command; '
                "the embedded engine runs Python entrypoints and commands (images need Kubernetes)"
            )
            await self._fail(step_run, "InvalidConfiguration", message, now)
            return Result()
        try:
            secrets = await gather_step_secrets(self.client, namespace, engram, template, step)
        except SecretProblem as exc:
            await self._fail(step_run, exc.reason, exc.message, now)
            return Result()

        timeout = step_timeout(step_run, story, self.config, step=step, engram=engram, template=template)
        debug = debug_enabled(engram, step, step_run)
        started = now
        env = build_env(
            story=story_name,
            story_version=story.spec.version if story is not None else None,
            story_run=run_name,
            step=str(spec.get("stepId") or ""),
            step_run=name,
            idempotency_key=str(spec.get("idempotencyKey") or ""),
            namespace=namespace,
            engram=str(engram_ref.get("name") or ""),
            engram_version=(template_spec.get("version") or None),
            started_at=started,
            timeout=timeout,
            debug=debug,
            max_inline_size=self.config.max_inline_step_input,
        )
        attempt_key = f"{namespace}/{name}#{int(status.get('retries') or 0)}"
        request = ExecutionRequest(
            key=attempt_key,
            entrypoint=str(entrypoint) if entrypoint else None,
            command=[str(a) for a in command] if command else None,
            inputs=inputs,
            config=inputs,
            env=env,
            timeout=timeout,
            log_path=self.env.log_path(namespace, name),
            workdir=self.env.workdir,
            debug=debug,
            secrets=secrets,
        )
        ready = self.env.executor.reserve(request)
        holder = self.env.lease.id
        if ready:
            claim = claimed(status, holder=holder, now=now)
        else:
            used, total = self.env.executor.capacity
            message = (
                f"Waiting for a free execution slot on {holder} ({used}/{total} steps running); "
                "it starts as running steps finish"
            )
            claim = waiting_for_capacity(status, holder=holder, message=message, now=now)
        try:
            stored = await self.client.update_status({**step_run, "status": claim})
        except BaseException:
            self.env.executor.release(request.key)
            raise
        steplog.begin_attempt(
            request.log_path,
            attempt=int(status.get("retries") or 0) + 1,
            at=now,
            inputs=inputs,
            template=template,
            secret_values=secrets.redaction_terms(),
        )
        attempt = _Attempt(attempt_key, template, step, stored)
        self.attempts[(namespace, name)] = attempt
        attempt.task = asyncio.create_task(
            self._execute(stored, request, attempt, waiting=not ready), name=attempt_key
        )
        return Result()

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

    # -- executing ------------------------------------------------------------------------------
    async def _execute(
        self, claimed_obj: Resource, request: ExecutionRequest, attempt: _Attempt, *, waiting: bool = False
    ) -> None:
        """Run the attempt and record its outcome; ``waiting``: the claim said WaitingForCapacity."""
        attempt.stored = attempt.stored or claimed_obj
        metadata = claimed_obj["metadata"]
        key = (str(metadata.get("namespace") or ""), str(metadata["name"]))
        try:
            try:
                if waiting:
                    result = await self.env.executor.run(
                        request, on_started=lambda: self._mark_running(attempt)
                    )
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

    async def _mark_running(self, attempt: _Attempt) -> bool:
        """The attempt got its slot: write ``Running`` unless the claim was lost meanwhile."""
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
            running = claimed(status, holder=self.env.lease.id, now=self.clock.now())
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
        self, claimed_obj: Resource, outcome: StepOutcome, attempt: _Attempt
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

    async def _record(self, claimed_obj: Resource, outcome: StepOutcome, attempt: _Attempt) -> None:
        """Write the attempt's outcome unless the StepRun was taken over or finished meanwhile."""
        metadata = claimed_obj["metadata"]
        current: Resource | None = claimed_obj
        post = attempt.step.post_execution if attempt.step is not None else None
        for _ in range(10):
            if current is None:
                try:
                    current = await self.client.get(STEP_RUN, metadata["name"], metadata.get("namespace"))
                except NotFound:
                    return
            status = current.get("status") or {}
            if not holds_claim(status, self.env.lease.id):
                return
            new_status = complete(
                current, outcome, template=attempt.template, post_execution=post, now=self.clock.now(),
                jitter_fraction=random.random(),
                deterministic_templates=self.config.deterministic_templates,
            )  # fmt: skip
            try:
                written = await self.client.update_status({**current, "status": new_status})
            except Exception as exc:
                if not is_conflict(exc):
                    raise
                current = None
                continue
            events = outcome_events(status, new_status, attempt.template)
            if events:  # none for a normal success: no extra write on the hot path
                await self.events.record_all(
                    written, [EventSpec(e.type, e.reason, e.message) for e in events]
                )
            return

    async def _cancel_local(self, key: tuple[str, str]) -> None:
        attempt = self.attempts.get(key)
        if attempt is not None:
            await self.env.executor.cancel(attempt.key)

    # -- status writes --------------------------------------------------------------------------
    async def _write(self, step_run: Resource, status: dict[str, Any]) -> None:
        if (step_run.get("status") or {}) != status:
            await self.client.update_status({**step_run, "status": status})

    async def _fail(
        self,
        step_run: Resource,
        reason: str,
        message: str,
        now: datetime,
        error_type: str = "validation_error",
    ) -> None:
        status = launch_failed(
            step_run.get("status") or {}, reason=reason, message=message, now=now, error_type=error_type
        )
        await self._write(step_run, status)

    async def _write_outcome_now(self, step_run: Resource, phase: str, message: str) -> None:
        now = self.clock.now()
        outcome = StepOutcome(
            phase="Canceled", output=None, exit_code=-1, exit_class=None, error=None, message=message,
            signals=[], started_at=now, finished_at=now,
        )  # fmt: skip
        status = complete(step_run, outcome, template=None, post_execution=None, now=now, jitter_fraction=0.0)
        await self._write(step_run, status)

    async def shutdown(self) -> None:
        """Stop local attempts (engine exit): their StepRuns stay claimed until another engine takes over."""
        tasks = [a.task for a in self.attempts.values() if a.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _referenced_steps(value: Any, requires: list[str] | None) -> frozenset[str] | None:
    """Steps the templates of ``value`` and the ``requires`` paths read; ``None`` when a
    template reads ``steps`` dynamically (``steps[expr]``, ``steps`` as a whole)."""
    names: set[str] = set()
    for _, analysis in iter_templates(value):
        if analysis.dynamic_steps:
            return None
        names.update(analysis.step_names)
    for path in requires or ():
        parts = path.split(".")
        if len(parts) < 2 or parts[0] != "steps":
            return None
        names.add(parts[1])
    return frozenset(names)


def _never_available(run: Resource, story: Story | None, step: str) -> bool:
    """Whether ``step`` can no longer produce data: finished, or not a step of the story at all."""
    state = ((run.get("status") or {}).get("stepStates") or {}).get(step)
    if state is None:
        return story is not None and _find_step(story, step) is None
    return is_terminal_phase(state.get("phase"))


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


def _actionable() -> Predicate:
    """Changes this controller acts on: a StepRun waiting to run, a cancel request, deletion.

    Moving to ``Running`` or a terminal phase is an engine's own write (a running attempt of
    another engine is re-checked on a timer), so those events are skipped.
    """
    seen = changed(_trigger)

    def predicate(event: WatchEvent) -> bool:
        if not seen(event):
            return False
        if event.type != "MODIFIED":
            return True
        obj = event.object
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
        primary_predicate=_actionable(),
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
