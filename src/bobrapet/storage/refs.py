"""Reference maps and storage keys (reference §7.2).

A storage reference is a JSON object ``{"$bubuStorageRef": <key>, "$bubuStoragePath"?,
"$bubuStorageContentType"?, "$bubuStorageSchema"?, "$bubuStorageSchemaVersion"?}``.

Invariants:

* :func:`check_key` accepts only a non-empty relative POSIX path whose segments are neither
  empty, ``.`` nor ``..`` (backslashes count as separators), without NUL bytes; every read
  and write of a store goes through it, so a key can never leave the store's root;
* :func:`parse_ref` turns a map holding ``$bubuStorageRef`` into a :class:`StorageRef` or
  raises :class:`~bobrapet.storage.errors.InvalidReference` naming what is wrong: such a map
  is never mistaken for ordinary data;
* :func:`contains_refs` walks at most ``max_depth`` levels (deeper values are not searched).

Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bobrapet.storage.errors import InvalidReference

STORAGE_REF: Final = "$bubuStorageRef"
STORAGE_PATH: Final = "$bubuStoragePath"
STORAGE_CONTENT_TYPE: Final = "$bubuStorageContentType"
STORAGE_SCHEMA: Final = "$bubuStorageSchema"
STORAGE_SCHEMA_VERSION: Final = "$bubuStorageSchemaVersion"
CONFIGMAP_REF: Final = "$bubuConfigMapRef"
SECRET_REF: Final = "$bubuSecretRef"
REF_KEYS: Final = frozenset(
    {STORAGE_REF, STORAGE_PATH, STORAGE_CONTENT_TYPE, STORAGE_SCHEMA, STORAGE_SCHEMA_VERSION}
)

#: ``$bubuStorageContentType`` of a value stored as JSON / of a large string stored raw.
JSON_CONTENT_TYPE: Final = "application/json"
TEXT_CONTENT_TYPE: Final = "text/plain"

#: Default recursion depth of dehydration and hydration (``BUBU_MAX_RECURSION_DEPTH``).
DEFAULT_MAX_DEPTH: Final = 32


@dataclass(frozen=True, slots=True)
class StorageRef:
    """A parsed reference map: the blob's key and the selector inside its value."""

    key: str
    path: str = ""
    content_type: str = ""


def check_key(key: Any) -> str:
    """``key`` when it is a safe relative storage path; raises :class:`InvalidReference`."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidReference(
            f"storage reference must be a non-empty relative path, got {key!r}; "
            "use the reference map the producing step wrote"
        )
    if "\x00" in key:
        raise InvalidReference(f"storage reference {key!r} contains a NUL byte")
    normalized = key.replace("\\", "/")
    if normalized.startswith("/") or (len(key) > 1 and key[1] == ":" and key[0].isalpha()):
        raise InvalidReference(
            f"storage reference {key!r} is an absolute path; references are relative to the storage root"
        )
    segments = normalized.split("/")
    if ".." in segments:
        raise InvalidReference(
            f"storage reference {key!r} contains a '..' segment (path traversal is not allowed)"
        )
    if any(s in ("", ".") for s in segments):
        raise InvalidReference(f"storage reference {key!r} has an empty or '.' path segment")
    return key


def is_ref(value: Any) -> bool:
    """Whether ``value`` is a map holding ``$bubuStorageRef`` (well-formed or not)."""
    return isinstance(value, Mapping) and STORAGE_REF in value


def parse_ref(value: Mapping[str, Any]) -> StorageRef:
    """The :class:`StorageRef` of the map ``value``; raises :class:`InvalidReference`."""
    key = check_key(value.get(STORAGE_REF))
    extra = sorted(str(k) for k in value if k not in REF_KEYS)
    if extra:
        raise InvalidReference(
            f"storage reference {key!r} has unknown keys: {', '.join(extra)} "
            f"(allowed: {', '.join(sorted(REF_KEYS))})"
        )
    path = value.get(STORAGE_PATH, "")
    if path is None:
        path = ""
    if not isinstance(path, str):
        raise InvalidReference(f"storage reference {key!r}: {STORAGE_PATH} must be a string, got {path!r}")
    content_type = value.get(STORAGE_CONTENT_TYPE) or ""
    if not isinstance(content_type, str):
        raise InvalidReference(f"storage reference {key!r}: {STORAGE_CONTENT_TYPE} must be a string")
    return StorageRef(key, path.strip(), content_type)


def make_ref(
    key: str, content_type: str, *, schema: str | None = None, schema_version: str | None = None
) -> dict[str, Any]:
    """The reference map of a blob just written under ``key``."""
    ref: dict[str, Any] = {STORAGE_REF: key, STORAGE_CONTENT_TYPE: content_type}
    if schema:
        ref[STORAGE_SCHEMA] = schema
    if schema_version:
        ref[STORAGE_SCHEMA_VERSION] = schema_version
    return ref


def contains_refs(value: Any, max_depth: int = DEFAULT_MAX_DEPTH, _depth: int = 0) -> bool:
    """Whether a storage reference occurs in ``value`` (within ``max_depth`` levels)."""
    if isinstance(value, dict):
        if STORAGE_REF in value:
            return True
        items: Any = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return False
    if _depth >= max_depth:
        return False
    for item in items:
        if (type(item) is dict or type(item) is list or isinstance(item, dict | list)) and contains_refs(
            item, max_depth, _depth + 1
        ):
            return True
    return False


def contains_kube_refs(value: Any, max_depth: int = DEFAULT_MAX_DEPTH) -> bool:
    """Whether a ``$bubuConfigMapRef``/``$bubuSecretRef`` map occurs in ``value``."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        cur, depth = stack.pop()
        if depth > max_depth:
            continue
        if isinstance(cur, dict):
            if CONFIGMAP_REF in cur or SECRET_REF in cur:
                return True
            if STORAGE_REF in cur:
                continue
            stack.extend((v, depth + 1) for v in cur.values())
        elif isinstance(cur, list):
            stack.extend((v, depth + 1) for v in cur)
    return False
