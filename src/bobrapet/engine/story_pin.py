"""The Story a run executes: a content-addressed copy, fixed when the run starts.

A started StoryRun never reads the live Story again: later edits (a renamed step, a new
version) must not mix into a run in progress, nor into its redrive. The copy is stored
once, outside the run's status (which is rewritten on every step event), and the run's
status records only a small :class:`StoryPin` — written once.

Invariants:

* :func:`story_body` keeps exactly what the engine reads of a Story — ``apiVersion``,
  ``kind``, ``metadata.name``/``namespace`` and ``spec`` — so the copy depends on the
  Story's content only (not on its status, generation or resourceVersion).
* :func:`content_hash` is ``sha256:`` + the hex digest of the canonical JSON of a body
  (sorted keys, no whitespace): equal content has an equal hash in every process, which
  is what parsed-Story and compiled-graph caches key on.
* :func:`snapshot_name` depends only on the run's name and the hash, so storing the copy
  is create-if-absent: an engine that dies between storing it and recording the pin
  converges on restart.
* A pin is recorded in ``status.storySnapshot`` when the run starts (or, for a run started
  by an engine without pins, by its first plan); a full redrive keeps it unless the redrive
  asked for the current Story (``redrive --latest``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bobrapet.engine.naming import compose_dns1123

#: Key of the pin in StoryRun ``status``.
STATUS_KEY: Final = "storySnapshot"
_NAME_HASH_LEN: Final = 12


@dataclass(frozen=True, slots=True)
class StoryPin:
    """Which copy of which Story a run executes."""

    #: Name of the stored copy (a ConfigMap in the run's namespace).
    name: str
    #: ``sha256:<hex>`` of the copy's canonical JSON.
    hash: str
    #: ``metadata.generation`` of the Story when it was copied (``None``: unknown).
    generation: int | None = None
    #: ``spec.version`` of the Story, if it has one.
    version: str | None = None

    def to_status(self) -> dict[str, Any]:
        value: dict[str, Any] = {"name": self.name, "hash": self.hash}
        if self.generation is not None:
            value["generation"] = self.generation
        if self.version:
            value["version"] = self.version
        return value

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> StoryPin | None:
        """The pin recorded in a StoryRun ``status`` (``None``: the run is not pinned)."""
        value = (status or {}).get(STATUS_KEY)
        if not isinstance(value, Mapping) or not value.get("name") or not value.get("hash"):
            return None
        generation = value.get("generation")
        version = value.get("version")
        return cls(
            name=str(value["name"]),
            hash=str(value["hash"]),
            generation=generation if isinstance(generation, int) else None,
            version=str(version) if version else None,
        )


def story_body(story: Mapping[str, Any]) -> dict[str, Any]:
    """What of a stored Story (wire dict) a run needs: identity and spec."""
    metadata = story.get("metadata") or {}
    meta: dict[str, Any] = {"name": metadata.get("name")}
    if metadata.get("namespace"):
        meta["namespace"] = metadata["namespace"]
    return {
        "apiVersion": story.get("apiVersion") or "bubustack.io/v1alpha1",
        "kind": "Story",
        "metadata": meta,
        "spec": story.get("spec") or {},
    }


def canonical_json(body: Mapping[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(body: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(body).encode()).hexdigest()


def snapshot_name(run_name: str, digest: str) -> str:
    """``<run>-story-<12 hex digits of the hash>`` (DNS-1123, hash-suffixed when long)."""
    hex_digits = digest.split(":", 1)[-1][:_NAME_HASH_LEN]
    return compose_dns1123(run_name, "story", hex_digits)


def pin_for(run_name: str, story: Mapping[str, Any]) -> tuple[StoryPin, dict[str, Any]]:
    """The pin a run named ``run_name`` would record for the stored Story ``story``, and the body."""
    body = story_body(story)
    digest = content_hash(body)
    metadata = story.get("metadata") or {}
    generation = metadata.get("generation")
    version = (story.get("spec") or {}).get("version")
    pin = StoryPin(
        name=snapshot_name(run_name, digest),
        hash=digest,
        generation=generation if isinstance(generation, int) else None,
        version=str(version) if version else None,
    )
    return pin, body


def version_mismatch(run: Mapping[str, Any], version: str | None) -> str | None:
    """Why a run pinned to ``spec.storyRef.version`` cannot run a Story of ``version``."""
    ref = (run.get("spec") or {}).get("storyRef") or {}
    wanted = ref.get("version")
    if not wanted or wanted == version:
        return None
    namespace = ref.get("namespace") or (run.get("metadata") or {}).get("namespace") or "default"
    return (
        f"referenced story '{namespace}/{ref.get('name')}' has version '{version or ''}', expected "
        f"'{wanted}' (spec.storyRef.version); the run was not started — run the Story again "
        "without the version pin, or restore that version"
    )
