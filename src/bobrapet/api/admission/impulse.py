"""Impulse validation (reference §1.15 "Impulse").

Invariants: template must exist and match; the Story reference follows the cross-namespace
policy (a missing Story or version mismatch is a warning); workload mode is in the
template's modes and never ``job``; ``with``/``mapping`` are JSON objects within the inline
limit; delivery policy and throttle rules hold; unchanged specs are not re-validated.
"""

from __future__ import annotations

from bobrapet.api.admission.context import Context, as_dict, json_size
from bobrapet.api.admission.engram import check_config, check_mode, check_secrets, load_template
from bobrapet.api.admission.references import check_cross_namespace
from bobrapet.api.admission.templates import check_delivery_policy
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
    check_delivery_policy(ctx, "spec.deliveryPolicy", spec.get("deliveryPolicy"))
    throttle = as_dict(spec.get("throttle"))
    for key in ("maxInFlight", "ratePerSecond", "burst"):
        v = throttle.get(key)
        if v is not None and (not isinstance(v, int | float) or isinstance(v, bool) or v < 0):
            ctx.error(f"spec.throttle.{key}", f"{key} must be a number ≥ 0 (0 disables), got {v!r}")
    await check_secrets(ctx, template)
