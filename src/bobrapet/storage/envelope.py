"""The blob format: a JSON envelope ``{"contentType": "json"|"raw", "data": <value>}`` (§7.2).

Invariants: ``raw`` holds a string (a large string offloaded as is), ``json`` any JSON value;
:func:`envelope_chunks` yields the envelope's UTF-8 bytes in bounded chunks (a 50 MB value is
never copied whole a second time); :func:`parse_envelope` accepts only a well-formed envelope
and raises :class:`~bobrapet.storage.errors.IntegrityError` naming the key otherwise.
Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final, Literal

from bobrapet.storage.errors import IntegrityError
from bobrapet.storage.refs import JSON_CONTENT_TYPE, TEXT_CONTENT_TYPE

Kind = Literal["json", "raw"]
JSON: Final = "json"
RAW: Final = "raw"
CHUNK: Final = 1 << 20

#: Compact JSON, UTF-8 kept as is (sizes are counted in encoded bytes).
ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_type_of(kind: Kind) -> str:
    """``$bubuStorageContentType`` of an envelope kind."""
    return TEXT_CONTENT_TYPE if kind == RAW else JSON_CONTENT_TYPE


def envelope_chunks(kind: Kind, data_json: str) -> Iterator[bytes]:
    """The envelope holding ``data_json`` (the JSON text of the data), as UTF-8 chunks."""
    yield b'{"contentType":"' + kind.encode() + b'","data":'
    for start in range(0, len(data_json), CHUNK):
        yield data_json[start : start + CHUNK].encode("utf-8")
    yield b"}"


def parse_envelope(raw: bytes | str, key: str) -> Any:
    """The ``data`` of the envelope ``raw`` read from ``key``."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"blob {key!r} is not a JSON envelope: {exc}") from None
    if not isinstance(obj, dict) or "data" not in obj:
        raise IntegrityError(f'blob {key!r} is not a storage envelope ({{"contentType", "data"}})')
    kind = obj.get("contentType")
    data = obj["data"]
    if kind == RAW:
        if not isinstance(data, str):
            raise IntegrityError(f"blob {key!r}: a raw envelope must hold a string")
        return data
    if kind != JSON:
        raise IntegrityError(f"blob {key!r}: unknown contentType {kind!r} (expected json or raw)")
    return data
