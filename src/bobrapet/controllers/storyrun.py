"""StoryRun controller (reference §4.2): gather the run's world, ask the engine, apply the plan.

Each reconcile reads the run from the store, the Story it executes (its recorded copy once
started, see :mod:`~bobrapet.controllers.story_snapshots`; parsed once per content hash),
the Engrams/EngramTemplates its steps use, its StepRuns and child StoryRuns from the caches,
builds a :class:`~bobrapet.engine.snapshot.Snapshot` and applies the engine's
:class:`~bobrapet.engine.plan.Plan` in the order the plan documents, ending with ONE status
write (skipped when nothing changed). A ``Conflict`` (someone else — a user approving a
gate, another engine process — wrote the run meanwhile) re-runs the whole reconcile on
fresh data, so ``status.gates`` written by users is never lost.

Watches: the run itself when its spec, deletion, redrive annotations or gates change, or
when it finishes (so every engine schedules its child TTL and retention; not on other status
writes); its StepRuns and child StoryRuns when their phase changes or they are deleted;
Stories when their spec changes (only runs that have not recorded their Story copy: runs
waiting for a missing Story start when it appears).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bobrapet.api import runmeta
from bobrapet.api.errors import AlreadyExists, NotFound, StatusError
from bobrapet.api.kinds import STEP_RUN, STORY, STORY_RUN, Kind
from bobrapet.api.phases import StepReason, is_terminal_phase
from bobrapet.api.timestamps import format_timestamp, parse_timestamp
from bobrapet.api.types.story import Story
from bobrapet.controllers import indexes, runs, steplog
from bobrapet.controllers.events import EventRecorder, EventSpec
from bobrapet.controllers.execution import ExecutionEnv
from bobrapet.controllers.offloaded import MAX_ROUNDS, load_blobs
from bobrapet.controllers.progress_hold import STATUS_HOLD, ProgressHold
from bobrapet.controllers.refs import namespace_of
from bobrapet.controllers.scope import UNKNOWN_RETRY
from bobrapet.controllers.status import is_deleting
from bobrapet.controllers.story_snapshots import RunStory
from bobrapet.engine import (
    WAITING_FOR_CAPACITY,
    Capacity,
    EngineConfig,
    NewChildRun,
    NewStepRun,
    Plan,
    Snapshot,
    StoryPin,
    compile_graph,
    effective_priority,
    is_waiting_for_capacity,
    make_plan,
    queue_name,
    queue_priority,
    required_engrams,
    sub_story_refs,
)
from bobrapet.runtime import metrics
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.runtime.watches import Watch, changed, map_objects
from bobrapet.store.client import Resource, WatchEvent

NAME = "storyrun"
MIN_CHILD_DEBOUNCE = 0.001
MAX_CHILD_DEBOUNCE = 0.05
#: Parsed Stories whose concurrency limits are remembered (forgotten all at once beyond).
_MAX_LIMITS = 1024
#: How long a StepRun this engine created and no event has shown yet is taken to exist
#: (its creation is not attempted again meanwhile; see StoryRunReconciler._create_step_run).
UNSEEN_TTL = 5.0
_MAX_UNSEEN = 65536
#: What a run no concurrency limit applies to is told (nothing is counted then).
_NO_CAPACITY = Capacity()
_WATCHED_ANNOTATIONS = (runmeta.REDRIVE_TOKEN, runmeta.REDRIVE_FROM_STEP)


def _owner_reference(run: Resource) -> dict[str, Any]:
    metadata = run["metadata"]
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StoryRun",
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


#: Creates an object (a trusted create) and returns it as stored.
_Create = Callable[[Resource], Awaitable[Resource]]


class StoryRunReconciler:
    def __init__(self, manager: Manager, env: ExecutionEnv) -> None:
        self.client = manager.client
        self.clock = manager.clock
        self.config: EngineConfig = env.config
        self.scope = env.scope
        self.env = env
        self.caches = runs.RunCaches(manager)
        self.events = EventRecorder(manager.client, manager.clock, env.lease.id)
        self.costs: dict[tuple[str, str], float] = {}
        #: Runs whose last plan held steps for capacity: woken when any StepRun ends.
        self.queued: set[tuple[str, str]] = set()
        #: resourceVersion of this engine's latest write of each run.
        self.written: dict[tuple[str, str], Any] = {}
        #: Step progress planned but not written yet (batched status writes).
        self.progress = ProgressHold(manager.clock)
        #: Creates an engine-built StepRun; the StepRun controller's
        #: :meth:`~bobrapet.controllers.steprun.StepRunReconciler.create_launched` (which
        #: also starts it) when both run in this engine.
        #: ``(body, run)``: ``run`` is the StoryRun with the status being planned.
        self.create_step_run: Callable[[Resource, Resource], Awaitable[Resource]] = self._create_step
        #: StepRuns this engine created that no StepRun event has shown yet ((namespace, name)
        #: -> ``clock.monotonic()`` of the creation): see :meth:`_create_step_run`.
        self.unseen: dict[tuple[str, str], float] = {}
        #: id(Story model) -> (the model, the config, whether a concurrency limit applies).
        self._limits: dict[int, tuple[Story | None, EngineConfig, bool]] = {}

    async def _create_trusted(self, body: Resource) -> Resource:
        return await self.client.create(body, trusted=True)

    async def _create_step(self, body: Resource, run: Resource) -> Resource:
        return await self._create_trusted(body)

    async def __call__(self, request: Request) -> Result:
        # The first attempt reads the run from the cache (our own writes are put there at once,
        # see _remember); a Conflict means someone else wrote it: retry on a fresh read.
        attempt = 0

        async def once() -> Result:
            nonlocal attempt
            attempt += 1
            return await self._reconcile(request, cached=attempt == 1)

        return await retry_on_conflict(once, attempts=10)

    def _remember(self, obj: Resource) -> Resource:
        """Put an object this controller just wrote into the cache (write-through)."""
        self.caches.story_runs.apply(WatchEvent("MODIFIED", obj))
        metadata = obj["metadata"]
        self.written[(str(metadata.get("namespace") or ""), str(metadata["name"]))] = metadata.get(
            "resourceVersion"
        )
        return obj

    def wrote(self, obj: Resource) -> bool:
        """Whether ``obj`` is this engine's own latest write of the run."""
        metadata = obj.get("metadata") or {}
        key = (str(metadata.get("namespace") or ""), str(metadata.get("name")))
        return bool(self.written.get(key, False) == metadata.get("resourceVersion"))

    # -- gathering ------------------------------------------------------------------------------
    def _snapshot(self, run: Resource, run_story: RunStory) -> Snapshot:
        namespace = namespace_of(run)
        story_name, story = run_story.name, run_story.story
        engrams: dict[str, Resource | None] = {}
        templates: dict[str, Resource | None] = {}
        sub_stories: dict[str, Any] = {}
        if story is not None:
            engram_names, targets = required_engrams(story), sub_story_refs(story)
            for ref in engram_names:
                engram = self.caches.engrams.get(ref, namespace)
                engrams[ref] = engram
                template = ((engram or {}).get("spec") or {}).get("templateRef") or {}
                if template.get("name"):
                    templates[template["name"]] = self.caches.templates.get(template["name"])
            for step_name, (target, target_ns) in targets.items():
                sub, _ = self.caches.models.parse(self.caches.stories.get(target, target_ns or namespace))
                sub_stories[step_name] = sub
        depth_text = runs.annotations_of(run).get(runs.ANNOTATION_DEPTH, "0")
        return Snapshot(
            run=run,
            story=story,
            engrams=engrams,
            templates=templates,
            step_runs=self.caches.step_runs_of(run, story),
            child_runs=self.caches.child_runs_of(run),
            now=self.clock.now(),
            config=self.config,
            depth=int(depth_text) if depth_text.isdigit() else 0,
            capacity=self._capacity(run, story, story_name, namespace),
            sub_stories=sub_stories,
            story_pin=run_story.pin,
            story_problem=run_story.problem,
        )

    def _capacity(self, run: Resource, story: Story | None, story_name: str, namespace: str) -> Capacity:
        """Running StepRuns against the limits of §2.7 (counted only when a limit applies)."""
        if not self._limited(story):
            return _NO_CAPACITY
        queue = queue_name(story)
        queue_limit = self.config.queue(queue).concurrency
        story_running = queue_running = global_running = 0
        for obj in self.caches.step_runs.by_index(runs.RUNNING, True):
            labels = runs.labels_of(obj)
            global_running += 1
            if labels.get(runmeta.QUEUE, "default") == queue:
                queue_running += 1
            if labels.get(runs.LABEL_STORY) == story_name and namespace_of(obj) == namespace:
                story_running += 1
        outranked = bool(queue_limit or self.config.global_concurrency) and self._outranked(run, story, queue)
        return Capacity(
            story_running=story_running,
            queue_running=queue_running,
            global_running=global_running,
            outranked=outranked,
        )

    def _limited(self, story: Story | None) -> bool:
        """Whether any concurrency limit applies to runs of ``story`` (memoised per parsed
        Story object: runs of the same Story content share one, and models are immutable)."""
        key = id(story)
        hit = self._limits.get(key)
        if hit is not None and hit[0] is story and hit[1] is self.config:
            return hit[2]
        policy = story.spec.policy if story is not None else None
        limited = bool(
            (policy and policy.concurrency)
            or self.config.queue(queue_name(story)).concurrency
            or self.config.global_concurrency
        )
        if len(self._limits) >= _MAX_LIMITS:
            self._limits.clear()
        self._limits[key] = (story, self.config, limited)
        return limited

    def _priority(self, run: Resource, story: Story | None) -> int | None:
        """Effective priority of a run waiting for capacity (``None``: nothing queued)."""
        states = ((run.get("status") or {}).get("stepStates") or {}).values()
        queued = [parse_timestamp(s.get("startedAt")) for s in states if s.get("reason") == StepReason.QUEUED]
        if not queued:
            return None
        since = min((t for t in queued if t is not None), default=None)
        aging = self.config.queue(queue_name(story)).priority_aging_seconds
        return effective_priority(queue_priority(story, self.config), since, self.clock.now(), aging)

    def _outranked(self, run: Resource, story: Story | None, queue: str) -> bool:
        """Another run of ``queue`` waiting for capacity has a higher effective priority."""
        mine = self._priority(run, story)
        if mine is None:
            mine = queue_priority(story, self.config)
        uid = run["metadata"].get("uid")
        for key in list(self.queued):
            other = self.caches.story_runs.get(key[1], key[0])
            if other is None or other["metadata"].get("uid") == uid:
                continue
            _, _, other_story = self.caches.story_of(other)
            if queue_name(other_story) != queue:
                continue
            theirs = self._priority(other, other_story)
            if theirs is not None and theirs > mine:
                return True
        return False

    def step_run_event(self, obj: Resource) -> list[Request]:
        """Every StepRun event: the StepRun is seen (cached), and :meth:`queued_runs`."""
        if self.unseen:
            metadata = obj.get("metadata") or {}
            self.unseen.pop((str(metadata.get("namespace") or ""), str(metadata.get("name"))), None)
        return self.queued_runs(obj)

    def queued_runs(self, obj: Resource) -> list[Request]:
        """Runs holding queued steps, when a StepRun ends (capacity was freed)."""
        phase = (obj.get("status") or {}).get("phase")
        if not is_terminal_phase(phase) or not self.queued:
            return []
        return [Request(ns or None, name) for ns, name in self.queued]

    # -- reconcile ------------------------------------------------------------------------------
    def child_event_delay(self, request: Request) -> float:
        """How long to let child events of a run accumulate before reconciling it.

        A run with one step in flight (a chain) is reconciled at once: latency is all that
        matters. A run with many steps in flight is reconciled at most about every other
        planning pass (reading the run and planning it; creating new steps is not counted),
        so a burst of completions costs a few passes instead of one each.
        """
        run = self.caches.story_runs.get(request.name, request.namespace)
        active = len(((run or {}).get("status") or {}).get("active") or ())
        if active <= 1:
            return 0.0
        cost = self.costs.get((request.namespace or "", request.name), 0.0)
        return min(MAX_CHILD_DEBOUNCE, max(cost, MIN_CHILD_DEBOUNCE) * 2)

    async def _reconcile(self, request: Request, *, cached: bool) -> Result:
        run = self.caches.story_runs.get(request.name, request.namespace) if cached else None
        if run is None:
            try:
                run = await self.client.get(STORY_RUN, request.name, request.namespace)
            except NotFound:
                self._forget((request.namespace or "", request.name))
                return Result()
        if is_deleting(run):
            self._forget((request.namespace or "", request.name))
            return Result()
        if self.scope is not None and not (admitted := self.scope.admits_run(run, self.caches.story_runs)):
            return Result(requeue_after=UNKNOWN_RETRY) if admitted is None else Result()
        key = (request.namespace or "", request.name)
        if (due := self.progress.unchanged_due(key, run)) is not None:
            self._remember(await self.client.patch_status({**run, "status": due}, run.get("status")))
            return Result()
        started = time.perf_counter()
        stored, run = run, self.progress.planned(key, run)
        run_story = await self.caches.snapshots.of_run(run)
        snapshot = self._snapshot(run, run_story)
        plan = make_plan(snapshot)
        for _ in range(MAX_ROUNDS):  # templating.offloaded-data-policy: controller
            if not plan.load_blobs:
                break
            snapshot = replace(snapshot, blobs=await load_blobs(self.config, plan.load_blobs, snapshot.blobs))
            plan = make_plan(snapshot)
        # what a pass over the run costs (not what creating and starting new steps costs)
        self.costs[key] = time.perf_counter() - started
        relaunch, hold = await self._apply(stored, run, plan, run_story)
        limited = self._limited(snapshot.story)
        if limited and not is_terminal_phase(plan.status.get("phase")) and _holds_queued_steps(plan.status):
            self.queued.add(key)
        else:
            self.queued.discard(key)
        if relaunch:  # a step failed to launch: the next plan reacts to it (no event will come)
            return Result(requeue_after=0.01)
        waits = [w for w in (plan.requeue_after, hold) if w is not None]
        if waits:
            return Result(requeue_after=max(min(waits), 0.01))
        return Result()

    def _forget(self, key: tuple[str, str]) -> None:
        """The run is gone (or going): no more capacity wake-ups, cost estimates, held status."""
        self.costs.pop(key, None)
        self.queued.discard(key)
        self.progress.forget(key)
        self.written.pop(key, None)

    def prepare_stories(self) -> int:
        """Parse and compile every cached Story now (both are memoised), so that work is
        part of the engine's start-up instead of its first run of each Story. Returns how
        many Stories are ready to run."""
        prepared = 0
        for obj in self.caches.stories.list():
            story = self.caches.snapshots.prepare(obj)
            if story is not None:
                compile_graph(story)
                prepared += 1
        return prepared

    # -- held step progress ---------------------------------------------------------------------
    def planned_run(self, name: str, namespace: str | None) -> Resource | None:
        """The run as this engine last planned it (its held status included), else the cached one."""
        cached = self.caches.story_runs.get(name, namespace)
        if cached is None:
            return None
        return self.progress.planned((namespace or "", name), cached)

    async def _apply(
        self, stored: Resource, run: Resource, plan: Plan, run_story: RunStory
    ) -> tuple[bool, float | None]:
        """Apply ``plan`` made from ``run`` (``stored``, with any held status); return whether a
        creation failed (recorded as a failed step) and how long a held status may wait."""
        namespace = str(run["metadata"].get("namespace") or "")
        key = (namespace, str(run["metadata"]["name"]))
        planned_from = run.get("status") or {}
        if plan.store_story is not None and run_story.body is not None:
            # The copy is stored, then the status recording it is written, then children are
            # created: no child ever exists for a run that has not recorded its Story (a crash
            # before the status write restarts on the then-current Story; after it, started
            # steps whose StepRuns are missing get them created again from the copy).
            await self.caches.snapshots.store(run, plan.store_story, run_story.body, _owner_reference(run))
            run = stored = self._remember(await self.client.update_status({**run, "status": plan.status}))
        logs: list[Path] = []
        if plan.delete_logs:
            logs += [self.env.log_path(namespace, name) for name in plan.delete_step_runs]
            for name in plan.delete_child_runs:
                logs += await steplog.run_logs(self.client, self.env.home, namespace, name)
        for name in plan.delete_step_runs:
            self.unseen.pop((namespace, name), None)  # created again by a later plan
            await self._delete(STEP_RUN, name, namespace)
        for name in plan.delete_child_runs:
            await self._delete(STORY_RUN, name, namespace)
        if logs:  # what is deleted for good leaves no files behind
            await asyncio.to_thread(steplog.remove_step_logs, logs)
        owner = _owner_reference(run)
        status = plan.status
        planned = {**run, "status": status}
        unseen = False
        for new in plan.create_step_runs:
            if self.unseen and self._unseen_young((namespace, new.name)):
                unseen = True  # created by this engine, not in the cache yet: see _create_step_run
                continue
            problem = await self._create_step_run(new, namespace, owner, planned)
            if problem is not None:
                status = _launch_failed(status, new.parent_step or new.step_id, problem, self.clock.now())
        for child in plan.create_child_runs:
            problem = await self._create_child_run(child, namespace, owner)
            if problem is not None:
                status = _launch_failed(status, child.step, problem, self.clock.now())
        for name in getattr(plan, "cancel_child_runs", ()):
            await self._cancel_child(name, namespace)
        for name, changes in plan.annotate_step_runs.items():
            await self._annotate(STEP_RUN, name, namespace, changes)
        if plan.annotations:
            current = runs.annotations_of(run)
            if any(current.get(k) != v for k, v in plan.annotations.items()):
                run = stored = self._remember(
                    await self.client.update(_with_annotations(run, plan.annotations))
                )
        hold = None
        stored_status = stored.get("status") or {}
        if stored_status == status:
            self.progress.written(key)
        elif (
            status is plan.status
            and run_story.story is not None
            and (hold := self.progress.hold(key, stored, planned_from, plan, compile_graph(run_story.story)))
        ):
            run = {**stored, "status": status}
        else:
            # Only what changed is written: a long run's status is large, a step event small.
            run = self._remember(await self.client.patch_status({**stored, "status": status}, stored_status))
            self.progress.written(key)
            if (recorder := metrics.current()) is not None and _finished_now(stored_status, status):
                recorder.run_finished(run, status)
        if plan.events:
            await self.events.record_all(run, [EventSpec(e.type, e.reason, e.message) for e in plan.events])
        if plan.delete_run:  # its logs first: once the run is gone nothing finds them
            logs = await steplog.run_logs(self.client, self.env.home, namespace, key[1])
            await asyncio.to_thread(steplog.remove_step_logs, logs)
            await self._delete(STORY_RUN, key[1], namespace)
        if unseen:  # the plan is made again once a StepRun taken to exist would be created again
            hold = UNSEEN_TTL if hold is None else min(hold, UNSEEN_TTL)
        return status is not plan.status, hold

    async def _delete(self, kind: Kind, name: str, namespace: str) -> None:
        with contextlib.suppress(NotFound):
            await self.client.delete(kind, name, namespace)

    async def _create_step_run(
        self, new: NewStepRun, namespace: str, owner: dict[str, Any], run: Resource
    ) -> str | None:
        """Create (and launch) ``new``; return why it could not be, if so.

        A plan made before the StepRun cache caught up with this engine's own creations (a
        wide fan-out creates hundreds in one reconcile, the next one can start before their
        events are all in) asks to create them again: such a create would only find the
        StepRun (``AlreadyExists``, ours). While it is younger than :data:`UNSEEN_TTL` and no
        event has shown it, :meth:`_apply` leaves it out (the outcome of that create) and has
        the run reconciled again by then (a StepRun deleted during a watch gap is created
        again then).
        """
        labels = dict(new.labels)
        if new.parent_step:
            labels[runs.LABEL_PARENT_STEP] = new.parent_step
        body = _child("StepRun", new.name, namespace, labels, new.annotations, owner, new.spec)
        existed, problem = await _create(lambda b: self.create_step_run(b, run), body)
        if existed:
            return await self._foreign(STEP_RUN, new.name, namespace, owner)
        if problem is None and self.caches.step_runs.get(new.name, namespace) is None:
            self._remember_unseen((namespace, new.name))
        return problem

    def _unseen_young(self, key: tuple[str, str]) -> bool:
        """Whether this engine created StepRun ``key`` less than :data:`UNSEEN_TTL` ago and no
        event has shown it yet (so it exists, though the cache does not have it yet)."""
        created_at = self.unseen.get(key)
        if created_at is None:
            return False
        if self.clock.monotonic() - created_at < UNSEEN_TTL:
            return True
        del self.unseen[key]
        return False

    def _remember_unseen(self, key: tuple[str, str]) -> None:
        now = self.clock.monotonic()
        if len(self.unseen) >= _MAX_UNSEEN:  # events lost (a watch gap): forget the expired ones
            self.unseen = {k: t for k, t in self.unseen.items() if now - t < UNSEEN_TTL}
        self.unseen[key] = now

    async def _foreign(self, kind: Kind, name: str, namespace: str, owner: dict[str, Any]) -> str | None:
        """Why an existing child named like ours is not ours (``None`` when it is).

        Names are ``<run>-<step>``, so run ``x`` step ``y-z`` and run ``x-y`` step ``z``
        collide; taking the other run's child for ours would wait for it forever.
        """
        try:
            existing = await self.client.get(kind, name, namespace)
        except NotFound:
            return None  # gone meanwhile: the next reconcile creates it again
        if is_deleting(existing):
            return None  # e.g. left by an earlier run of the same name: the engine waits for it to go
        if kind == STORY_RUN and runs.labels_of(existing).get(runs.LABEL_PARENT_RUN) == runmeta.run_label(
            owner["name"]
        ):
            return None  # claims to be our child: the engine checks its owner (ChildRunView.owned)
        owners = (existing.get("metadata") or {}).get("ownerReferences") or ()
        if any(isinstance(o, dict) and o.get("uid") == owner["uid"] for o in owners):
            return None
        return (
            f"{kind.kind} {name} could not be created: the name is taken by an object this run does not own"
        )

    async def _create_child_run(
        self, child: NewChildRun, namespace: str, owner: dict[str, Any]
    ) -> str | None:
        body = _child("StoryRun", child.name, namespace, child.labels, child.annotations, owner, child.spec)
        existed, problem = await _create(self._create_trusted, body)
        if existed:
            return await self._foreign(STORY_RUN, child.name, namespace, owner)
        return problem

    async def _cancel_child(self, name: str, namespace: str) -> None:
        async def once() -> None:
            try:
                child = await self.client.get(STORY_RUN, name, namespace)
            except NotFound:
                return
            spec = child.get("spec") or {}
            if spec.get("cancelRequested") or is_terminal_phase((child.get("status") or {}).get("phase")):
                return
            await self.client.update({**child, "spec": {**spec, "cancelRequested": True}})

        await retry_on_conflict(once)

    async def _annotate(self, kind: Kind, name: str, namespace: str, changes: dict[str, str | None]) -> None:
        async def once() -> None:
            try:
                obj = await self.client.get(kind, name, namespace)
            except NotFound:
                return
            current = runs.annotations_of(obj)
            if all(current.get(k) == v for k, v in changes.items()):
                return
            await self.client.update(_with_annotations(obj, changes))

        await retry_on_conflict(once)


def _child(
    kind: str,
    name: str,
    namespace: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    owner: dict[str, Any],
    spec: dict[str, Any],
) -> Resource:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": dict(labels),
        "ownerReferences": [owner],
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "runs.bubustack.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}


async def _create(
    create: Callable[[Resource], Awaitable[Resource]], body: Resource
) -> tuple[bool, str | None]:
    """Create ``body`` (a trusted create: built by the engine from the admitted Story) unless
    it exists: ``(existed, problem)``.

    ``existed``: an object of that name was there already (an earlier reconcile or another
    engine made it — or someone else: the caller checks). ``problem``: why the store rejected
    it (admission), so the step fails visibly instead of the reconcile retrying forever.
    """
    try:
        await create(body)
    except AlreadyExists:
        return True, None
    except StatusError as exc:
        if exc.reason in ("Invalid", "Forbidden", "BadRequest"):
            kind = body["kind"]
            return False, f"{kind} {body['metadata']['name']} could not be created: {exc}"
        raise
    return False, None


def _launch_failed(status: dict[str, Any], step: str, message: str, now: datetime) -> dict[str, Any]:
    """``status`` with ``step`` Failed (reason InvalidConfiguration); the next plan reacts to it."""
    states = dict(status.get("stepStates") or {})
    stamp = format_timestamp(now)
    states[step] = {
        **(states.get(step) or {}),
        "phase": "Failed",
        "reason": "InvalidConfiguration",
        "message": message[:32768],
        "finishedAt": stamp,
    }
    states[step].setdefault("startedAt", stamp)
    return {**status, "stepStates": states}


def _finished_now(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether a status write moved the run into a terminal phase (counted once, by its writer)."""
    return is_terminal_phase(after.get("phase")) and not is_terminal_phase(before.get("phase"))


def _with_annotations(obj: Resource, changes: dict[str, str | None]) -> Resource:
    annotations = dict(runs.annotations_of(obj))
    for key, value in changes.items():
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
    return {**obj, "metadata": {**obj["metadata"], "annotations": annotations}}


# -- watches -----------------------------------------------------------------------------------
def _run_trigger(run: Resource) -> Hashable:
    metadata = run.get("metadata") or {}
    annotations = runs.annotations_of(run)
    status = run.get("status") or {}
    gates = status.get("gates")
    return (
        metadata.get("generation"),
        bool(metadata.get("deletionTimestamp")),
        tuple(annotations.get(key) for key in _WATCHED_ANNOTATIONS),
        json.dumps(gates, sort_keys=True) if gates else None,
    )


def _finished_at(run: Resource) -> Hashable:
    status = run.get("status") or {}
    return status.get("finishedAt") if is_terminal_phase(status.get("phase")) else None


def _run_changed(wrote: Callable[[Resource], bool]) -> Callable[[WatchEvent], bool]:
    """The run's own events a reconcile acts on: creation, spec, deletion, the watched
    annotations and gates; and its end when another engine finished it (its child TTL and
    retention are scheduled from there; the engine that finished it scheduled them already)."""
    trigger, finished = changed(_run_trigger), changed(_finished_at)

    def predicate(event: WatchEvent) -> bool:
        acts, ended = trigger(event), finished(event)  # both remember every event's values
        return acts or (ended and not wrote(event.object))

    return predicate


_QUIET_PHASES = (None, "", "Pending", "Running")


def _child_trigger(obj: Resource) -> Hashable:
    """What of a child matters to its run: leaving the quiet phases, retries, deletion.

    Pending -> Running is not a trigger here: :func:`_started_running` reports it late
    (debounced), so a short step costs no extra reconcile and status write. A StepRun that
    waits for an execution slot (``WaitingForCapacity``) is one, so the run shows why.
    """
    metadata = obj.get("metadata") or {}
    status = obj.get("status") or {}
    phase = status.get("phase")
    if is_waiting_for_capacity(status):  # shown in the run's stepStates: why the step waits
        phase = WAITING_FOR_CAPACITY
    return (
        None if phase in _QUIET_PHASES else phase,
        status.get("retries"),
        bool(metadata.get("deletionTimestamp")),
    )


def _holds_queued_steps(status: dict[str, Any]) -> bool:
    states = (status.get("stepStates") or {}).values()
    return any(s.get("reason") == StepReason.QUEUED for s in states)


def _child_changed() -> Callable[[WatchEvent], bool]:
    """A child changed in a way its run must react to (see :func:`_child_trigger`).

    A child that merely appeared (created by the run's own plan, not started yet) is not
    news to the run: skipping it saves a reconcile per step.
    """
    return changed(_child_trigger, added=lambda value: value != _QUIET_CHILD)


_QUIET_CHILD = (None, None, False)


#: A StepRun that started is shown Running in the run's status after this long, unless
#: something else (typically its end) reconciles the run first. As long as the status hold:
#: the report is step progress, held that long anyway, so reporting sooner would cost a
#: reconcile for nothing whenever the step ends within the hold.
RUNNING_REPORT_DELAY = STATUS_HOLD


def _started_running() -> Callable[[WatchEvent], bool]:
    seen = changed(lambda obj: (obj.get("status") or {}).get("phase"))

    def predicate(event: WatchEvent) -> bool:
        return seen(event) and (event.object.get("status") or {}).get("phase") == "Running"

    return predicate


def _pinned(run: Resource | None) -> bool:
    return run is not None and StoryPin.from_status(run.get("status")) is not None


def _generation(obj: Resource) -> Hashable:
    return (obj.get("metadata") or {}).get("generation")


def _owning_run(obj: Resource) -> list[Request]:
    run = runmeta.story_run_of(obj)
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [Request(namespace, run)] if run else []


def _parent_run(obj: Resource) -> list[Request]:
    parent = runmeta.parent_run_of(obj)
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [Request(namespace, parent)] if parent else []


def setup(manager: Manager, env: ExecutionEnv) -> tuple[Controller, StoryRunReconciler]:
    reconciler = StoryRunReconciler(manager, env)
    story_runs_by_story = indexes.story_runs(manager)

    def runs_of_story(story: Resource) -> list[Request]:
        metadata = story.get("metadata") or {}
        key = (str(metadata.get("namespace") or ""), str(metadata.get("name")))
        found = [Request.for_object(r) for r in story_runs_by_story.by_index(indexes.RUN_STORY_REF, key)]
        # A run that recorded its Story copy no longer depends on the Story.
        return [r for r in found if not _pinned(reconciler.caches.story_runs.get(r.name, r.namespace))]

    def touching(mapper: Callable[[Resource], list[Request]]) -> Callable[[Resource], list[Request]]:
        def mapped(obj: Resource) -> list[Request]:
            found = mapper(obj)
            for request in found:
                reconciler.progress.touched((request.namespace or "", request.name))
            return found

        return mapped

    owning_run, parent_run = touching(_owning_run), touching(_parent_run)
    controller = Controller(
        NAME,
        STORY_RUN,
        reconciler,
        primary_predicate=_run_changed(reconciler.wrote),
        workers=8,
        base_delay=0.05,
        max_delay=30.0,
        reconcile_timeout=60.0,
        watches=[
            Watch(STEP_RUN, map_objects(reconciler.step_run_event)),
            Watch(STEP_RUN, map_objects(owning_run), _started_running(), debounce=RUNNING_REPORT_DELAY),
            Watch(
                STEP_RUN,
                map_objects(owning_run),
                _child_changed(),
                debounce=reconciler.child_event_delay,
            ),
            Watch(STORY_RUN, map_objects(parent_run), _child_changed()),
            Watch(STORY, map_objects(runs_of_story), changed(_generation)),
        ],
    )
    return manager.add(controller), reconciler
