"""Impulse validation (reference §1.15 "Impulse").

Invariants: template must exist and match; the Story reference follows the cross-namespace
policy (a missing Story or version mismatch is a warning); workload mode is in the
template's modes and never ``job``; ``with``/``mapping`` are JSON objects within the inline
limit; every ``mapping`` expression parses, is deterministic (no ``now()``, no randomness: a
redelivered event must map to the same inputs) and uses only the variables of the template's
``contextSchema`` (when it declares properties) — :func:`mapping_problems`; delivery policy
and throttle rules hold; unchanged specs are not re-validated.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from bobrapet.api.admission.context import Context, as_dict, json_size
from bobrapet.api.admission.engram import check_config, check_mode, check_secrets, load_template
from bobrapet.api.admission.references import check_cross_namespace
from bobrapet.api.admission.templates import check_delivery_policy
from bobrapet.api.expressions import DENIED_FUNCTIONS, iter_templates
from bobrapet.api.kinds import IMPULSE, STORY


async def validate_impulse(ctx: Context) -> None:
    if ctx.status_only or (ctx.is_update and ctx.spec == ctx.old_spec):
        return
    spec = ctx.spec
    template = await load_template(ctx, impulse=True)
    ref = as_dict(spec.get("storyRef"))
    story = ref.get("name")
    if not isinstance(story, str) or not story:
        ctx.required("spec.storyRef.name", "storyRef.name (the Story to trigger) is required")
    else:
        ns = ref.get("namespace") or ctx.namespace
        if await check_cross_namespace(ctx, "spec.storyRef", IMPULSE, STORY, ns, story):
            found = await ctx.get(STORY, story, ns)
            if found is None:
                ctx.warn(
                    "spec.storyRef",
                    f"Story '{ns}/{story}' not found; triggers will be rejected until it exists",
                )
            elif ref.get("version") and as_dict(found.get("spec")).get("version") != ref.get("version"):
                ctx.warn(
                    "spec.storyRef.version",
                    f"Story '{ns}/{story}' has version "
                    f"'{as_dict(found.get('spec')).get('version')}', expected '{ref.get('version')}'",
                )
    workload = as_dict(spec.get("workload"))
    check_mode(ctx, template, workload.get("mode"), "spec.workload.mode", allow_job=False)
    check_config(ctx, template)
    mapping = spec.get("mapping")
    if mapping is not None:
        if not isinstance(mapping, dict):
            ctx.error("spec.mapping", "mapping must be a JSON object")
        elif ctx.config.engram_max_inline_size and json_size(mapping) > ctx.config.engram_max_inline_size:
            ctx.error(
                "spec.mapping",
                f"mapping is larger than the inline limit of {ctx.config.engram_max_inline_size} bytes",
            )
        else:
            for field, message in mapping_problems(mapping, context_variables(template)):
                ctx.error(field, message)
    check_delivery_policy(ctx, "spec.deliveryPolicy", spec.get("deliveryPolicy"))
    throttle = as_dict(spec.get("throttle"))
    for key in ("maxInFlight", "ratePerSecond", "burst"):
        v = throttle.get(key)
        if v is not None and (not isinstance(v, int | float) or isinstance(v, bool) or v < 0):
            ctx.error(f"spec.throttle.{key}", f"{key} must be a number ≥ 0 (0 disables), got {v!r}")
    await check_secrets(ctx, template)


def context_variables(template: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """The variables a mapping of ``template``'s Impulses sees (its ``contextSchema``
    properties), or ``None`` when the template does not declare them."""
    spec = as_dict((template or {}).get("spec"))
    properties = as_dict(as_dict(spec.get("contextSchema")).get("properties"))
    return tuple(sorted(properties)) or None


def mapping_problems(mapping: Mapping[str, Any], variables: Collection[str] | None) -> list[tuple[str, str]]:
    """``(field, message)`` for every mapping expression that cannot work: a syntax error, a
    function that is not allowed, ``now()``/randomness, or (with ``variables``) an unknown
    variable."""
    problems: list[tuple[str, str]] = []
    for path, analysis in iter_templates(dict(mapping), "spec.mapping"):
        problems.extend((path, str(error)) for error in analysis.errors)
        if analysis.errors:
            continue
        for name in sorted((analysis.functions | analysis.filters) & DENIED_FUNCTIONS):
            problems.append((path, f"function '{name}' is not allowed in templates"))
        if analysis.uses_now or analysis.uses_random:
            problems.append(
                (
                    path,
                    "a mapping must give the same inputs when an event is delivered again: "
                    "now() and random helpers are not allowed here",
                )
            )
        unknown = sorted(analysis.roots - set(variables)) if variables is not None else []
        if unknown:
            problems.append(
                (
                    path,
                    f"unknown variable{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                    f"a mapping sees {', '.join(sorted(variables or ()))}",
                )
            )
    return problems
