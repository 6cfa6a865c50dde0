"""Cross-namespace reference policy (reference §10.1) and ReferenceGrant validation.

Invariants: a same-namespace reference is always allowed; ``deny`` rejects every other
reference; ``grant`` requires a ReferenceGrant in the *target* namespace whose ``from``
matches (group, kind, source namespace) and whose ``to`` matches (group, kind[, name]);
``allow`` permits everything. Errors go to the context; nothing raises.
"""

from __future__ import annotations

from typing import Any

from bobrapet.api.admission.context import Context, as_dict, as_list
from bobrapet.api.kinds import REFERENCE_GRANT, Kind


async def check_cross_namespace(
    ctx: Context,
    path: str,
    from_kind: Kind,
    to_kind: Kind,
    target_namespace: str | None,
    target_name: str,
) -> bool:
    """True when the reference is allowed; otherwise an error is recorded at ``path``."""
    source_ns = ctx.namespace
    if not target_namespace or target_namespace == source_ns:
        return True
    policy = ctx.config.cross_namespace_policy
    if policy == "allow":
        return True
    if policy == "deny":
        ctx.forbidden(
            path,
            f"cross-namespace {to_kind.kind} references are not allowed: use a {to_kind.kind} in "
            f"namespace '{source_ns}' (references.cross-namespace-policy is 'deny')",
        )
        return False
    grants = await ctx.lookup.list(REFERENCE_GRANT, target_namespace)
    for grant in grants:
        if grant_allows(grant, from_kind, source_ns, to_kind, target_name):
            return True
    ctx.forbidden(
        path,
        f"cross-namespace {to_kind.kind} reference to {target_namespace}/{target_name} is not "
        f"permitted (no ReferenceGrant): create a ReferenceGrant in namespace '{target_namespace}' "
        f"from {from_kind.group}/{from_kind.kind} in '{source_ns}' to {to_kind.group}/{to_kind.kind}",
    )
    return False


def grant_allows(grant: dict[str, Any], from_kind: Kind, source_ns: str, to_kind: Kind, name: str) -> bool:
    spec = as_dict(grant.get("spec"))
    from_ok = any(
        as_dict(f).get("group") == from_kind.group
        and as_dict(f).get("kind") == from_kind.kind
        and as_dict(f).get("namespace") == source_ns
        for f in as_list(spec.get("from"))
    )
    if not from_ok:
        return False
    return any(
        as_dict(t).get("group") == to_kind.group
        and as_dict(t).get("kind") == to_kind.kind
        and (not as_dict(t).get("name") or as_dict(t).get("name") == name)
        for t in as_list(spec.get("to"))
    )


async def validate_reference_grant(ctx: Context) -> None:
    spec = ctx.spec
    for block in ("from", "to"):
        entries = spec.get(block)
        if not isinstance(entries, list) or not entries:
            ctx.required(f"spec.{block}", f"at least one '{block}' entry is required")
            continue
        for i, entry in enumerate(entries):
            entry = as_dict(entry)
            needed = ("group", "kind", "namespace") if block == "from" else ("group", "kind")
            for key in needed:
                if not isinstance(entry.get(key), str) or (key != "group" and not entry.get(key)):
                    ctx.required(f"spec.{block}[{i}].{key}", f"{key} is required")
