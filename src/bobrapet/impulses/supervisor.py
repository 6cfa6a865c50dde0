"""The impulse supervisor: runs every Impulse of a home while ``bobrapet serve`` runs.

It is a controller of its own (own :class:`~bobrapet.runtime.manager.Manager` on the serve
process's store client) keyed by Impulse, following Impulses, ImpulseTemplates, Stories and
Secrets through shared caches. For each Impulse it decides whether it can run — template
found, Story found, entrypoint, delivery policy, mapping and secrets valid — and keeps exactly
one runtime per runnable Impulse:

* built-in entrypoints (``bobrapet.impulses.<module>:<Class>``) run in process, as asyncio
  tasks; any other ``module:callable`` runs as a supervised child process
  (:mod:`bobrapet.impulses.process`);
* each runtime is :class:`~bobrapet.impulses.supervised.Supervised`: restarted after a crash
  with capped back-off, not restarted after a fatal (configuration) error;
* a runtime is replaced when what it was built from changes — the Impulse's generation
  (spec), its template's generation, a bound Secret, the Story appearing — and stopped when
  the Impulse is deleted or can no longer run.

Status (single writer per field, see :mod:`bobrapet.impulses.status`): the supervisor writes
``replicas``/``readyReplicas``, the ``Listening`` condition and the delivery counters; the
Impulse controller turns them into ``phase`` (Running while the runtime runs, Failed after a
fatal error, Pending otherwise) and ``Ready``. HTTP impulses (webhook, github) are reached
through :meth:`ImpulseSupervisor.endpoint`.

Invariants: every decision reads the caches or the store, never memory alone, so a restarted
serve resumes every Impulse; memory is bounded by the number of Impulses (one entry each);
:meth:`ImpulseSupervisor.stop` stops every runtime (children get SIGTERM) before returning.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bobrapet.api.admission.impulse import context_variables
from bobrapet.api.conditions import Reason
from bobrapet.api.errors import NotFound, StatusError
from bobrapet.api.kinds import IMPULSE, IMPULSE_TEMPLATE, SECRET, STORY
from bobrapet.engine import SecretProblem, resolve_step_secrets
from bobrapet.execution.secrets import StepSecrets
from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.delivery import ImpulseFactory, ImpulseRuntime
from bobrapet.impulses.http import HttpImpulse
from bobrapet.impulses.mapping import BASE_VARIABLES, InputMapping, MappingError
from bobrapet.impulses.policy import ImpulsePolicy
from bobrapet.impulses.process import ChildImpulse, child_env
from bobrapet.impulses.runs import ImpulseRuns
from bobrapet.impulses.sink import ImpulseTarget, TriggerSink
from bobrapet.impulses.state import AnnotationState
from bobrapet.impulses.status import RuntimeReport, StatusBook
from bobrapet.impulses.supervised import Supervised
from bobrapet.runtime.cache import ObjectCache
from bobrapet.runtime.clock import Clock, RealClock
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.watches import Watch, changed, event_types, index_mapper
from bobrapet.store.client import Client, Resource
from bobrapet.triggers import DeliveryError, OffloadInputs

log = logging.getLogger("bobrapet.impulses.supervisor")

NAME = "impulse-supervisor"
BUILTIN_PREFIX = "bobrapet.impulses."
BY_TEMPLATE = "template"
BY_STORY = "story"
BY_SECRET = "secret"
WORKERS = 4

Key = tuple[str, str]


class NotRunnable(Exception):
    """The Impulse cannot run now; ``fatal`` when only a change of its resources can fix it."""

    def __init__(self, reason: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.fatal = fatal


def _meta(obj: Resource) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: Resource) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _namespace(obj: Resource) -> str:
    return str(_meta(obj).get("namespace") or "default")


def _template_name(impulse: Resource) -> list[Hashable]:
    name = (_spec(impulse).get("templateRef") or {}).get("name")
    return [name] if isinstance(name, str) and name else []


def _story_key(impulse: Resource) -> tuple[str, str] | None:
    ref = _spec(impulse).get("storyRef") or {}
    name = ref.get("name")
    if not isinstance(name, str) or not name:
        return None
    return (str(ref.get("namespace") or _namespace(impulse)), name)


def _story_index(impulse: Resource) -> list[Hashable]:
    key = _story_key(impulse)
    return [key] if key is not None else []


def _bindings(impulse: Resource) -> dict[str, str]:
    secrets = _spec(impulse).get("secrets")
    if not isinstance(secrets, Mapping):
        return {}
    return {str(k): v for k, v in secrets.items() if isinstance(v, str) and v}


def _secret_index(impulse: Resource) -> list[Hashable]:
    namespace = _namespace(impulse)
    return [(namespace, secret) for secret in sorted(set(_bindings(impulse).values()))]


def _spec_or_deletion(impulse: Resource) -> Hashable:
    """What a runtime depends on in the Impulse itself (status and state saves are not)."""
    meta = _meta(impulse)
    return (meta.get("generation"), meta.get("deletionTimestamp"))


def _object_key(obj: Resource) -> list[Hashable]:
    return [(_namespace(obj), str(_meta(obj).get("name")))]


@dataclass
class Running:
    """What the supervisor keeps for one Impulse."""

    fingerprint: Hashable
    supervised: Supervised | None
    sink: TriggerSink | None
    template: str
    report: RuntimeReport | None = None


@dataclass(frozen=True)
class Endpoint:
    """A running HTTP impulse and the sink its deliveries go to."""

    impulse: HttpImpulse
    sink: TriggerSink

    @property
    def max_body_bytes(self) -> int:
        return self.impulse.max_body_bytes


def load_entrypoint(entrypoint: str) -> Any:
    """The object ``module:attribute`` names (ImportError/AttributeError when it does not exist)."""
    module_name, _, attribute = entrypoint.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


class ImpulseSupervisor:
    """Runs every runnable Impulse (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        *,
        clock: Clock | None = None,
        workdir: Path | None = None,
        python: str = sys.executable,
        status_interval: float = 1.0,
        restart_base: float = 1.0,
        offload_inputs: OffloadInputs | None = None,
    ) -> None:
        self.client = client
        self.offload_inputs = offload_inputs
        self.clock = clock or RealClock()
        self.workdir = workdir or Path.cwd()
        self.python = python
        self.restart_base = restart_base
        self.manager = Manager(client, clock=self.clock, settle=0.05)
        self.impulses: ObjectCache = self.manager.cache(IMPULSE)
        self.impulses.add_index(BY_TEMPLATE, _template_name)
        self.impulses.add_index(BY_STORY, _story_index)
        self.impulses.add_index(BY_SECRET, _secret_index)
        self.templates: ObjectCache = self.manager.cache(IMPULSE_TEMPLATE)
        self.status = StatusBook(client, self.clock, status_interval)
        self.running: dict[Key, Running] = {}
        self._status_task: asyncio.Task[None] | None = None
        self._started = False
        self.manager.add(
            Controller(
                NAME,
                IMPULSE,
                self.reconcile,
                workers=WORKERS,
                max_delay=60.0,
                primary_predicate=changed(_spec_or_deletion),
                watches=[
                    Watch(
                        IMPULSE_TEMPLATE,
                        index_mapper(self.impulses, BY_TEMPLATE, lambda t: [_meta(t).get("name")]),
                    ),
                    Watch(
                        STORY,
                        index_mapper(self.impulses, BY_STORY, _object_key),
                        event_types("ADDED", "DELETED"),
                    ),
                    Watch(SECRET, index_mapper(self.impulses, BY_SECRET, _object_key)),
                ],
            )
        )

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self._status_task = asyncio.create_task(self.status.run(), name="impulse-status")
        await self.manager.start()
        self._started = True

    async def stop(self) -> None:
        """Stop the controller, then every runtime, then flush the status (``Listening``
        False: the runtimes no longer run)."""
        self._started = False
        await self.manager.stop()
        stopped = [key for key, entry in self.running.items() if entry.supervised is not None]
        await asyncio.gather(*(self._stop_runtime(key) for key in list(self.running)))
        for key in stopped:
            self.status.report(key, RuntimeReport(False, Reason.PENDING, "bobrapet serve stopped"))
        self.status.close()
        if self._status_task is not None:
            await self._status_task

    async def wait_idle(self, timeout: float | None = None) -> bool:
        return await self.manager.wait_idle(timeout)

    # -- HTTP -----------------------------------------------------------------------------------
    def endpoint(self, namespace: str, name: str) -> Endpoint:
        """The HTTP impulse ``namespace/name``; a ``StatusError`` (404, 503) says why there is none."""
        entry = self.running.get((namespace, name))
        if entry is not None and entry.supervised is not None and entry.sink is not None:
            runtime = entry.supervised.runtime
            if isinstance(runtime, HttpImpulse):
                return Endpoint(runtime, entry.sink)
            if runtime is not None:
                raise StatusError(
                    f'impulse "{namespace}/{name}" (template {entry.template}) does not receive HTTP '
                    "deliveries; POST only to webhook or github impulses",
                    reason="NotFound",
                    code=404,
                )
        if not self._started:
            raise StatusError(
                "the impulse supervisor is starting; retry shortly", reason="ServiceUnavailable", code=503
            )
        if self.impulses.get(name, namespace) is None:
            raise NotFound(IMPULSE.plural, name, IMPULSE.group)
        why = (
            entry.report.message if entry is not None and entry.report is not None else "it is being started"
        )
        raise StatusError(
            f'impulse "{namespace}/{name}" is not running: {why}', reason="ServiceUnavailable", code=503
        )

    # -- reconcile ------------------------------------------------------------------------------
    async def reconcile(self, request: Request) -> Result:
        key = (request.namespace or "default", request.name)
        impulse = self.impulses.get(request.name, key[0])
        if impulse is None or _meta(impulse).get("deletionTimestamp"):
            await self._stop_runtime(key, final=True)
            return Result()
        generation = _meta(impulse).get("generation")
        try:
            fingerprint, start = await self._plan(impulse)
        except NotRunnable as blocked:
            fingerprint = ("blocked", generation, blocked.reason, blocked.message)
            current = self.running.get(key)
            if current is not None and current.fingerprint == fingerprint:
                return Result()
            await self._stop_runtime(key)
            reason = Reason.INVALID_CONFIGURATION if blocked.fatal else blocked.reason
            report = RuntimeReport(
                False, reason, blocked.message, generation if isinstance(generation, int) else None
            )
            self.running[key] = Running(fingerprint, None, None, _template_label(impulse), report)
            self.status.report(key, report)
            if blocked.fatal:
                log.error("impulse %s/%s cannot run: %s", key[0], key[1], blocked.message)
            return Result()
        current = self.running.get(key)
        if current is not None and current.fingerprint == fingerprint:
            return Result()
        await self._stop_runtime(key)
        self.running[key] = start()
        return Result()

    async def _stop_runtime(self, key: Key, *, final: bool = False) -> None:
        entry = self.running.pop(key, None)
        if entry is not None and entry.supervised is not None:
            await entry.supervised.stop()
        if final:
            self.status.forget(key)

    async def _plan(self, impulse: Resource) -> tuple[Hashable, Callable[[], Running]]:
        """What the Impulse's runtime is built from, and how to start it; :class:`NotRunnable`."""
        namespace, name = _namespace(impulse), str(_meta(impulse).get("name"))
        spec = _spec(impulse)
        template = self._template(impulse)
        story = await self._story(impulse)
        entrypoint = _entrypoint(template)
        try:
            policy = ImpulsePolicy.from_specs(_spec(template), spec)
        except DeliveryError as exc:
            raise NotRunnable(Reason.INVALID_CONFIGURATION, str(exc), fatal=True) from None
        mapping = InputMapping(spec.get("mapping"), context_variables(template) or BASE_VARIABLES)
        try:
            mapping.check()
        except MappingError as exc:
            raise NotRunnable(Reason.INVALID_CONFIGURATION, str(exc), fatal=True) from None
        secrets, versions = await self._secrets(impulse, template)
        fingerprint = (
            _meta(impulse).get("uid"),
            _meta(impulse).get("generation"),
            _meta(template).get("uid"),
            _meta(template).get("generation"),
            _meta(story).get("uid"),
            versions,
        )

        def start() -> Running:
            return self._start(
                impulse, template, entrypoint, policy, mapping, secrets, fingerprint, namespace, name
            )

        return fingerprint, start

    def _template(self, impulse: Resource) -> Resource:
        names = _template_name(impulse)
        template = self.templates.get(str(names[0])) if names else None
        if template is None:
            missing = names[0] if names else ""
            raise NotRunnable(
                Reason.TEMPLATE_NOT_FOUND,
                f'ImpulseTemplate "{missing}" not found; install it (bobrapet catalog install) '
                "or fix spec.templateRef",
            )
        return template

    async def _story(self, impulse: Resource) -> Resource:
        key = _story_key(impulse)
        if key is None:
            raise NotRunnable(Reason.VALIDATION_FAILED, "spec.storyRef.name is required", fatal=True)
        try:
            return await self.client.get(STORY, key[1], key[0])
        except NotFound:
            raise NotRunnable(
                Reason.STORY_NOT_FOUND,
                f'Story "{key[0]}/{key[1]}" not found; the impulse starts once it exists',
            ) from None

    async def _secrets(self, impulse: Resource, template: Resource) -> tuple[StepSecrets, tuple[Any, ...]]:
        bindings = _bindings(impulse)
        schema = _spec(template).get("secretSchema")
        if not bindings and not schema:
            return StepSecrets(), ()
        namespace = _namespace(impulse)
        found: dict[str, Resource | None] = {}
        for secret in sorted(set(bindings.values())):
            try:
                found[secret] = await self.client.get(SECRET, secret, namespace)
            except NotFound:
                found[secret] = None
        try:
            resolved = resolve_step_secrets(
                bindings=bindings,
                schema=schema,
                secrets=found,
                namespace=namespace,
                template=str(_meta(template).get("name")),
                template_kind="ImpulseTemplate",
                binding_hint="the Impulse's spec.secrets",
            )
        except SecretProblem as problem:
            fatal = problem.reason != Reason.REFERENCE_NOT_FOUND
            raise NotRunnable(problem.reason, problem.message, fatal=fatal) from None
        versions = tuple(
            (n, _meta(s).get("resourceVersion") if s else None) for n, s in sorted(found.items())
        )
        return resolved, versions

    def _start(
        self,
        impulse: Resource,
        template: Resource,
        entrypoint: str,
        policy: ImpulsePolicy,
        mapping: InputMapping,
        secrets: StepSecrets,
        fingerprint: Hashable,
        namespace: str,
        name: str,
    ) -> Running:
        key = (namespace, name)
        spec = _spec(impulse)
        story_ns, story = _story_key(impulse) or (namespace, "")
        execution = spec.get("execution") if isinstance(spec.get("execution"), Mapping) else {}
        debug = bool((execution or {}).get("debug"))
        context = ImpulseContext(
            namespace=namespace,
            name=name,
            clock=self.clock,
            debug=debug,
            state=AnnotationState(self.client, namespace, name),
            runs=ImpulseRuns(self.client, namespace, name, story),
            logger=logging.getLogger(f"bobrapet.impulses.{namespace}.{name}"),
            redact_terms=secrets.redaction_terms(),
            secrets=secrets.wire(),
        )
        target = ImpulseTarget(namespace, name, story, story_ns if story_ns != namespace else None)
        sink = TriggerSink(self.client, target, policy, mapping, context, self.status, self.offload_inputs)
        config = spec.get("with") if isinstance(spec.get("with"), Mapping) else None
        if entrypoint.startswith(BUILTIN_PREFIX):
            factory: ImpulseFactory = load_entrypoint(entrypoint)

            def build() -> ImpulseRuntime:
                return factory(config, context)

        else:
            env = child_env(impulse, policy, secrets, debug=debug, story=(story_ns, story))

            def build() -> ImpulseRuntime:
                return ChildImpulse(entrypoint, context, sink, env, workdir=self.workdir, python=self.python)

        generation = _meta(impulse).get("generation")
        entry = Running(fingerprint, None, sink, _template_label(impulse))

        def report(value: RuntimeReport) -> None:
            entry.report = value
            self.status.report(key, value)

        supervised = Supervised(
            build,
            sink,
            context,
            report,
            generation=generation if isinstance(generation, int) else None,
            base=self.restart_base,
        )
        entry.supervised = supervised
        supervised.start()
        log.info("impulse %s/%s started (%s)", namespace, name, entrypoint)
        return entry


def _template_label(impulse: Resource) -> str:
    names = _template_name(impulse)
    return str(names[0]) if names else "?"


def _entrypoint(template: Resource) -> str:
    entrypoint = _spec(template).get("entrypoint")
    name = _meta(template).get("name")
    if not isinstance(entrypoint, str) or ":" not in entrypoint:
        raise NotRunnable(
            Reason.INVALID_CONFIGURATION,
            f'ImpulseTemplate "{name}" has no spec.entrypoint ("module:callable"): an embedded '
            "`bobrapet serve` runs Python impulses only",
            fatal=True,
        )
    if entrypoint.startswith(BUILTIN_PREFIX):
        try:
            load_entrypoint(entrypoint)
        except (ImportError, AttributeError) as exc:
            raise NotRunnable(
                Reason.INVALID_CONFIGURATION,
                f'ImpulseTemplate "{name}": built-in entrypoint {entrypoint} does not exist ({exc})',
                fatal=True,
            ) from None
    return entrypoint
