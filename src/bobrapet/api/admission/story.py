"""Story defaulting and validation (reference §1.15 "Story", §2.1, §2.5, §3.5).

Invariants:

* Every problem is reported (no fail-fast) except an oversized story.
* A step's dependencies are ``needs`` plus the steps its ``if``, ``with`` (except a wait
  step's ``until``) and ``idempotencyKeyTemplate`` reference (mined from the Jinja AST).
  Referencing an unknown step, a step of a later block, or creating a cycle is an error
  (deliberate difference: the Go operator only warns).
* The graph is ``api/graph.py``'s :class:`StepGraph`, the one the engine compiles: the same
  templates are mined (``step_templates``), names resolve the same way, and cycles are found
  per block with Kahn's algorithm; the message lists one cycle per block in order.
* Transitive upstream sets are computed once with integer bitsets, so admission of a
  1000-step story is linear in the number of edges.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bobrapet.api.admission.context import (
    Context,
    as_dict,
    as_list,
    check_dns_label,
    check_duration,
    deep_merge,
    json_size,
)
from bobrapet.api.admission.references import check_cross_namespace
from bobrapet.api.expressions import (
    BATCH_RUNTIME,
    REALTIME_RUNTIME,
    REALTIME_STATIC,
    STORY_OUTPUT,
    Analysis,
    Scope,
    check_scope,
    iter_templates,
)
from bobrapet.api.graph import (
    BLOCKS,
    IDEMPOTENCY_KEY,
    IF,
    RUNTIME,
    UNTIL,
    WITH,
    StepGraph,
    allowed_blocks,
    resolve_name,
    step_templates,
)
from bobrapet.api.jsonschema_util import compile_schema, validate_templated
from bobrapet.api.kinds import ENGRAM, ENGRAM_TEMPLATE, SECRET, STORY
from bobrapet.api.phases import STOP_PHASES
from bobrapet.api.types.enums import BACKOFF_STRATEGIES

STEP_TYPES = ("condition", "parallel", "sleep", "stop", "wait", "executeStory", "gate")
MIN_POLL = timedelta(milliseconds=10)


# ------------------------------------------------------------------------------ defaults


def fill_retry(policy: dict[str, Any], ctx: Context) -> None:
    policy.setdefault("maxRetries", ctx.config.default_max_retries)
    policy.setdefault("delay", ctx.config.default_retry_delay)
    policy.setdefault("backoff", ctx.config.default_backoff)


def default_story(ctx: Context) -> None:
    """Fill the missing fields of the retry policies the user wrote; never invent a policy.

    Deliberate difference (DESIGN, retry contract): the Go defaulter creates
    ``policy.retries.stepRetryPolicy`` whenever ``spec.policy`` exists, an ``execution.retry``
    for every step with an ``execution`` block and ``{maxRetries: 0}`` for ``sideEffects``
    steps. A written retry policy makes any engram failure retryable, so inventing one would
    retry failures the user never asked to retry; the engine's resolver applies the defaults
    (and the no-retry rule of ``sideEffects``) instead (``engine/retry.py``).
    """
    spec = ctx.obj.get("spec")
    if not isinstance(spec, dict):
        return
    policy = spec.get("policy")
    if isinstance(policy, dict):
        retries = policy.get("retries")
        if isinstance(retries, dict):
            srp = retries.get("stepRetryPolicy")
            if isinstance(srp, dict):
                fill_retry(srp, ctx)
            retries.setdefault("continueOnStepFailure", False)
    for block in BLOCKS:
        for step in as_list(spec.get(block)):
            if not isinstance(step, dict):
                continue
            execution = step.get("execution")
            retry = execution.get("retry") if isinstance(execution, dict) else None
            if isinstance(retry, dict):
                fill_retry(retry, ctx)


# ------------------------------------------------------------------------------ model


@dataclass
class _Step:
    index: int
    block: str
    path: str
    raw: dict[str, Any]
    name: str
    needs: list[str] = field(default_factory=list)
    deps: dict[str, str] = field(default_factory=dict)  # dep name -> path of the reference


@dataclass
class _Graph:
    """The steps being validated (with field paths) and, once every dependency is known,
    their :class:`StepGraph` (``shape``), the graph the engine compiles too."""

    steps: list[_Step]
    by_name: dict[str, _Step]
    branch_owner: dict[str, str] = field(default_factory=dict)  # parallel branch -> its step
    shape: StepGraph | None = None
    _addressable: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    hints_left: int = 5  # "did you mean" suggestions still allowed in this request

    def freeze(self) -> StepGraph:
        """The shared graph of the collected steps and dependencies (built once)."""
        if self.shape is None:
            self.shape = StepGraph(
                {s.name: s.block for s in self.steps},
                {s.name: tuple(s.deps) for s in self.steps},
                self.branch_owner,
            )
        return self.shape

    def is_upstream(self, step: str, other: str) -> bool:
        return self.freeze().is_upstream(step, other)

    def resolve(self, name: str) -> _Step | None:
        """The step a template name denotes: a step, or the parallel step owning a branch."""
        target = resolve_name(name, self.by_name, self.branch_owner)
        return self.by_name.get(target) if target is not None else None

    def addressable(self, blocks: tuple[str, ...]) -> list[str]:
        """Step and branch names of ``blocks`` (memoized: called once per unknown reference)."""
        if blocks not in self._addressable:
            names = [s.name for s in self.steps if s.block in blocks]
            names += [b for b, owner in self.branch_owner.items() if self.by_name[owner].block in blocks]
            self._addressable[blocks] = names
        return self._addressable[blocks]


# ------------------------------------------------------------------------------ validate


async def validate_story(ctx: Context) -> None:
    if ctx.status_only:
        return
    if ctx.is_update and (ctx.old_spec == ctx.spec or ctx.metadata.get("deletionTimestamp")):
        return
    size = json_size(ctx.obj)
    if ctx.config.max_story_size and size > ctx.config.max_story_size:
        ctx.error(
            "",
            f"story size of {size} bytes exceeds maximum allowed size of {ctx.config.max_story_size} "
            "bytes; move large values to ConfigMaps/Secrets or storage references",
        )
        return
    spec = ctx.spec
    realtime = spec.get("pattern") == "realtime"
    _check_block_sizes(ctx, spec)
    graph = _collect_steps(ctx, spec)
    for step in graph.steps:
        _check_step_shape(ctx, step, realtime)
    _check_needs(ctx, graph)
    _check_templates(ctx, graph, spec, realtime)
    _check_cycles(ctx, graph)
    for step in graph.steps:
        _check_requires(ctx, graph, step)
    _check_schemas(ctx, spec)
    _check_policy(ctx, spec)
    _check_transports(ctx, graph, spec)
    for step in graph.steps:
        await _check_step_refs(ctx, step, realtime)


def _check_block_sizes(ctx: Context, spec: dict[str, Any]) -> None:
    limit = ctx.config.max_with_block_size
    if not limit:
        return

    def check(path: str, label: str, value: Any) -> None:
        if value is None:
            return
        n = json_size(value)
        if n > limit:
            ctx.error(
                path,
                f"{label} block size of {n} bytes exceeds maximum allowed size of {limit} bytes; "
                "pass large data through storage references or ConfigMaps instead of inlining it",
            )

    check("spec.output", "output", spec.get("output"))
    check("spec.policy.with", "policy.with", as_dict(spec.get("policy")).get("with"))
    for block in BLOCKS:
        for i, step in enumerate(as_list(spec.get(block))):
            if isinstance(step, dict):
                check(f"spec.{block}[{i}].with", "with", step.get("with"))


def _collect_steps(ctx: Context, spec: dict[str, Any]) -> _Graph:
    steps: list[_Step] = []
    by_name: dict[str, _Step] = {}
    limits = {
        "steps": ctx.config.max_steps,
        "compensations": ctx.config.max_compensations,
        "finally": ctx.config.max_finally,
    }
    raw_steps = spec.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        ctx.required("spec.steps", "at least one step is required")
    for block in BLOCKS:
        items = spec.get(block)
        if items is None:
            continue
        if not isinstance(items, list):
            ctx.error(f"spec.{block}", "must be a list of steps")
            continue
        if len(items) > limits[block]:
            ctx.error(
                f"spec.{block}",
                f"{block} has {len(items)} entries; at most {limits[block]} are allowed "
                "(split the story and use executeStory)",
            )
        for i, raw in enumerate(items):
            path = f"spec.{block}[{i}]"
            if not isinstance(raw, dict):
                ctx.error(path, "each step must be an object with at least a name")
                continue
            name = raw.get("name")
            if not check_dns_label(ctx, f"{path}.name", name, "step name"):
                continue
            assert isinstance(name, str)
            if name in by_name:
                ctx.error(
                    f"{path}.name",
                    f"duplicate step name '{name}' (already used by {by_name[name].path}); "
                    "step names must be unique across steps, compensations and finally",
                    "FieldValueDuplicate",
                )
                continue
            step = _Step(i, block, path, raw, name)
            steps.append(step)
            by_name[name] = step
    graph = _Graph(steps, by_name)
    _collect_branches(ctx, graph)
    return graph


def _collect_branches(ctx: Context, graph: _Graph) -> None:
    """Parallel branch names are addressable as ``steps.<branch>`` (reference §2.6), so they
    share the step namespace; a reference to a branch is a dependency on its parallel step."""
    first_use: dict[str, str] = {}
    for step in graph.steps:
        if step.raw.get("type") != "parallel":
            continue
        for i, branch in enumerate(as_list(as_dict(step.raw.get("with")).get("steps"))):
            bname = as_dict(branch).get("name")
            if not isinstance(bname, str) or not bname:
                continue
            bpath = f"{step.path}.with.steps[{i}].name"
            clash = graph.by_name.get(bname)
            other = first_use.get(bname)
            if clash is not None or (other is not None and graph.branch_owner[bname] != step.name):
                used_by = clash.path if clash is not None else other
                ctx.error(
                    bpath,
                    f"parallel branch name '{bname}' is already used by {used_by}; branch outputs are "
                    f"addressed as steps.{bname}, so branch names must be unique across all steps "
                    "and branches (rename one of them)",
                    "FieldValueDuplicate",
                )
                continue
            if other is None:
                first_use[bname] = bpath
                graph.branch_owner[bname] = step.name


def _check_step_shape(ctx: Context, step: _Step, realtime: bool) -> None:
    raw, path, name = step.raw, step.path, step.name
    has_ref = raw.get("ref") is not None
    stype = raw.get("type")
    if has_ref and stype:
        ctx.error(
            path,
            f"step '{name}' must not set both ref and type; keep "
            "ref for an engram step or type for a primitive",
        )
    elif not has_ref and not stype:
        ctx.required(
            path, f"step '{name}' must set either ref (an Engram) or type (one of {', '.join(STEP_TYPES)})"
        )
    if stype and stype not in STEP_TYPES:
        close = difflib.get_close_matches(str(stype), STEP_TYPES, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        ctx.error(f"{path}.type", f"unknown step type '{stype}' (valid: {', '.join(STEP_TYPES)}){hint}")
    for key in ("with", "runtime"):
        if key in raw and raw[key] is not None and not isinstance(raw[key], dict):
            ctx.error(f"{path}.{key}", f"{key} must be a JSON object")
    if stype in ("gate", "wait") and realtime:
        ctx.error(
            f"{path}.type",
            f"step '{name}' of type '{stype}' is only supported for batch stories "
            "(remove it or set spec.pattern: batch)",
        )
    w = as_dict(raw.get("with"))
    if stype == "wait":
        until = w.get("until")
        if until is not None and not isinstance(until, str):
            ctx.error(
                f"{path}.with.until",
                f"step '{name}' with.until must be a condition expression string such as "
                f'"inputs.ready == true", got {json.dumps(until, default=str)}',
            )
        elif not isinstance(until, str) or not until.strip():
            ctx.required(
                f"{path}.with.until", f"step '{name}' of type 'wait' requires 'with.until' to be set"
            )
        _check_wait_like(ctx, path, w)
    elif stype == "gate":
        _check_wait_like(ctx, path, w)
    elif stype == "sleep":
        if w.get("duration") not in (None, ""):
            check_duration(ctx, f"{path}.with.duration", w.get("duration"), positive=False)
    elif stype == "stop":
        phase = w.get("phase")
        if phase is not None and phase not in STOP_PHASES:
            ctx.error(
                f"{path}.with.phase", f"stop phase must be one of {', '.join(STOP_PHASES)}, got '{phase}'"
            )
        if "message" in w and not isinstance(w["message"], str):
            ctx.error(f"{path}.with.message", "message must be a string")
    elif stype == "executeStory":
        _check_execute_story_shape(ctx, step, w)
    elif stype == "parallel":
        _check_parallel(ctx, step, w)
    if has_ref and not as_dict(raw.get("ref")).get("name"):
        ctx.required(f"{path}.ref.name", f"step '{name}' ref.name (the Engram) is required")
    execution = as_dict(raw.get("execution"))
    check_duration(ctx, f"{path}.execution.timeout", execution.get("timeout"))
    _check_retry(ctx, f"{path}.execution.retry", execution.get("retry"))
    ikt = raw.get("idempotencyKeyTemplate")
    if isinstance(ikt, str) and len(ikt) > 512:
        ctx.error(f"{path}.idempotencyKeyTemplate", f"must be at most 512 characters, got {len(ikt)}")
    post = raw.get("postExecution")
    if post is not None and not (isinstance(post, dict) and isinstance(post.get("condition"), str)):
        ctx.required(f"{path}.postExecution.condition", "postExecution requires a condition template")


def _check_wait_like(ctx: Context, path: str, w: dict[str, Any]) -> None:
    check_duration(ctx, f"{path}.with.timeout", w.get("timeout"))
    check_duration(ctx, f"{path}.with.pollInterval", w.get("pollInterval"), minimum=MIN_POLL)
    on_timeout = w.get("onTimeout")
    if on_timeout is not None and (
        not isinstance(on_timeout, str) or on_timeout.lower() not in ("fail", "skip")
    ):
        ctx.error(f"{path}.with.onTimeout", f"onTimeout must be 'fail' or 'skip', got '{on_timeout}'")


def _check_retry(ctx: Context, path: str, retry: Any) -> None:
    if not isinstance(retry, dict):
        return
    check_duration(ctx, f"{path}.delay", retry.get("delay"), positive=False)
    check_duration(ctx, f"{path}.maxDelay", retry.get("maxDelay"), positive=False)
    backoff = retry.get("backoff")
    if backoff is not None and backoff not in BACKOFF_STRATEGIES:
        ctx.error(f"{path}.backoff", f"backoff must be exponential, linear or constant, got '{backoff}'")
    mr = retry.get("maxRetries")
    if mr is not None and (not isinstance(mr, int) or isinstance(mr, bool) or not 0 <= mr <= 10):
        ctx.error(f"{path}.maxRetries", f"maxRetries must be an integer between 0 and 10, got {mr!r}")


def _check_execute_story_shape(ctx: Context, step: _Step, w: dict[str, Any]) -> None:
    path, name = step.path, step.name
    if step.raw.get("with") is None:
        ctx.required(f"{path}.with", f"step '{name}' of type 'executeStory' requires 'with.storyRef'")
        return
    ref = as_dict(w.get("storyRef"))
    target = ref.get("name")
    if not isinstance(target, str) or not target:
        ctx.required(
            f"{path}.with.storyRef.name",
            f"step '{name}' of type 'executeStory' requires 'with.storyRef.name'",
        )
        return
    target_ns = ref.get("namespace") or ctx.namespace
    if target == ctx.name and target_ns == ctx.namespace:
        ctx.error(f"{path}.with.storyRef", f"step '{name}' cannot reference the same story")
    if "with" in w and w["with"] is not None and not isinstance(w["with"], dict):
        ctx.error(f"{path}.with.with", "with.with (the child story inputs) must be a JSON object")
    wfc = w.get("waitForCompletion")
    if wfc is not None and not isinstance(wfc, bool):
        ctx.error(f"{path}.with.waitForCompletion", "waitForCompletion must be true or false")


# Branch fields the engine would otherwise ignore silently.
_BRANCH_UNSUPPORTED = ("needs", "if")


def _check_parallel(ctx: Context, step: _Step, w: dict[str, Any]) -> None:
    path, name = step.path, step.name
    branches = w.get("steps")
    if not isinstance(branches, list) or not branches:
        ctx.required(
            f"{path}.with.steps", f"step '{name}' of type 'parallel' requires a non-empty 'with.steps' list"
        )
        return
    seen: set[str] = set()
    for i, branch in enumerate(branches):
        bpath = f"{path}.with.steps[{i}]"
        if not isinstance(branch, dict):
            ctx.error(bpath, "each parallel branch must be a step object with name and ref")
            continue
        bname = branch.get("name")
        if check_dns_label(ctx, f"{bpath}.name", bname, "branch name"):
            assert isinstance(bname, str)
            if bname in seen:
                ctx.error(f"{bpath}.name", f"duplicate parallel branch name '{bname}'", "FieldValueDuplicate")
            seen.add(bname)
        if branch.get("type") is not None or not as_dict(branch.get("ref")).get("name"):
            ctx.error(bpath, "parallel branches must be engram steps: set ref.name (type is not supported)")
        if branch.get("with") is not None and not isinstance(branch.get("with"), dict):
            ctx.error(f"{bpath}.with", "with must be a JSON object")
        for key in _BRANCH_UNSUPPORTED:
            if branch.get(key) is not None:
                ctx.error(
                    f"{bpath}.{key}",
                    f"'{key}' is not supported in a parallel branch (branches start together when "
                    f"'{name}' starts); make it a separate step, or put '{key}' on '{name}'",
                )


def _check_needs(ctx: Context, graph: _Graph) -> None:
    for step in graph.steps:
        needs = step.raw.get("needs")
        if needs is None:
            continue
        if not isinstance(needs, list):
            ctx.error(f"{step.path}.needs", "needs must be a list of step names")
            continue
        allowed = allowed_blocks(step.block)
        for j, dep in enumerate(needs):
            where = f"{step.path}.needs[{j}]"
            if not isinstance(dep, str):
                ctx.error(where, "needs entries must be step names")
                continue
            if dep == step.name:
                ctx.error(where, f"step '{step.name}' cannot depend on itself in needs")
                continue
            target = graph.by_name.get(dep)
            if target is None or target.block not in allowed:
                ctx.error(where, _unknown_dep_message(step, dep, graph, "needs"))
                continue
            step.needs.append(dep)
            step.deps.setdefault(dep, where)


def _name_hint(name: str, names: list[str], graph: _Graph) -> str:
    aliased = [n for n in names if n.replace("-", "_") == name] if "_" in name else []
    if aliased:
        return f"; step names containing '-' must be written steps['{aliased[0]}']"
    # fuzzy matching costs O(len(names)) per call: only the first few unknown names get a
    # suggestion, so a story with a thousand typos is still admitted (rejected) quickly
    if graph.hints_left <= 0:
        return ""
    graph.hints_left -= 1
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _unknown_dep_message(step: _Step, dep: str, graph: _Graph, where: str) -> str:
    target = graph.by_name.get(dep) if where == "needs" else graph.resolve(dep)
    if target is not None:
        allowed = " and ".join(allowed_blocks(step.block))
        return (
            f"step '{step.name}' lists step '{dep}' of {target.block} in {where}, but a step in "
            f"{step.block} may only depend on steps in {allowed}"
        )
    names = graph.addressable(allowed_blocks(step.block))
    owner = graph.branch_owner.get(dep)
    if where == "needs" and owner is not None:
        return (
            f"step '{step.name}' lists '{dep}' in needs, but '{dep}' is a parallel branch of step "
            f"'{owner}'; list '{owner}' in needs instead"
        )
    hint = _name_hint(dep, names, graph)
    if where == "needs":
        return f"step '{step.name}' lists unknown dependency '{dep}' in needs{hint}"
    return f"step '{step.name}' references unknown step '{dep}' in {where}{hint}"


# ------------------------------------------------------------------------------ templates


def _report(ctx: Context, path: str, analysis: Analysis, scope: Scope) -> None:
    for err in analysis.errors:
        where = f" (line {err.line}, column {err.column})" if err.line > 1 or err.column > 1 else ""
        ctx.error(path, f"{err.message}{where}")
    if analysis.errors:
        return
    for err in check_scope(analysis, scope):
        ctx.error(path, err.message)


def _template_size_ok(ctx: Context, path: str, value: Any) -> bool:
    limit = ctx.config.max_template_json
    if limit and value is not None and not isinstance(value, str) and json_size(value) > limit:
        ctx.error(path, f"template JSON exceeds max validation size of {limit} bytes")
        return False
    return True


def _check_templates(ctx: Context, graph: _Graph, spec: dict[str, Any], realtime: bool) -> None:
    cond_scope = REALTIME_RUNTIME if realtime else BATCH_RUNTIME
    with_scope = REALTIME_STATIC if realtime else BATCH_RUNTIME
    scopes = {
        IF: cond_scope,
        UNTIL: BATCH_RUNTIME,
        WITH: with_scope,
        RUNTIME: REALTIME_RUNTIME,
        IDEMPOTENCY_KEY: BATCH_RUNTIME,
    }

    def fits(path: str, value: Any) -> bool:
        return _template_size_ok(ctx, path, value)

    for step in graph.steps:
        raw = step.raw
        for field_ in step_templates(raw, step.path, fits=fits):
            a = field_.analysis
            # a whole field (if, until, key) is a template only with ``{{``; with/runtime
            # yield templates only
            if field_.where in (WITH, RUNTIME) or a.is_template:
                _report(ctx, field_.path, a, scopes[field_.where])
            _mine(ctx, graph, step, field_.path, field_.where, a, dependency=field_.dependency)
        post = as_dict(raw.get("postExecution"))
        if isinstance(post.get("condition"), str):
            ppath = f"{step.path}.postExecution.condition"
            a = _analyze_field(ctx, ppath, post["condition"], BATCH_RUNTIME, condition=True)
            for ref in a.step_refs:
                if ref.name != "self":
                    ctx.error(
                        ppath,
                        f"postExecution.condition can only reference this step's output as "
                        f"steps.self.output, not steps.{ref.name}",
                    )
    policy_with = as_dict(spec.get("policy")).get("with")
    if isinstance(policy_with, dict) and _template_size_ok(ctx, "spec.policy.with", policy_with):
        for tpath, a in iter_templates(policy_with, "spec.policy.with"):
            _report(ctx, tpath, a, BATCH_RUNTIME)
            _check_known_refs(ctx, graph, tpath, a)
    output = spec.get("output")
    if output is not None and _template_size_ok(ctx, "spec.output", output):
        for tpath, a in iter_templates(output, "spec.output"):
            _report(ctx, tpath, a, STORY_OUTPUT)
            _check_known_refs(ctx, graph, tpath, a)
    for i, transport in enumerate(as_list(spec.get("transports"))):
        rules = as_list(as_dict(as_dict(as_dict(transport).get("streaming")).get("routing")).get("rules"))
        for j, rule in enumerate(rules):
            when = as_dict(rule).get("when")
            if isinstance(when, str):
                wpath = f"spec.transports[{i}].streaming.routing.rules[{j}].when"
                a = _analyze_field(ctx, wpath, when, REALTIME_RUNTIME, condition=True)
                _check_known_refs(ctx, graph, wpath, a)


def _analyze_field(ctx: Context, path: str, text: str, scope: Scope, *, condition: bool) -> Analysis:
    from bobrapet.api.expressions import analyze

    a = analyze(text, condition=condition)
    if a.is_template:
        _report(ctx, path, a, scope)
    return a


def _check_known_refs(ctx: Context, graph: _Graph, path: str, a: Analysis) -> None:
    for ref in a.step_refs:
        if graph.resolve(ref.name) is None:
            hint = _name_hint(ref.name, graph.addressable(BLOCKS), graph)
            ctx.error(path, f"template references unknown step '{ref.name}'{hint}")


def _mine(
    ctx: Context, graph: _Graph, step: _Step, path: str, where: str, a: Analysis, *, dependency: bool
) -> None:
    """Record template step references of ``step``; unknown / later-block / self refs are errors."""
    for ref in a.step_refs:
        target = graph.resolve(ref.name)
        if target is None or target.block not in allowed_blocks(step.block):
            ctx.error(path, _unknown_dep_message(step, ref.name, graph, where))
            continue
        if target.name == step.name and ref.name != step.name:
            ctx.error(
                path,
                f"step '{step.name}' references its own parallel branch '{ref.name}' in {where}; "
                "branches run concurrently, so use that output in a later step that needs "
                f"'{step.name}'",
            )
            continue
        if target.name == step.name:
            ctx.error(
                path,
                f"step '{step.name}' references its own output in {where}; a step can only use "
                "the outputs of steps that run before it",
            )
            continue
        if dependency:
            step.deps.setdefault(target.name, path)


# ------------------------------------------------------------------------------ graph


def _check_cycles(ctx: Context, graph: _Graph) -> None:
    for block, cycle in graph.freeze().cycles.items():
        first = graph.by_name[cycle[0]]
        ctx.error(
            first.deps.get(cycle[1] if len(cycle) > 1 else cycle[0], f"{first.path}.needs"),
            f"{block} contains a dependency cycle: {_cycle_text(list(cycle))} (each step depends on the "
            "next, through needs or a template reference); remove one of these dependencies",
        )


def _cycle_text(cycle: list[str], shown: int = 8) -> str:
    """``a -> b -> a``; a long cycle shows its first and last steps and its length."""
    if len(cycle) <= 2 * shown:
        return " -> ".join([*cycle, cycle[0]])
    head = " -> ".join(cycle[:shown])
    tail = " -> ".join([*cycle[-shown:], cycle[0]])
    return f"{head} -> ... ({len(cycle) - 2 * shown} more) -> {tail} ({len(cycle)} steps)"


def _check_requires(ctx: Context, graph: _Graph, step: _Step) -> None:
    requires = step.raw.get("requires")
    if requires is None:
        return
    if not isinstance(requires, list):
        ctx.error(
            f"{step.path}.requires", "requires must be a list of paths like 'steps.<name>.output.<field>'"
        )
        return
    for j, req in enumerate(requires):
        where = f"{step.path}.requires[{j}]"
        if not isinstance(req, str) or not req.startswith("steps."):
            ctx.error(where, f"requires path must start with 'steps.', got '{req}'")
            continue
        parts = req.split(".")
        if len(parts) < 3 or any(p == "" for p in parts):
            ctx.error(
                where, f"requires path '{req}' must look like 'steps.<name>.<field>' (at least 3 segments)"
            )
            continue
        target = parts[1]
        resolved = graph.resolve(target)
        if resolved is None:
            hint = _name_hint(target, graph.addressable(BLOCKS), graph)
            ctx.error(where, f"requires path '{req}' references unknown step '{target}'{hint}")
            continue
        if not graph.is_upstream(step.name, resolved.name):
            ctx.error(
                where,
                f"requires path '{req}' references step '{target}' which is not upstream of "
                f"'{step.name}' (add it to needs or needs chain)",
            )


# ------------------------------------------------------------------------------ rest


def _check_schemas(ctx: Context, spec: dict[str, Any]) -> None:
    for key in ("inputsSchema", "outputsSchema"):
        if spec.get(key) is None:
            continue
        for err in compile_schema(spec[key]):
            ctx.error(f"spec.{key}", f"invalid JSON Schema: {err}")


def _check_policy(ctx: Context, spec: dict[str, Any]) -> None:
    policy = as_dict(spec.get("policy"))
    timeouts = as_dict(policy.get("timeouts"))
    for key in ("story", "step", "gracefulShutdownTimeout"):
        check_duration(ctx, f"spec.policy.timeouts.{key}", timeouts.get(key))
    _check_retry(
        ctx, "spec.policy.retries.stepRetryPolicy", as_dict(policy.get("retries")).get("stepRetryPolicy")
    )
    pw = policy.get("with")
    if pw is not None and not isinstance(pw, dict):
        ctx.error("spec.policy.with", "policy.with must be a JSON object")
    for key in ("concurrency", "priority"):
        v = policy.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            ctx.error(f"spec.policy.{key}", f"{key} must be a non-negative integer, got {v!r}")
    if policy.get("queue") is not None:
        check_dns_label(ctx, "spec.policy.queue", policy.get("queue"), "queue name")


def _check_transports(ctx: Context, graph: _Graph, spec: dict[str, Any]) -> None:
    declared: dict[str, int] = {}
    transports = spec.get("transports")
    for i, t in enumerate(as_list(transports)):
        t = as_dict(t)
        tpath = f"spec.transports[{i}]"
        tname = t.get("name")
        if check_dns_label(ctx, f"{tpath}.name", tname, "transport name"):
            assert isinstance(tname, str)
            if tname in declared:
                ctx.error(f"{tpath}.name", f"duplicate transport name '{tname}'", "FieldValueDuplicate")
            declared[tname] = i
        if not t.get("transportRef"):
            ctx.required(f"{tpath}.transportRef", "transportRef (the Transport name) is required")
        rules = as_list(as_dict(as_dict(t.get("streaming")).get("routing")).get("rules"))
        for j, rule in enumerate(rules):
            rule = as_dict(rule)
            action = rule.get("action")
            if action is not None and action not in ("allow", "deny"):
                ctx.error(f"{tpath}.streaming.routing.rules[{j}].action", "action must be 'allow' or 'deny'")
            targets = as_list(as_dict(rule.get("target")).get("steps"))
            seen: set[str] = set()
            for k, target in enumerate(targets):
                where = f"{tpath}.streaming.routing.rules[{j}].target.steps[{k}]"
                if target not in graph.by_name:
                    ctx.error(where, f"routing rule targets unknown step '{target}'")
                elif target in seen:
                    ctx.error(
                        where, f"routing rule lists step '{target}' more than once", "FieldValueDuplicate"
                    )
                seen.add(str(target))
    for step in graph.steps:
        ref = step.raw.get("transport")
        if ref is None:
            continue
        where = f"{step.path}.transport"
        if not declared:
            ctx.error(
                where,
                f"step '{step.name}' references transport '{ref}' but the "
                "story does not declare any transports (add spec.transports)",
            )
        elif ref not in declared:
            ctx.error(
                where,
                f"step '{step.name}' references unknown transport "
                f"'{ref}' (declared: {', '.join(sorted(declared))})",
            )


async def _check_step_refs(ctx: Context, step: _Step, realtime: bool) -> None:
    raw, path, name = step.raw, step.path, step.name
    stype = raw.get("type")
    if stype == "executeStory":
        ref = as_dict(as_dict(raw.get("with")).get("storyRef"))
        target = ref.get("name")
        if isinstance(target, str) and target:
            ns = ref.get("namespace") or ctx.namespace
            if await check_cross_namespace(ctx, f"{path}.with.storyRef", STORY, STORY, ns, target):
                story = await ctx.get(STORY, target, ns)
                if story is None:
                    ctx.warn(
                        f"{path}.with.storyRef",
                        f"Story '{ns}/{target}' not found; the step will fail unless it is created",
                    )
                elif ref.get("version") and as_dict(story.get("spec")).get("version") != ref.get("version"):
                    ctx.warn(
                        f"{path}.with.storyRef.version",
                        f"Story '{ns}/{target}' has version "
                        f"'{as_dict(story.get('spec')).get('version')}', expected '{ref.get('version')}'",
                    )
    branches = (
        [
            (f"{path}.with.steps[{i}]", as_dict(b))
            for i, b in enumerate(as_list(as_dict(raw.get("with")).get("steps")))
        ]
        if stype == "parallel"
        else []
    )
    if raw.get("ref") is not None and isinstance(raw.get("ref"), dict):
        branches.append((path, raw))
    for bpath, branch in branches:
        await _check_engram_step(ctx, bpath, branch, realtime)
    if raw.get("runtime") is not None and not realtime and raw.get("ref") is None:
        ctx.error(f"{path}.runtime", f"step '{name}' sets runtime, which is only used by engram steps")


async def _check_engram_step(ctx: Context, path: str, raw: dict[str, Any], realtime: bool) -> None:
    ref = as_dict(raw.get("ref"))
    ename = ref.get("name")
    if not isinstance(ename, str) or not ename:
        return
    ns = ref.get("namespace") or ctx.namespace
    if not await check_cross_namespace(ctx, f"{path}.ref", STORY, ENGRAM, ns, ename):
        return
    engram = await ctx.get(ENGRAM, ename, ns)
    runtime = raw.get("runtime")
    if engram is None:
        ctx.warn(
            f"{path}.ref", f"Engram '{ns}/{ename}' not found; steps using it will fail until it is created"
        )
        if runtime is not None and not realtime and not raw.get("transport"):
            ctx.warn(
                f"{path}.runtime",
                "runtime is only used by deployment/statefulset engrams; could not check (Engram not found)",
            )
        return
    espec = as_dict(engram.get("spec"))
    if ref.get("version") and espec.get("version") != ref.get("version"):
        ctx.warn(
            f"{path}.ref.version",
            f"Engram '{ns}/{ename}' has version '{espec.get('version')}', expected '{ref.get('version')}'",
        )
    mode = espec.get("mode") or "job"
    if realtime and mode not in ("deployment", "statefulset"):
        ctx.warn(
            f"{path}.ref",
            f"Engram '{ns}/{ename}' has mode '{mode}'; realtime "
            "stories need deployment or statefulset engrams",
        )
    if (
        runtime is not None
        and not realtime
        and not raw.get("transport")
        and mode not in ("deployment", "statefulset")
    ):
        ctx.error(
            f"{path}.runtime",
            "runtime is only allowed in batch stories for steps with "
            "a transport or engrams in deployment/statefulset mode",
        )
    tname = as_dict(espec.get("templateRef")).get("name")
    if not isinstance(tname, str) or not tname:
        return
    template = await ctx.get(ENGRAM_TEMPLATE, tname, None)
    if template is None:
        ctx.error(
            f"{path}.ref",
            f"EngramTemplate '{tname}' (used by Engram '{ns}/{ename}') not found; install the template first",
        )
        return
    await _check_step_secrets(ctx, path, raw, template)
    schema = as_dict(template.get("spec")).get("inputSchema")
    if not schema:
        return
    merged = deep_merge(
        raw.get("with") if isinstance(raw.get("with"), dict) else {},
        runtime if isinstance(runtime, dict) else {},
    )
    if raw.get("type") is None and isinstance(merged, dict):
        for epath, msg in validate_templated(merged, schema):
            sep = "" if not epath or epath.startswith("[") else "."
            ctx.error(
                f"{path}.with{sep}{epath}",
                f"does not match the input schema of EngramTemplate '{tname}': {msg}",
            )


async def _check_step_secrets(ctx: Context, path: str, raw: dict[str, Any], template: dict[str, Any]) -> None:
    """Step ``secrets`` as Engram ``secrets`` (§1.15): every logical name is declared by the
    template's ``secretSchema``; a Secret that does not exist (yet) is only a warning."""
    secrets = raw.get("secrets")
    if secrets is None:
        return
    if not isinstance(secrets, dict):
        ctx.error(f"{path}.secrets", "secrets must map logical names to Secret names")
        return
    schema = as_dict(as_dict(template.get("spec")).get("secretSchema"))
    tname = as_dict(template.get("metadata")).get("name")
    for logical, secret_name in secrets.items():
        field = f"{path}.secrets.{logical}"
        if logical not in schema:
            known = ", ".join(sorted(schema)) or "none"
            ctx.error(
                field,
                f"secret '{logical}' is not declared by EngramTemplate '{tname}' (declared: {known})",
            )
        elif not isinstance(secret_name, str) or not secret_name:
            ctx.error(field, "must be the name of a Secret")
        elif await ctx.get(SECRET, secret_name, ctx.namespace) is None:
            ctx.warn(field, f"Secret '{ctx.namespace}/{secret_name}' does not exist yet")
