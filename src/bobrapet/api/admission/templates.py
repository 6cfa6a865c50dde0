"""EngramTemplate / ImpulseTemplate validation (reference §1.6, DESIGN "Execution").

Invariants: ``version`` and ``supportedModes`` are required; ImpulseTemplates support
only ``deployment``/``statefulset``; ``image`` is required only when neither
``entrypoint`` (``package.module:callable``) nor ``command`` is given; every schema
compiles after draft-3 ``required: true`` is lifted (so the original templates pass).
"""

from __future__ import annotations

import re
from typing import Any

from bobrapet.api.admission.context import Context, as_dict, as_list
from bobrapet.api.jsonschema_util import compile_schema
from bobrapet.api.types.enums import BACKOFF_STRATEGIES

WORKLOAD_MODES = ("job", "deployment", "statefulset")
_ENTRYPOINT = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def check_delivery_policy(ctx: Context, path: str, policy: Any) -> None:
    """Dedupe/retry rules shared by Impulse and ImpulseTemplate."""
    if policy is None:
        return
    from bobrapet.api.admission.context import check_duration

    p = as_dict(policy)
    dedupe = as_dict(p.get("dedupe"))
    mode = dedupe.get("mode")
    if mode is not None and mode not in ("none", "token", "key"):
        ctx.error(f"{path}.dedupe.mode", f"dedupe.mode must be none, token or key, got '{mode}'")
    key_template = dedupe.get("keyTemplate")
    if mode == "key" and not key_template:
        ctx.required(f"{path}.dedupe.keyTemplate", "keyTemplate is required when dedupe.mode is 'key'")
    if mode != "key" and key_template:
        ctx.error(f"{path}.dedupe.keyTemplate", "keyTemplate is only valid when dedupe.mode is 'key'")
    retry = as_dict(p.get("retry"))
    attempts = retry.get("maxAttempts")
    if attempts is not None and (not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0):
        ctx.error(f"{path}.retry.maxAttempts", f"maxAttempts must be an integer ≥ 0, got {attempts!r}")
    base = check_duration(ctx, f"{path}.retry.baseDelay", retry.get("baseDelay"), positive=False)
    cap = check_duration(ctx, f"{path}.retry.maxDelay", retry.get("maxDelay"), positive=False)
    if base is not None and cap is not None and cap < base:
        ctx.error(f"{path}.retry.maxDelay", "maxDelay must be greater than or equal to baseDelay")
    backoff = retry.get("backoff")
    if backoff is not None and backoff not in BACKOFF_STRATEGIES:
        ctx.error(
            f"{path}.retry.backoff", f"backoff must be exponential, linear or constant, got '{backoff}'"
        )


async def validate_template(ctx: Context) -> None:
    if ctx.status_only:
        return
    spec = ctx.spec
    impulse = ctx.kind.kind == "ImpulseTemplate"
    if not isinstance(spec.get("version"), str) or not spec.get("version"):
        ctx.required("spec.version", 'version is required (e.g. "1.0.0")')
    modes = spec.get("supportedModes")
    allowed = ("deployment", "statefulset") if impulse else WORKLOAD_MODES
    if not isinstance(modes, list) or not modes:
        ctx.required("spec.supportedModes", f"supportedModes is required: a list of {', '.join(allowed)}")
    else:
        if len(modes) > 3:
            ctx.error("spec.supportedModes", "at most 3 modes may be listed")
        for i, mode in enumerate(modes):
            if mode not in allowed:
                ctx.error(
                    f"spec.supportedModes[{i}]",
                    f"unsupported mode '{mode}'"
                    + (" (impulses run as long-lived workloads)" if impulse and mode == "job" else "")
                    + f"; use {', '.join(allowed)}",
                )
    image, entrypoint, command = spec.get("image"), spec.get("entrypoint"), spec.get("command")
    if not image and not entrypoint and not command:
        ctx.required(
            "spec.image",
            "image is required unless entrypoint (a Python 'package.module:callable') or command is set",
        )
    if entrypoint is not None and (not isinstance(entrypoint, str) or not _ENTRYPOINT.match(entrypoint)):
        ctx.error(
            "spec.entrypoint", f"entrypoint must look like 'package.module:callable', got {entrypoint!r}"
        )
    if command is not None and (
        not isinstance(command, list) or not command or not all(isinstance(c, str) and c for c in command)
    ):
        ctx.error("spec.command", "command must be a non-empty list of strings, e.g. ['python', 'main.py']")
    if isinstance(image, str) and len(image) > 512:
        ctx.error("spec.image", "image must be at most 512 characters")
    schemas = (
        ["configSchema", "contextSchema"] if impulse else ["configSchema", "inputSchema", "outputSchema"]
    )
    for key in schemas:
        if spec.get(key) is None:
            continue
        for err in compile_schema(spec[key]):
            ctx.error(f"spec.{key}", f"invalid JSON Schema: {err}")
    for name, secret in as_dict(spec.get("secretSchema")).items():
        mount = as_dict(secret).get("mountType")
        if mount is not None and mount not in ("env", "file", "both"):
            ctx.error(
                f"spec.secretSchema.{name}.mountType", f"mountType must be env, file or both, got '{mount}'"
            )
    for i, key in enumerate(as_list(spec.get("declaredOutputKeys"))):
        if not isinstance(key, str) or not key:
            ctx.error(f"spec.declaredOutputKeys[{i}]", "output keys must be non-empty strings")
    if impulse:
        check_delivery_policy(ctx, "spec.deliveryPolicy", spec.get("deliveryPolicy"))
