"""Deciding one launch of a StepRun attempt: ``decide_launch(gathered) -> LaunchDecision``.

The StepRun controller *gathers* (the StepRun, the run's :class:`Snapshot` with the Story
copy and upstream StepRuns, the Engram, its EngramTemplate, the Secret objects the step
binds, the engine config, one clock reading, the engine's identity, log and working paths),
this module *decides*, and the controller *applies* the decision (status write, events,
executor reservation, claim, log header, hand-off to the attempt runner).

Pure: no I/O, no clock reads (``snapshot.now`` is the only time source; template
``now()`` returns that reading), randomness seeded from the run, step and attempt
(:func:`bobrapet.engine.variables.template_seed`).

Invariants — the checks run in this fixed order and the first that fails decides:

1. the Engram exists, else :class:`LaunchBlocked` (reason ``ReferenceNotFound``, phase
   ``Blocked``, re-checked after :data:`MISSING_REFERENCE_RETRY` s); then its
   EngramTemplate (``TemplateNotFound``, likewise);
2. the step's Engram version pin matches (``EngramReferenceInvalid``);
3. every ``requires`` path has a value (``DependencyFailed``);
4. the input renders (``ExpressionFailed``; an upstream output that is not there yet but may
   still come is :class:`LaunchBlocked` without a status change, re-checked after
   :data:`BLOCKED_RETRY` s; a compound template over offloaded data follows
   ``templating.offloaded-data-policy``: ``error`` fails, ``controller`` asks for the stored
   values with :class:`LaunchNeeds` and is decided again with them in ``blobs``);
   ``$bubuConfigMapRef``/``$bubuSecretRef`` maps in it are resolved from the gathered
   ``objects``, in the StepRun's namespace only (:class:`LaunchNeeds` asks for the objects;
   a bad reference is ``InvalidConfiguration``; Secret texts are added to the redactions);
5. the input matches the template's ``inputSchema`` (``InputSchemaFailed``) and is within
   ``max_inline_step_input``: above it, the attempt offloads the input to storage
   (:attr:`LaunchAttempt.offload_inputs`), or fails (``InputTooLarge``) when storage is
   disabled; reaching 80 % of it adds a warning event;
6. the template has an entrypoint or a command (``InvalidConfiguration``); an output cache
   policy's ``key`` template renders (``ExpressionFailed``; :mod:`bobrapet.engine.cache`);
7. the bound secrets can be delivered (the :class:`~bobrapet.engine.secrets.SecretProblem`
   reason).

The request's environment carries the step's inline limit (``BUBU_MAX_INLINE_SIZE``,
:func:`~bobrapet.engine.steprun.inline_limit`) and the storage settings (``BUBU_STORAGE_*``):
the step's own process dehydrates its output and hydrates its inputs.

Every failure is a :class:`LaunchFailed` whose ``status`` is the StepRun's new status
(phase ``Failed``, the reason code in the Ready condition and ``error.code``). Otherwise the
decision is a :class:`LaunchAttempt`: the :class:`ExecutionRequest` to hand to an executor,
and :meth:`LaunchAttempt.claim` gives the claim status once the executor said whether a slot
was free.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from bobrapet.api.conditions import Reason
from bobrapet.api.expressions import iter_templates
from bobrapet.api.phases import is_terminal_phase
from bobrapet.api.runmeta import story_run_of
from bobrapet.api.types.story import Step, Story
from bobrapet.engine.cache import CacheEntry, cache_entry, cache_policy
from bobrapet.engine.dag import compile_graph
from bobrapet.engine.launch import engram_version_mismatch
from bobrapet.engine.plan import Event
from bobrapet.engine.secrets import SecretProblem, effective_bindings, resolve_step_secrets
from bobrapet.engine.snapshot import Snapshot
from bobrapet.engine.step_events import input_near_limit
from bobrapet.engine.steprun import (
    InputRejected,
    blocked,
    claimed,
    debug_enabled,
    inline_limit,
    launch_failed,
    missing_requirement,
    prepare_input,
    step_timeout,
    waiting_for_capacity,
)
from bobrapet.engine.variables import run_variables, template_seed
from bobrapet.execution.request import ExecutionRequest, build_env, storage_env
from bobrapet.execution.secrets import StepSecrets
from bobrapet.storage.errors import InvalidReference
from bobrapet.storage.kube_refs import check_namespace, kube_refs_in, parse_kube_ref, resolver
from bobrapet.storage.refs import CONFIGMAP_REF, SECRET_REF, STORAGE_REF
from bobrapet.templating import Blocked, OffloadedData, TemplateError, Unhydrated, render

__all__ = [
    "BLOCKED_RETRY",
    "MISSING_REFERENCE_RETRY",
    "LaunchAttempt",
    "LaunchBlocked",
    "LaunchDecision",
    "LaunchFailed",
    "LaunchInput",
    "LaunchNeeds",
    "decide_launch",
    "find_step",
    "launch_secret_names",
]

#: Seconds until a launch waiting for an upstream output is re-checked.
BLOCKED_RETRY = 0.25
#: Seconds until a launch blocked on a missing Engram/EngramTemplate is re-checked.
MISSING_REFERENCE_RETRY = 5.0
#: Reason of a :class:`LaunchBlocked` waiting for an upstream output (no status change).
UPSTREAM_NOT_READY = "UpstreamNotReady"
#: ``json.dumps(value, separators=(",", ":"))`` without building an encoder per call.
_COMPACT: Final = json.JSONEncoder(separators=(",", ":"))


@dataclass(frozen=True)
class LaunchInput:
    """What the StepRun controller gathered for one launch decision (plain data)."""

    #: The StepRun as read (its ``status`` is the base of every status decided).
    step_run: Mapping[str, Any]
    #: The run: its StoryRun, the Story copy it executes, its StepRuns and child runs, the
    #: engine config and the clock reading ``now``.
    snapshot: Snapshot
    #: The name of the Story the run executes (``BUBU_STORY_NAME``).
    story_name: str
    engram: Mapping[str, Any] | None
    template: Mapping[str, Any] | None
    #: The Secret objects named by :func:`launch_secret_names` (``None``: not found).
    secrets: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    #: The engine's identity (written as ``podName`` by the claim).
    holder: str = ""
    #: Where the attempt's log goes and where engrams run.
    log_path: Path = Path()
    workdir: Path = Path()
    #: Offloaded values loaded for compound templates (storage key -> value or LoadFailure).
    blobs: Mapping[str, Any] = field(default_factory=dict)
    #: ConfigMaps and Secrets named by references in the input: (kind, name) -> object
    #: (``None``: looked up and missing), all in the StepRun's namespace.
    objects: Mapping[tuple[str, str], Mapping[str, Any] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class LaunchAttempt:
    """Execute this attempt: hand ``request`` to an executor, then write :meth:`claim`."""

    request: ExecutionRequest
    #: The step (or parallel branch) of the Story copy (``None``: not found there).
    step: Step | None
    template: Mapping[str, Any]
    #: 1 for the first attempt, 2 for the first retry...
    attempt: int
    #: The StepRun's status as read, the engine's identity and the clock reading.
    status: Mapping[str, Any]
    holder: str
    now: datetime
    #: Events to record before the claim (e.g. the input-near-limit warning).
    events: tuple[Event, ...] = ()
    #: The input is larger than ``max_inline_step_input``: the controller offloads it to
    #: storage (``inputs/<steprun>/``) before handing the request over.
    offload_inputs: bool = False
    #: The step's output cache entry (``None``: no cache policy applies), reference §7.6.
    cache: CacheEntry | None = None

    def claim(self, *, ready: bool, capacity: tuple[int, int] | None = None) -> dict[str, Any]:
        """The claim status: ``Running`` when the executor reserved a slot (``ready``), else
        ``Pending``/``WaitingForCapacity`` (``capacity``: the executor's slots in use and
        total slots, for the message; needed only when not ``ready``)."""
        if ready:
            return claimed(self.status, holder=self.holder, now=self.now)
        used, total = capacity if capacity is not None else ("?", "?")
        message = (
            f"Waiting for a free execution slot on {self.holder} ({used}/{total} steps running); "
            "it starts as running steps finish"
        )
        return waiting_for_capacity(self.status, holder=self.holder, message=message, now=self.now)


@dataclass(frozen=True)
class LaunchFailed:
    """The attempt can never run: write ``status`` (phase Failed with ``reason``)."""

    reason: str
    message: str
    status: dict[str, Any]
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class LaunchBlocked:
    """Not now: write ``status`` when it is not ``None``, decide again after ``requeue_after`` s."""

    reason: str
    requeue_after: float
    status: dict[str, Any] | None = None
    message: str | None = None


@dataclass(frozen=True)
class LaunchNeeds:
    """Gather these and decide again: offloaded values (storage keys) a compound template
    reads, and ConfigMaps/Secrets (kind, name) the input references."""

    blobs: tuple[str, ...] = ()
    objects: tuple[tuple[str, str], ...] = ()


LaunchDecision = LaunchAttempt | LaunchFailed | LaunchBlocked | LaunchNeeds


def find_step(story: Story | None, step_id: str) -> Step | None:
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


def _spec(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    spec = (obj or {}).get("spec")
    return spec if type(spec) is dict or isinstance(spec, Mapping) else {}


def launch_secret_names(
    step_run: Mapping[str, Any],
    story: Story | None,
    engram: Mapping[str, Any] | None,
) -> list[str]:
    """The Secret objects (in the StepRun's namespace) the controller must gather."""
    if engram is None:
        return []
    step = find_step(story, str(_spec(step_run).get("stepId") or ""))
    bindings = effective_bindings(_spec(engram).get("secrets"), step.secrets if step is not None else None)
    return sorted(set(bindings.values()))


def _referenced_steps(value: Any, requires: list[str] | None) -> frozenset[str] | None:
    """Steps the templates of ``value`` and the ``requires`` paths read; ``None`` when a
    template reads ``steps`` dynamically (``steps[expr]``, ``steps`` as a whole)."""
    names: set[str] = set()
    for _, analysis in iter_templates(value, paths=False):
        if analysis.dynamic_steps:
            return None
        names.update(analysis.step_names)
    for path in requires or ():
        parts = path.split(".")
        if len(parts) < 2 or parts[0] != "steps":
            return None
        names.add(parts[1])
    return frozenset(names)


def _never_available(run: Mapping[str, Any], story: Story | None, step: str) -> bool:
    """Whether ``step`` can no longer produce data: finished, or not a step of the story at all."""
    state = ((run.get("status") or {}).get("stepStates") or {}).get(step)
    if state is None:
        return story is not None and find_step(story, step) is None
    return is_terminal_phase(state.get("phase"))


def _resolve_secrets(
    gathered: LaunchInput,
    namespace: str,
    engram: Mapping[str, Any],
    template: Mapping[str, Any],
    step: Step | None,
) -> StepSecrets:
    """The step's secrets from the gathered Secret objects; raises :class:`SecretProblem`."""
    schema = _spec(template).get("secretSchema")
    bindings = effective_bindings(_spec(engram).get("secrets"), step.secrets if step is not None else None)
    if not bindings and not schema:
        return StepSecrets()
    found = {name: gathered.secrets.get(name) for name in sorted(set(bindings.values()))}
    template_name = str((template.get("metadata") or {}).get("name") or "")
    return resolve_step_secrets(
        bindings=bindings, schema=schema, secrets=found, namespace=namespace, template=template_name
    )


def _wanted_objects(
    value: Any, namespace: str, objects: Mapping[tuple[str, str], Mapping[str, Any] | None]
) -> tuple[tuple[str, str], ...]:
    """The ConfigMaps/Secrets the references in ``value`` name that were not gathered yet."""
    wanted: list[tuple[str, str]] = []
    for ref_map in kube_refs_in(value):
        ref = parse_kube_ref(ref_map)
        check_namespace(ref, namespace)
        key = (ref.kind, ref.name)
        if key not in objects and key not in wanted:
            wanted.append(key)
    return tuple(wanted)


def _resolve_kube_refs(
    value: dict[str, Any],
    namespace: str,
    objects: Mapping[tuple[str, str], Mapping[str, Any] | None],
    redact: list[str],
) -> dict[str, Any]:
    """``value`` with its ConfigMap/Secret references replaced (Secret texts go to ``redact``)."""
    if not objects:
        return value
    resolve = resolver(namespace, lambda kind, _ns, name: objects.get((kind, name)), redact.append)

    def walk(cur: Any) -> Any:
        if isinstance(cur, dict):
            if CONFIGMAP_REF in cur or SECRET_REF in cur:
                return resolve(cur)
            if STORAGE_REF in cur:
                return cur
            return {k: walk(v) for k, v in cur.items()}
        if isinstance(cur, list):
            return [walk(v) for v in cur]
        return cur

    resolved: dict[str, Any] = walk(value)
    return resolved


def _cache_entry(
    gathered: LaunchInput, step: Step | None, namespace: str, engram_name: str, inputs: Any, retries: int
) -> CacheEntry | None:
    """The step's output cache entry (``None``: no policy); raises ``TemplateError`` when the
    policy's ``key`` template cannot be rendered."""
    snapshot = gathered.snapshot
    policy = cache_policy(gathered.step_run, step, snapshot.story, gathered.engram)
    if policy is None:
        return None
    rendered: str | None = None
    if policy.get("key"):
        deterministic = snapshot.config.deterministic_templates
        value = render(
            str(policy["key"]),
            run_variables(snapshot, None),
            now=None if deterministic else (lambda: snapshot.now),
            deterministic=deterministic,
            seed=template_seed(snapshot.run, str(_spec(gathered.step_run).get("stepId") or ""), retries),
            offload=OffloadedData(snapshot.config.offloaded_data_policy, gathered.blobs),
        )
        rendered = value if isinstance(value, str) else _COMPACT.encode(value)
    engram_ref = _spec(gathered.step_run).get("engramRef") or {}
    version = engram_ref.get("version") or _spec(gathered.engram).get("version")
    return cache_entry(
        policy,
        namespace=namespace,
        engram=engram_name,
        version=str(version) if version else None,
        step_id=str(_spec(gathered.step_run).get("stepId") or ""),
        inputs=inputs,
        rendered_key=rendered,
    )


def decide_launch(gathered: LaunchInput) -> LaunchDecision:
    """Launch the StepRun's current attempt, fail it, or wait (see the module invariants)."""
    step_run = gathered.step_run
    snapshot = gathered.snapshot
    now, config, run, story = snapshot.now, snapshot.config, snapshot.run, snapshot.story
    metadata = step_run.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "")
    name = str(metadata.get("name") or "")
    spec = _spec(step_run)
    status: Mapping[str, Any] = step_run.get("status") or {}
    step_id = str(spec.get("stepId") or "")
    retries = int(status.get("retries") or 0)

    def fail(
        reason: str, message: str, *, error_type: str = "validation_error", events: tuple[Event, ...] = ()
    ) -> LaunchFailed:
        new = launch_failed(status, reason=reason, message=message, now=now, error_type=error_type)
        return LaunchFailed(reason=reason, message=message, status=new, events=events)

    engram_ref = spec.get("engramRef") or {}
    engram_ns = str(engram_ref.get("namespace") or namespace)
    engram = gathered.engram
    if engram is None:
        message = (
            f'Engram "{engram_ref.get("name")}" not found in namespace "{engram_ns}"; '
            "create it (bobrapet apply) or fix the step's ref"
        )
        reason = Reason.REFERENCE_NOT_FOUND
        new = blocked(status, reason=reason, message=message, now=now)
        return LaunchBlocked(reason, MISSING_REFERENCE_RETRY, new, message)
    template_name = str((_spec(engram).get("templateRef") or {}).get("name") or "")
    template = gathered.template
    if template is None:
        message = f'EngramTemplate "{template_name}" of Engram "{engram_ref.get("name")}" not found'
        reason = Reason.TEMPLATE_NOT_FOUND
        new = blocked(status, reason=reason, message=message, now=now)
        return LaunchBlocked(reason, MISSING_REFERENCE_RETRY, new, message)
    pinned, actual = engram_ref.get("version"), _spec(engram).get("version")
    if pinned and actual != pinned:  # the Engram was edited after the StepRun was made
        engram_id = f"{engram_ns}/{engram_ref.get('name')}"
        return fail(
            Reason.ENGRAM_REFERENCE_INVALID,
            engram_version_mismatch(engram_id, str(pinned), actual, str(spec.get("stepId"))),
        )
    step = find_step(story, step_id)

    only = _referenced_steps(spec.get("input"), step.requires if step else None)
    variables = run_variables(snapshot, only)
    missing = missing_requirement(step.requires if step else None, variables)
    if missing is not None:
        message = f"required context '{missing}' is nil — upstream step produced no output for this key"
        return fail("DependencyFailed", message)
    deterministic = config.deterministic_templates
    try:
        resolved = render(
            spec.get("input") or {},
            variables,
            now=None if deterministic else (lambda: now),
            deterministic=deterministic,
            seed=template_seed(run, step_id, retries),
            offload=OffloadedData(config.offloaded_data_policy, gathered.blobs),
        )
    except Blocked as exc:
        if _never_available(run, story, exc.step):
            return fail("ExpressionFailed", f"Input resolution failed after dependencies completed: {exc}")
        return LaunchBlocked(UPSTREAM_NOT_READY, BLOCKED_RETRY, None, str(exc))
    except Unhydrated as exc:
        return LaunchNeeds(blobs=exc.keys)
    except TemplateError as exc:
        return fail("ExpressionFailed", f"Input resolution failed: {exc}")
    template_spec = _spec(template)
    resolved = resolved if isinstance(resolved, dict) else {}
    redact: list[str] = []
    try:
        wanted = _wanted_objects(resolved, namespace, gathered.objects)
        if wanted:
            return LaunchNeeds(objects=wanted)
        resolved = _resolve_kube_refs(resolved, namespace, gathered.objects, redact)
    except InvalidReference as exc:
        return fail(Reason.INVALID_CONFIGURATION, f"Input resolution failed: {exc.message}")
    try:
        inputs = prepare_input(resolved, template)
    except InputRejected as exc:
        return fail("InputSchemaFailed", str(exc), error_type="validation_error")
    size = len(_COMPACT.encode(inputs))
    limit = config.max_inline_step_input
    offload_inputs = bool(limit and size > limit and config.storage.enabled)
    if limit and size > limit and not offload_inputs:
        message = (
            f"step input for {spec.get('stepId')} is {size} bytes which exceeds the max inline "
            f"limit of {limit} bytes (storage is disabled: enable controller.storage.provider to "
            "offload it)"
        )
        return fail("InputTooLarge", message)
    near = input_near_limit(str(spec.get("stepId")), size, limit)
    events: tuple[Event, ...] = (near,) if near is not None else ()
    entrypoint = template_spec.get("entrypoint")
    command = template_spec.get("command")
    if not entrypoint and not command:
        message = (
            f'EngramTemplate "{template_name}" has neither spec.entrypoint nor spec.command; '
            "the embedded engine runs Python entrypoints and commands (images need Kubernetes)"
        )
        return fail("InvalidConfiguration", message, events=events)
    try:
        secrets = _resolve_secrets(gathered, namespace, engram, template, step)
    except SecretProblem as exc:
        return fail(exc.reason, exc.message, events=events)
    if redact:
        secrets = replace(secrets, redact=(*secrets.redact, *redact))

    try:
        cache = _cache_entry(gathered, step, namespace, str(engram_ref.get("name") or ""), inputs, retries)
    except Unhydrated as exc:
        return LaunchNeeds(blobs=exc.keys)
    except TemplateError as exc:
        return fail("ExpressionFailed", f"the cache key cannot be evaluated: {exc}", events=events)
    timeout = step_timeout(step_run, story, config, step=step, engram=engram, template=template)
    debug = debug_enabled(engram, step, step_run)
    env = build_env(
        story=gathered.story_name,
        story_version=story.spec.version if story is not None else None,
        story_run=story_run_of(step_run),
        step=step_id,
        step_run=name,
        idempotency_key=str(spec.get("idempotencyKey") or ""),
        namespace=namespace,
        engram=str(engram_ref.get("name") or ""),
        engram_version=(template_spec.get("version") or None),
        started_at=now,
        timeout=timeout,
        debug=debug,
        max_inline_size=inline_limit(config, step=step, engram=engram),
        extra=storage_env(config.storage),
    )
    request = ExecutionRequest(
        key=f"{namespace}/{name}#{retries}",
        entrypoint=str(entrypoint) if entrypoint else None,
        command=[str(a) for a in command] if command else None,
        inputs=inputs,
        config=inputs,
        env=env,
        timeout=timeout,
        log_path=gathered.log_path,
        workdir=gathered.workdir,
        debug=debug,
        secrets=secrets,
    )
    return LaunchAttempt(
        request=request,
        step=step,
        template=template,
        attempt=retries + 1,
        status=status,
        holder=gathered.holder,
        now=now,
        events=events,
        offload_inputs=offload_inputs,
        cache=cache,
    )
