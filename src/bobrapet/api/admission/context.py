"""The per-request admission context shared by every kind's defaulter and validator.

Invariant: validators only *append* causes/warnings here and never raise for user
errors; :func:`bobrapet.api.admission.pipeline.admit` turns the collected causes into one
``Invalid`` error, so a user sees every problem at once. Warnings are strings prefixed
with the field path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from bobrapet.api.admission.config import AdmissionConfig
from bobrapet.api.admission.lookup import HydrateInputs, Lookup
from bobrapet.api.durations import parse_duration
from bobrapet.api.errors import Cause
from bobrapet.api.kinds import Kind

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class Context:
    kind: Kind
    obj: dict[str, Any]
    old: dict[str, Any] | None
    lookup: Lookup
    config: AdmissionConfig
    subresource: str | None = None
    causes: list[Cause] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cache: dict[tuple[str, str | None, str], dict[str, Any] | None] = field(default_factory=dict)
    #: Reads offloaded payloads (None: they are checked as references only).
    hydrate: HydrateInputs | None = None

    # -- identity -------------------------------------------------------------------
    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.obj.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or self.metadata.get("generateName") or "")

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "default")

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.obj.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def status(self) -> dict[str, Any]:
        st = self.obj.get("status")
        return st if isinstance(st, dict) else {}

    @property
    def is_update(self) -> bool:
        return self.old is not None

    @property
    def status_only(self) -> bool:
        return self.subresource == "status"

    @property
    def old_spec(self) -> dict[str, Any]:
        if not self.old:
            return {}
        spec = self.old.get("spec")
        return spec if isinstance(spec, dict) else {}

    # -- reporting ------------------------------------------------------------------
    def error(self, path: str, message: str, reason: str = "FieldValueInvalid") -> None:
        self.causes.append(Cause(field=path, message=message, reason=reason))

    def required(self, path: str, message: str) -> None:
        self.error(path, message, "FieldValueRequired")

    def forbidden(self, path: str, message: str) -> None:
        self.error(path, message, "FieldValueForbidden")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}" if path else message)

    # -- lookups (memoized per request) -----------------------------------------------
    async def get(self, kind: Kind, name: str, namespace: str | None) -> dict[str, Any] | None:
        ns = namespace if kind.namespaced else None
        key = (kind.kind, ns, name)
        if key not in self.cache:
            self.cache[key] = await self.lookup.get(kind, name, ns)
        return self.cache[key]


# -- helpers -----------------------------------------------------------------------------


#: The compact encoder of :func:`json_size`, built once (``json.dumps`` with options builds one per call).
_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def json_size(value: Any) -> int:
    """Bytes of the compact JSON encoding (how the reference measures blocks)."""
    return len(_COMPACT.encode(value).encode())


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def check_duration(
    ctx: Context, path: str, value: Any, *, positive: bool = True, minimum: timedelta | None = None
) -> timedelta | None:
    """Validate a Go duration string at ``path``; returns the parsed value when valid."""
    if value is None:
        return None
    if not isinstance(value, str):
        ctx.error(path, f'must be a duration string such as "30s" or "5m", got {type(value).__name__}')
        return None
    try:
        td = parse_duration(value)
    except ValueError as exc:
        ctx.error(path, str(exc))
        return None
    if positive and td <= timedelta(0):
        ctx.error(path, f'must be a positive duration, got "{value}" (e.g. "30s")')
        return None
    if not positive and td < timedelta(0):
        ctx.error(path, f'must not be negative, got "{value}"')
        return None
    if minimum is not None and td < minimum:
        ctx.error(path, f'must be at least {int(minimum.total_seconds() * 1000)}ms, got "{value}"')
        return None
    return td


def check_dns_label(ctx: Context, path: str, value: Any, what: str = "name") -> bool:
    if not isinstance(value, str) or not value:
        ctx.required(path, f"{what} is required")
        return False
    if len(value) > 63 or not DNS1123_LABEL.match(value):
        ctx.error(
            path,
            f"{what} '{value}' must be a DNS-1123 label: at most 63 lowercase letters, digits "
            "and '-', starting and ending with a letter or digit",
        )
        return False
    return True


def check_ref_name(ctx: Context, path: str, ref: Any, what: str) -> str | None:
    """``ref.name`` must be set; returns it."""
    name = as_dict(ref).get("name")
    if not isinstance(name, str) or not name:
        ctx.required(f"{path}.name", f"{what} name is required")
        return None
    return name


def deep_merge(base: Any, override: Any) -> Any:
    """Override wins; objects merge key by key."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = deep_merge(base.get(k), v) if k in base else v
        return out
    return override if override is not None else base
