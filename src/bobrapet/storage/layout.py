"""Who owns a blob: the layout of storage keys (reference §7.2, §7.6), read backwards.

Keys written by Bobrapet (``<out>``/``<in>`` are the configured output and input prefixes):

* ``<out>/<namespace>/<steprun>/<blob>`` — a step's output (the SDK): owned by that StepRun;
* ``<in>/<name>/<blob>`` — inputs offloaded for a StepRun (the engine) or for a StoryRun
  created by a StoryTrigger: owned by the StepRun or StoryRun of that name (any namespace);
* ``<in>/<namespace>/<id>/<blob>`` — run inputs offloaded before their run existed
  (``bobrapet run``, the SDK's ``trigger_story``): no owner, only the objects referencing
  them keep them;
* ``cache/<namespace>/<engram>/<version>/<key>.json`` — an output cache entry;
* ``cache/<namespace>/<engram>/<version>/<key>/<blob>`` — a blob the entry's output
  references (copied there when the entry was written, so a cache entry never depends on
  the StepRun that produced it): no owner but the references to it.

Invariants (pure): a blob file name is one segment (dehydration escapes ``/``), so the
depth under a prefix tells the layouts apart; :func:`owner_of` returns ``None`` for any key
it cannot attribute (another layout, or prefixes configured so that two layouts collide),
and such keys are never removed by the clean-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

#: Prefix of the output cache (reference §7.6; not configurable).
CACHE_PREFIX: Final = "cache"
#: Suffix of a cache entry's key.
ENTRY_SUFFIX: Final = ".json"

OwnerKind = Literal["step-output", "named-input", "run-input", "cache-entry", "cache-blob"]


@dataclass(frozen=True, slots=True)
class Owner:
    """What a blob belongs to: ``namespace``/``name`` of its StepRun (``step-output``), the
    name of its StepRun or StoryRun (``named-input``), or the cache entry key
    (``cache-blob``: ``name`` is the entry's key); nothing for the other kinds."""

    kind: OwnerKind
    namespace: str = ""
    name: str = ""


def _parts(key: str, prefix: str) -> list[str] | None:
    head = prefix.strip("/") + "/"
    return key[len(head) :].split("/") if key.startswith(head) else None


def owner_of(key: str, output_prefix: str, input_prefix: str) -> Owner | None:
    """The owner of the blob ``key`` (``None``: not a layout this module knows)."""
    cache = _parts(key, CACHE_PREFIX)
    if cache is not None:
        if len(cache) == 4 and cache[3].endswith(ENTRY_SUFFIX):
            return Owner("cache-entry")
        if len(cache) == 5:
            return Owner("cache-blob", name=f"{CACHE_PREFIX}/{'/'.join(cache[:4])}{ENTRY_SUFFIX}")
        return None
    same = output_prefix.strip("/") == input_prefix.strip("/")
    out = _parts(key, output_prefix)
    if out is not None and len(out) == 3 and not same:
        return Owner("step-output", out[0], out[1])
    into = _parts(key, input_prefix)
    if into is not None and len(into) == 2:
        return Owner("named-input", name=into[0])
    if into is not None and len(into) == 3 and not same:
        return Owner("run-input", into[0], into[1])
    return None


def step_run_prefixes(output_prefix: str, input_prefix: str, namespace: str, name: str) -> list[str]:
    """Where StepRun ``namespace/name`` writes: its outputs, and its offloaded inputs."""
    return [f"{output_prefix.strip('/')}/{namespace}/{name}", named_input_prefix(input_prefix, name)]


def named_input_prefix(input_prefix: str, name: str) -> str:
    """Where the inputs of the StepRun or StoryRun named ``name`` are offloaded."""
    return f"{input_prefix.strip('/')}/{name}"


def cache_blob_dir(entry_key: str) -> str:
    """Where the blobs referenced by the cache entry ``entry_key`` are kept."""
    return entry_key[: -len(ENTRY_SUFFIX)] if entry_key.endswith(ENTRY_SUFFIX) else entry_key


def parent(key: str) -> str:
    """The ``prefix/id`` part of a blob key (everything before its file name)."""
    return key.rpartition("/")[0]
