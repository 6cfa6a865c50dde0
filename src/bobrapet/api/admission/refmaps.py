"""Well-formedness of reference maps inside JSON values (reference §7.2, §7.4).

``$bubuStorageRef``: non-empty relative path, no ``..`` segments, only storage metadata
keys beside it. ``$bubuConfigMapRef`` / ``$bubuSecretRef``: the only key of its map; value
``"name:key"``, ``"namespace/name:key"`` or ``{name, key, namespace?, format?}`` with
``format`` in ``auto|json|raw``. Invariant: the walk is iterative and reports every bad map.
"""

from __future__ import annotations

from typing import Any

from bobrapet.api.admission.context import Context
from bobrapet.api.expressions.walk import join_path
from bobrapet.api.jsonschema_util import STORAGE_METADATA_KEYS

STORAGE_REF = "$bubuStorageRef"
CONFIGMAP_REF = "$bubuConfigMapRef"
SECRET_REF = "$bubuSecretRef"
_FORMATS = ("auto", "json", "raw")


def has_storage_refs(value: Any) -> bool:
    stack = [value]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            if STORAGE_REF in cur:
                return True
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return False


def check_ref_maps(ctx: Context, base: str, value: Any) -> None:
    stack: list[tuple[str, Any]] = [(base, value)]
    while stack:
        path, cur = stack.pop()
        if isinstance(cur, list):
            stack.extend((join_path(path, i), v) for i, v in enumerate(cur))
            continue
        if not isinstance(cur, dict):
            continue
        if STORAGE_REF in cur:
            _check_storage(ctx, path, cur)
            continue
        kube = [k for k in (CONFIGMAP_REF, SECRET_REF) if k in cur]
        if kube:
            _check_kube(ctx, path, cur, kube[0])
            continue
        stack.extend((join_path(path, str(k)), v) for k, v in cur.items())


def _check_storage(ctx: Context, path: str, ref: dict[str, Any]) -> None:
    target = ref.get(STORAGE_REF)
    where = join_path(path, STORAGE_REF)
    if not isinstance(target, str) or not target.strip():
        ctx.error(where, "storage reference must be a non-empty relative path string")
    elif target.startswith("/") or ".." in target.replace("\\", "/").split("/"):
        ctx.error(where, f"storage reference '{target}' must be a relative path without '..' segments")
    extra = sorted(k for k in ref if k != STORAGE_REF and k not in STORAGE_METADATA_KEYS)
    if extra:
        ctx.error(path, f"storage reference map has unknown keys: {', '.join(extra)}")
    for key in STORAGE_METADATA_KEYS:
        if key in ref and not isinstance(ref[key], str):
            ctx.error(join_path(path, key), "must be a string")


def _check_kube(ctx: Context, path: str, ref: dict[str, Any], key: str) -> None:
    what = "ConfigMap" if key == CONFIGMAP_REF else "Secret"
    where = join_path(path, key)
    if len(ref) != 1:
        others = ", ".join(sorted(k for k in ref if k != key))
        ctx.error(path, f"{key} must be the only key in its map (found also: {others})")
    value = ref[key]
    if isinstance(value, str):
        name_part, sep, item = value.rpartition(":")
        name = name_part.split("/")[-1] if name_part else ""
        if not sep or not name or not item:
            ctx.error(where, f"{what} reference must be 'name:key' or 'namespace/name:key', got '{value}'")
        return
    if isinstance(value, dict):
        for req in ("name", "key"):
            if not isinstance(value.get(req), str) or not value.get(req):
                ctx.required(join_path(where, req), f"{what} reference requires '{req}'")
        fmt = value.get("format")
        if fmt is not None and fmt not in _FORMATS:
            ctx.error(join_path(where, "format"), f"format must be one of {', '.join(_FORMATS)}, got '{fmt}'")
        extra = sorted(k for k in value if k not in ("name", "key", "namespace", "format"))
        if extra:
            ctx.error(where, f"{what} reference has unknown keys: {', '.join(extra)}")
        return
    ctx.error(where, f"{what} reference must be a 'name:key' string or an object with name and key")
