"""Engram validation (reference §1.15 "Engram").

Invariants: the template must exist and match a pinned version; ``mode`` must be one of
the template's ``supportedModes``; ``with`` is a JSON object no larger than the engram
inline limit and valid against the (normalized) ``configSchema``; secret bindings match
the template's ``secretSchema`` (missing Secret objects are only warnings). Spec changes
are rejected while the Engram is being deleted.
"""

from __future__ import annotations

from typing import Any

from bobrapet.api.admission.context import Context, as_dict, json_size
from bobrapet.api.admission.refmaps import check_ref_maps
from bobrapet.api.jsonschema_util import scrub_storage_metadata, validate_templated
from bobrapet.api.kinds import ENGRAM_TEMPLATE, IMPULSE_TEMPLATE, SECRET


def _missing_template(kind: str, name: str, impulse: bool) -> str:
    from bobrapet.api.builtin_catalog import builtin_names

    if impulse and name in builtin_names():
        return f"{kind} '{name}' not found: it is built in; install it with `bobrapet catalog install`"
    return f"{kind} '{name}' not found; install it first"


async def load_template(ctx: Context, impulse: bool) -> dict[str, Any] | None:
    """The referenced template (errors recorded when missing or version-mismatched)."""
    kind = IMPULSE_TEMPLATE if impulse else ENGRAM_TEMPLATE
    ref = as_dict(ctx.spec.get("templateRef"))
    name = ref.get("name")
    if not isinstance(name, str) or not name:
        ctx.required("spec.templateRef.name", f"templateRef.name (the {kind.kind}) is required")
        return None
    template = await ctx.get(kind, name, None)
    if template is None:
        ctx.error("spec.templateRef.name", _missing_template(kind.kind, name, impulse), "FieldValueNotFound")
        return None
    tver = as_dict(template.get("spec")).get("version")
    if ref.get("version") and ref.get("version") != tver:
        ctx.error(
            "spec.templateRef.version",
            f"{kind.kind} '{name}' has version '{tver}', expected '{ref.get('version')}'",
        )
    return template


def check_mode(
    ctx: Context, template: dict[str, Any] | None, mode: Any, path: str, *, allow_job: bool
) -> None:
    if mode is None:
        return
    if not allow_job and mode == "job":
        ctx.error(path, "workload mode 'job' is not supported for impulses; use deployment or statefulset")
        return
    if template is None:
        return
    supported = as_dict(template.get("spec")).get("supportedModes") or []
    if mode not in supported:
        ctx.error(
            path,
            f"workload mode {mode!r} is not supported by template "
            f"(supportedModes: {', '.join(map(str, supported))})",
        )


def check_config(ctx: Context, template: dict[str, Any] | None, key: str = "with") -> None:
    value = ctx.spec.get(key)
    if value is None:
        return
    path = f"spec.{key}"
    if not isinstance(value, dict):
        ctx.error(path, f"{key} must be a JSON object")
        return
    limit = ctx.config.engram_max_inline_size
    size = json_size(value)
    if limit and size > limit:
        ctx.error(
            path,
            f"{key} is {size} bytes, more than the inline limit of {limit} bytes; "
            "move large values to ConfigMaps/Secrets ($bubuConfigMapRef/$bubuSecretRef)",
        )
    check_ref_maps(ctx, path, value)
    if key != "with" or template is None:
        return
    schema = as_dict(template.get("spec")).get("configSchema")
    if schema:
        for epath, msg in validate_templated(scrub_storage_metadata(value), schema):
            sep = "" if not epath or epath.startswith("[") else "."
            ctx.error(f"{path}{sep}{epath}", f"does not match the template configSchema: {msg}")


async def check_secrets(ctx: Context, template: dict[str, Any] | None) -> None:
    secrets = ctx.spec.get("secrets")
    if secrets is not None and not isinstance(secrets, dict):
        ctx.error("spec.secrets", "secrets must map logical names to Secret names")
        return
    bound = as_dict(secrets)
    if template is None:
        return
    schema = as_dict(as_dict(template.get("spec")).get("secretSchema"))
    for logical, secret_name in bound.items():
        if logical not in schema:
            known = ", ".join(sorted(schema)) or "none"
            ctx.error(
                f"spec.secrets.{logical}",
                f"secret '{logical}' is not declared by the template (declared: {known})",
            )
            continue
        missing = isinstance(secret_name, str) and secret_name
        if missing and await ctx.get(SECRET, str(secret_name), ctx.namespace) is None:
            ctx.warn(f"spec.secrets.{logical}", f"Secret '{ctx.namespace}/{secret_name}' does not exist yet")
    for logical, definition in schema.items():
        if as_dict(definition).get("required") and logical not in bound:
            ctx.required(
                f"spec.secrets.{logical}",
                f"the template requires secret '{logical}'; bind it to a Secret name",
            )


async def validate_engram(ctx: Context) -> None:
    if ctx.status_only:
        return
    if ctx.is_update and ctx.metadata.get("deletionTimestamp") and ctx.spec != ctx.old_spec:
        ctx.forbidden("spec", "spec cannot change while the Engram is being deleted")
        return
    if ctx.is_update and ctx.spec == ctx.old_spec:
        # metadata-only update (labels, finalizers): re-checking the template reference would
        # block finalizer removal once the EngramTemplate is gone
        return
    template = await load_template(ctx, impulse=False)
    check_mode(ctx, template, ctx.spec.get("mode"), "spec.mode", allow_job=True)
    check_config(ctx, template)
    await check_secrets(ctx, template)
