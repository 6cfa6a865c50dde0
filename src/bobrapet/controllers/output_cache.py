"""Reading and writing the output cache of Engram steps (reference §7.6) in the storage.

Invariants: a hit is an entry that exists, is fresh (:func:`bobrapet.engine.fresh_output`) and
whose output matches the EngramTemplate's ``outputSchema``; anything else (missing, expired,
corrupted, a storage fault: logged) is a miss, never a failure of the step. Storage calls run
in a thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bobrapet.api.jsonschema_util import validate_templated
from bobrapet.engine import CacheEntry, EngineConfig, fresh_output
from bobrapet.storage.envelope import ENCODER, JSON, envelope_chunks, parse_envelope
from bobrapet.storage.errors import BlobNotFound, StorageError
from bobrapet.storage.settings import open_store

log = logging.getLogger("bobrapet.controllers.output_cache")

_MISS = object()


def _read(config: EngineConfig, entry: CacheEntry, now: datetime, schema: Any) -> Any:
    try:
        store = open_store(config.storage)
        if store is None:
            return _MISS
        record = parse_envelope(store.read(entry.blob), entry.blob)
    except BlobNotFound:
        return _MISS
    except StorageError as exc:
        log.warning("output cache: cannot read %s: %s", entry.blob, exc.message)
        return _MISS
    usable, output = fresh_output(record, now)
    if not usable:
        return _MISS
    if isinstance(schema, dict) and schema and validate_templated(output, schema):
        log.info("output cache: %s does not match the outputSchema; ignored", entry.blob)
        return _MISS
    return output


async def read_cache(
    config: EngineConfig, entry: CacheEntry, now: datetime, template: Mapping[str, Any] | None
) -> tuple[bool, Any]:
    """(hit, cached output) for ``entry``."""
    schema = ((template or {}).get("spec") or {}).get("outputSchema")
    output = await asyncio.to_thread(_read, config, entry, now, schema)
    return (False, None) if output is _MISS else (True, output)


def _write(config: EngineConfig, entry: CacheEntry, output: Any, now: datetime) -> bool:
    try:
        store = open_store(config.storage)
        if store is None:
            return False
        store.write(entry.blob, envelope_chunks(JSON, ENCODER.encode(entry.record(output, now))))
    except (StorageError, TypeError, ValueError) as exc:
        log.warning("output cache: cannot store %s: %s", entry.blob, exc)
        return False
    return True


async def write_cache(config: EngineConfig, entry: CacheEntry, output: Any, now: datetime) -> bool:
    """Store ``output`` (as recorded: offloaded values are references) under ``entry``."""
    return await asyncio.to_thread(_write, config, entry, output, now)
