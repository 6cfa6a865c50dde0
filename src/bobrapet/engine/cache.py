"""The output cache of an Engram step (reference §7.6): which policy applies, and the key.

Invariants (pure):

* the policy is the first one set of: StepRun ``spec.executionOverrides.cache`` > step
  ``execution.cache`` > Story ``policy.execution.cache`` > Engram
  ``spec.executionPolicy.cache``; ``enabled: false`` turns the cache off;
* key material: with ``cache.key`` (a template, rendered like the step's input) it is
  ``engram:<name>|version:<v>|key:<rendered>``, else ``engram:<name>|version:<v>|step:<stepId>|
  input:<resolved input JSON, keys sorted>``; ``|salt:<salt>`` is appended when set; the key
  is the SHA-256 hex of the material; ``<v>`` is the step's pinned Engram version, else the
  Engram's ``spec.version``, else ``latest``;
* an entry lives at ``cache/<namespace>/<engram>/<version>/<key>.json`` and holds
  ``{createdAt, ttlSeconds, output}``; it is fresh while ``ttlSeconds`` is unset or <= 0, or
  ``createdAt + ttlSeconds`` is in the future.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bobrapet.api.types.story import Step, Story
from bobrapet.engine.timefmt import aware, format_time, parse_time

#: StepRun annotations recording the cache's use (reference §7.6).
KEY_ANNOTATION = "cache.bubustack.io/key"
MODE_ANNOTATION = "cache.bubustack.io/mode"
TTL_ANNOTATION = "cache.bubustack.io/ttl-seconds"
STATUS_ANNOTATION = "cache.bubustack.io/status"
CACHE_HIT = "hit"
CACHE_STORED = "stored"


@dataclass(frozen=True)
class CacheEntry:
    """Where one step's output is cached, and how the step uses the cache."""

    key: str
    mode: str
    ttl_seconds: int | None
    blob: str

    @property
    def reads(self) -> bool:
        return self.mode in ("read", "readWrite")

    @property
    def writes(self) -> bool:
        return self.mode in ("write", "readWrite")

    def annotations(self, status: str) -> dict[str, str]:
        out = {KEY_ANNOTATION: self.key, MODE_ANNOTATION: self.mode, STATUS_ANNOTATION: status}
        if self.ttl_seconds is not None:
            out[TTL_ANNOTATION] = str(self.ttl_seconds)
        return out

    def record(self, output: Any, now: datetime) -> dict[str, Any]:
        """The stored entry for ``output``."""
        return {"createdAt": format_time(aware(now)), "ttlSeconds": self.ttl_seconds, "output": output}


def _get(node: Any, *keys: str) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def cache_policy(
    step_run: Mapping[str, Any], step: Step | None, story: Story | None, engram: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The wire cache policy that applies to the step (``None``: no cache)."""
    story_policy = story.spec.policy if story is not None else None
    levels: tuple[Any, ...] = (
        _get(step_run, "spec", "executionOverrides", "cache"),
        step.execution.cache if step is not None and step.execution is not None else None,
        story_policy.execution.cache
        if story_policy is not None and story_policy.execution is not None
        else None,
        _get(engram, "spec", "executionPolicy", "cache"),
    )
    for level in levels:
        if level is None:
            continue
        policy = level if isinstance(level, Mapping) else level.model_dump(by_alias=True, exclude_none=True)
        return policy if policy.get("enabled", True) is not False else None
    return None


def cache_entry(
    policy: Mapping[str, Any],
    *,
    namespace: str,
    engram: str,
    version: str | None,
    step_id: str,
    inputs: Any,
    rendered_key: str | None,
) -> CacheEntry:
    """The entry of a step under ``policy`` (``rendered_key``: its rendered ``key`` template)."""
    v = version or "latest"
    if rendered_key is not None:
        material = f"engram:{engram}|version:{v}|key:{rendered_key}"
    else:
        encoded = json.dumps(inputs, separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str)
        material = f"engram:{engram}|version:{v}|step:{step_id}|input:{encoded}"
    salt = policy.get("salt")
    if salt:
        material += f"|salt:{salt}"
    key = hashlib.sha256(material.encode()).hexdigest()
    ttl = policy.get("ttlSeconds")
    return CacheEntry(
        key=key,
        mode=str(policy.get("mode") or "readWrite"),
        ttl_seconds=int(ttl) if isinstance(ttl, int) else None,
        blob=f"cache/{namespace}/{engram}/{v}/{key}.json",
    )


def fresh_output(record: Any, now: datetime) -> tuple[bool, Any]:
    """(whether ``record`` is a usable, unexpired entry, its output)."""
    if not isinstance(record, Mapping) or "output" not in record:
        return False, None
    ttl = record.get("ttlSeconds")
    if isinstance(ttl, int) and ttl > 0:
        created = parse_time(record.get("createdAt"))
        if created is None or aware(created) + timedelta(seconds=ttl) <= aware(now):
            return False, None
    return True, record["output"]


def annotated(obj: Mapping[str, Any], annotations: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``obj`` with ``annotations`` set in its metadata."""
    metadata = dict(obj.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
    return {**obj, "metadata": metadata}
