"""ConfigMap and Secret references inside JSON values (reference §7.4).

``{"$bubuConfigMapRef": ...}`` / ``{"$bubuSecretRef": ...}``: the value is ``"name:key"``,
``"namespace/name:key"`` or ``{name, key, namespace?, format: auto|json|raw}``; the ref key is
the only key of its map.

Invariants: references resolve only within the consumer's own namespace (an explicit other
namespace, or any explicit namespace when the consumer's is unknown, is denied); ``auto``
parses the value as JSON when it is JSON and keeps the text otherwise, ``json`` requires
JSON, ``raw`` keeps the text; a Secret's ``data`` is base64-decoded, a ConfigMap's
``binaryData`` too. Every problem raises :class:`~bobrapet.storage.errors.InvalidReference`
naming the reference. Pure and standard library only: objects come from the caller.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from bobrapet.storage.errors import InvalidReference
from bobrapet.storage.refs import CONFIGMAP_REF, DEFAULT_MAX_DEPTH, SECRET_REF, STORAGE_REF

FORMATS: Final = ("auto", "json", "raw")
CONFIG_MAP: Final = "ConfigMap"
SECRET: Final = "Secret"


@dataclass(frozen=True, slots=True)
class KubeRef:
    kind: str
    name: str
    key: str
    namespace: str | None = None
    format: str = "auto"

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name}:{self.key}"


def parse_kube_ref(value: Mapping[str, Any]) -> KubeRef:
    """The reference held by the map ``value``; raises :class:`InvalidReference`."""
    field = CONFIGMAP_REF if CONFIGMAP_REF in value else SECRET_REF
    kind = CONFIG_MAP if field == CONFIGMAP_REF else SECRET
    if len(value) != 1:
        others = ", ".join(sorted(str(k) for k in value if k != field))
        raise InvalidReference(f"{field} must be the only key in its map (found also: {others})")
    raw = value[field]
    if isinstance(raw, str):
        head, sep, key = raw.rpartition(":")
        namespace, _, name = head.rpartition("/")
        if not sep or not name or not key:
            raise InvalidReference(f"{field} {raw!r} must be 'name:key' or 'namespace/name:key'")
        return KubeRef(kind, name, key, namespace or None)
    if isinstance(raw, Mapping):
        obj_name, obj_key = raw.get("name"), raw.get("key")
        if not isinstance(obj_name, str) or not obj_name or not isinstance(obj_key, str) or not obj_key:
            raise InvalidReference(f"{field} needs a non-empty 'name' and 'key'")
        fmt = raw.get("format") or "auto"
        if fmt not in FORMATS:
            raise InvalidReference(
                f"{field} {obj_name}:{obj_key}: format must be auto, json or raw, got {fmt!r}"
            )
        obj_ns = raw.get("namespace")
        if obj_ns is not None and not isinstance(obj_ns, str):
            raise InvalidReference(f"{field} {obj_name}:{obj_key}: namespace must be a string")
        return KubeRef(kind, obj_name, obj_key, obj_ns or None, str(fmt))
    raise InvalidReference(f"{field} must be a 'name:key' string or an object with name and key")


def kube_refs_in(value: Any, max_depth: int = DEFAULT_MAX_DEPTH) -> Iterator[Mapping[str, Any]]:
    """Every ConfigMap/Secret reference map in ``value`` (storage references are not entered)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        cur, depth = stack.pop()
        if depth > max_depth:
            continue
        if isinstance(cur, dict):
            if CONFIGMAP_REF in cur or SECRET_REF in cur:
                yield cur
                continue
            if STORAGE_REF in cur:
                continue
            stack.extend((v, depth + 1) for v in cur.values())
        elif isinstance(cur, list):
            stack.extend((v, depth + 1) for v in cur)


def check_namespace(ref: KubeRef, namespace: str | None) -> str:
    """The namespace ``ref`` resolves in (the consumer's own); raises when it is denied."""
    if ref.namespace is not None:
        if not namespace:
            raise InvalidReference(f"{ref}: an explicit namespace is denied without a workload namespace")
        if ref.namespace != namespace:
            raise InvalidReference(
                f"{ref}: references resolve only in the step's own namespace {namespace!r}; "
                "copy the object there"
            )
    if not namespace:
        raise InvalidReference(f"{ref}: the step's namespace is unknown")
    return namespace


def object_value(ref: KubeRef, obj: Mapping[str, Any] | None) -> str:
    """The text of ``ref.key`` in the ConfigMap/Secret ``obj`` (``None``: not found)."""
    if obj is None:
        raise InvalidReference(f"{ref}: the {ref.kind} {ref.name!r} does not exist")
    data = obj.get("data") or {}
    if ref.kind == CONFIG_MAP:
        if ref.key in data:
            return str(data[ref.key])
        binary = obj.get("binaryData") or {}
        if ref.key in binary:
            return _b64(ref, binary[ref.key])
    else:
        if ref.key in data:
            return _b64(ref, data[ref.key])
        strings = obj.get("stringData") or {}
        if ref.key in strings:
            return str(strings[ref.key])
    raise InvalidReference(f"{ref}: the {ref.kind} has no key {ref.key!r}")


def _b64(ref: KubeRef, text: Any) -> str:
    try:
        return base64.b64decode(str(text), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidReference(f"{ref}: the value is not base64-encoded UTF-8 text") from None


def decode(ref: KubeRef, text: str) -> Any:
    """The value of ``text`` per ``ref.format``."""
    if ref.format == "raw":
        return text
    try:
        return json.loads(text)
    except ValueError:
        if ref.format == "json":
            raise InvalidReference(f"{ref}: format json, but the value is not JSON") from None
        return text


def resolver(
    namespace: str | None,
    get: Callable[[str, str, str], Mapping[str, Any] | None],
    on_secret: Callable[[str], None] | None = None,
) -> Callable[[Mapping[str, Any]], Any]:
    """A hydration callback resolving references with ``get(kind, namespace, name)``;
    ``on_secret`` sees every Secret text resolved (to redact it)."""

    def resolve(value: Mapping[str, Any]) -> Any:
        ref = parse_kube_ref(value)
        ns = check_namespace(ref, namespace)
        text = object_value(ref, get(ref.kind, ns, ref.name))
        if ref.kind == SECRET and on_secret is not None:
            on_secret(text)
        return decode(ref, text)

    return resolve
