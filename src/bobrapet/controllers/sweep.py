"""What the clean-up may remove: pure decisions over what exists and what is stored.

A blob, log file or StoryTrigger is removable when the object it belongs to is gone and
nothing still needs it:

* a blob (:mod:`bobrapet.storage.layout`): its owner is gone (``step-output``: no StepRun of
  that namespace and name; ``named-input``: no StepRun or StoryRun of that name; run inputs
  and cache copies have no owner), no live object and no fresh cache entry references its
  key, and it was last modified before the given instant (a blob written later belongs to a
  successor of the same name); a key of unknown layout, and a cache entry itself (removed
  when it expires), never is;
* a step log ``<steprun>.log``: no StepRun of that name in its namespace and no StoryRun that
  may own it (its name followed by ``-`` begins the StepRun's name, or, for a hashed name,
  its name begins with the hashed name's prefix, see :func:`bobrapet.engine.compose_dns1123`)
  whose children are kept (``status.childrenCleanedAt`` unset: a redrive recreates them and
  appends to their logs); an inputs log ``<run>.inputs.jsonl``: no StoryRun of that name;
* a decided StoryTrigger: its StoryRun (by uid) is gone, or it names none (``Rejected``) and
  its decision is older than the run retention (``None``: kept forever).

:class:`Suspects` makes a periodic sweep two-phase: something is removed only when two
consecutive sweeps found it removable, so an object created between reading the storage and
reading the caches (or a cache lagging behind the store) never loses what it needs.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from bobrapet.api.timestamps import parse_timestamp
from bobrapet.engine import fresh_output
from bobrapet.executors.logpath import INPUTS_SUFFIX
from bobrapet.storage.backend import BlobInfo
from bobrapet.storage.layout import Owner
from bobrapet.storage.refs import storage_keys

#: Suffix of a step log.
LOG_SUFFIX: Final = ".log"
#: A hashed DNS-1123 name ends with ``-`` and 12 hex digits (see ``compose_dns1123``).
_HASH_TAIL: Final = 13
_MAX_LABEL: Final = 63
#: The decisions after which a StoryTrigger has nothing left to do.
DECIDED: Final = ("Created", "Reused", "Rejected")


@dataclass(frozen=True)
class Live:
    """What exists now (from the engine's caches or a fresh list)."""

    #: ``(namespace, name)`` of every StepRun and StoryRun.
    step_runs: frozenset[tuple[str, str]] = frozenset()
    story_runs: frozenset[tuple[str, str]] = frozenset()
    #: Names of StoryRuns whose children are kept (no ``childrenCleanedAt``), sorted, per namespace.
    open_runs: Mapping[str, list[str]] = field(default_factory=dict)
    #: Names of every StepRun and StoryRun, whatever their namespace.
    names: frozenset[str] = frozenset()
    #: uids of every StoryRun.
    run_uids: frozenset[str] = frozenset()
    #: Storage keys referenced by live objects and fresh cache entries.
    refs: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        step_runs: Iterable[Mapping[str, Any]],
        story_runs: Iterable[Mapping[str, Any]],
        refs: Iterable[str],
    ) -> Live:
        steps = {_key(obj) for obj in step_runs}
        runs: set[tuple[str, str]] = set()
        uids: set[str] = set()
        open_runs: dict[str, list[str]] = {}
        for run in story_runs:
            key = _key(run)
            runs.add(key)
            uids.add(str((run.get("metadata") or {}).get("uid") or ""))
            if not (run.get("status") or {}).get("childrenCleanedAt"):
                open_runs.setdefault(key[0], []).append(key[1])
        for names in open_runs.values():
            names.sort()
        return cls(
            step_runs=frozenset(steps),
            story_runs=frozenset(runs),
            open_runs=open_runs,
            names=frozenset(name for _, name in steps | runs),
            run_uids=frozenset(uids),
            refs=frozenset(refs),
        )


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or "default"), str(metadata.get("name") or "")


# -- blobs -------------------------------------------------------------------------------------
def owner_alive(owner: Owner, live: Live) -> bool:
    """Whether the object owning a blob exists (run inputs and cache copies have none)."""
    if owner.kind == "step-output":
        return (owner.namespace, owner.name) in live.step_runs
    if owner.kind == "named-input":
        return owner.name in live.names
    return owner.kind == "cache-entry"


def removable_blob(info: BlobInfo, owner: Owner | None, live: Live, *, before: float) -> bool:
    """Whether the blob ``info`` may be removed (see the module docstring)."""
    if owner is None or owner.kind == "cache-entry":
        return False
    return info.modified < before and info.key not in live.refs and not owner_alive(owner, live)


@dataclass(frozen=True)
class CacheRecord:
    """What the clean-up needs of an output cache entry: the keys its output references and
    when it expires (``None``: never)."""

    keys: frozenset[str]
    expires: datetime | None

    def fresh(self, now: datetime) -> bool:
        return self.expires is None or now < self.expires


def cache_record(record: Any) -> CacheRecord | None:
    """The :class:`CacheRecord` of a stored entry (``None``: not a usable entry), by the rules
    of :func:`bobrapet.engine.fresh_output`."""
    created = parse_timestamp(record.get("createdAt")) if isinstance(record, Mapping) else None
    usable, output = fresh_output(record, created or datetime.now(UTC))
    if not usable:
        return None
    ttl = record.get("ttlSeconds")
    expires = created + timedelta(seconds=ttl) if created and isinstance(ttl, int) and ttl > 0 else None
    return CacheRecord(frozenset(storage_keys(output)), expires)


# -- logs --------------------------------------------------------------------------------------
def possible_runs(step_run: str) -> Iterable[str]:
    """Names a StoryRun owning StepRun ``step_run`` may have: each part before a ``-``."""
    for index, char in enumerate(step_run):
        if char == "-" and index:
            yield step_run[:index]


def _hashed_prefix(name: str) -> str | None:
    tail = name[-_HASH_TAIL:]
    if len(name) == _MAX_LABEL and tail[0] == "-" and all(c in "0123456789abcdef" for c in tail[1:]):
        return name[:-_HASH_TAIL]
    return None


def run_may_own(step_run: str, runs: list[str]) -> bool:
    """Whether one of the sorted run names ``runs`` may own StepRun ``step_run``."""
    if not runs:
        return False
    found = set(runs)
    if any(name in found for name in possible_runs(step_run)):
        return True
    prefix = _hashed_prefix(step_run)
    if prefix is None:
        return False
    at = bisect.bisect_left(runs, prefix)
    return at < len(runs) and runs[at].startswith(prefix)


def log_owner_alive(namespace: str, file_name: str, live: Live) -> bool | None:
    """Whether the owner of log file ``file_name`` of ``namespace`` exists (``None``: not a
    log file name)."""
    if file_name.endswith(INPUTS_SUFFIX):
        return (namespace, file_name[: -len(INPUTS_SUFFIX)]) in live.story_runs
    if file_name.endswith(LOG_SUFFIX):
        step_run = file_name[: -len(LOG_SUFFIX)]
        if (namespace, step_run) in live.step_runs:
            return True
        return run_may_own(step_run, live.open_runs.get(namespace, []))
    return None


# -- StoryTriggers -----------------------------------------------------------------------------
def trigger_view(trigger: Mapping[str, Any]) -> dict[str, Any]:
    """What the clean-up keeps of a StoryTrigger: its decision, run and input references."""
    status = trigger.get("status") or {}
    metadata = trigger.get("metadata") or {}
    ref = status.get("storyRunRef") or {}
    observed = status.get("observedGeneration")
    decided = status.get("decision") in DECIDED and observed in (None, metadata.get("generation"))
    view: dict[str, Any] = {"decided": decided, "run": str(ref.get("uid") or "") if ref else ""}
    view["at"] = status.get("completedAt") or status.get("acceptedAt") or ""
    keys = storage_keys((trigger.get("spec") or {}).get("inputs"))
    if keys:
        view["refs"] = sorted(keys)
    return view


def trigger_removable(view: Mapping[str, Any], live: Live, now: datetime, retention: float | None) -> bool:
    """Whether a StoryTrigger (its :func:`trigger_view`) has nothing left to do."""
    if not view.get("decided"):
        return False
    if view.get("run"):
        return str(view["run"]) not in live.run_uids
    if retention is None:
        return False
    at = parse_timestamp(view.get("at"))
    return at is not None and at + timedelta(seconds=max(0.0, retention)) <= now


# -- two phases --------------------------------------------------------------------------------
class Suspects:
    """Things found removable by the previous sweep; only those found again are confirmed."""

    def __init__(self) -> None:
        self._last: set[Hashable] = set()

    def confirm(self, found: Iterable[Hashable]) -> set[Hashable]:
        """The members of ``found`` that the previous call found too."""
        current = set(found)
        confirmed = current & self._last
        self._last = current
        return confirmed

    def __len__(self) -> int:
        return len(self._last)
