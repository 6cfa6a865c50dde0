"""The clean-up of an engine process: what deleted runs leave behind is removed.

Deleting a StepRun or StoryRun (child TTL, retention, ``bobrapet delete``, the HTTP API)
removes objects from the store only; this runnable removes what they leave outside it, in
two ways:

* **deletions seen** — every ``DELETED`` event of a StepRun, StoryRun or StoryTrigger is
  noted; :data:`SETTLE` seconds after the first of a burst, one batch (:meth:`Leftovers.flush`)
  deletes the StoryTriggers of the deleted runs (their work is done), the inputs logs of the
  deleted runs and the step logs of deleted StepRuns whose run is gone too (the engine removes
  logs itself when it deletes; this covers the other ways), and the blobs under the deleted
  StepRuns' and StoryRuns' prefixes and the run inputs their references named, each when
  :func:`~bobrapet.controllers.sweep.removable_blob` allows it, with the instant the deletion
  was seen as the bound (a successor of the same name keeps what it writes);
* **a periodic sweep** (:meth:`Leftovers.sweep`, every ``controller.cleanup-interval``, the
  first after :data:`FIRST_SWEEP` at most) for what no deletion was seen for — the process was
  down, or its watch lost events: blobs, logs and decided StoryTriggers whose owners are gone
  (two-phase, see :class:`~bobrapet.controllers.sweep.Suspects`, and only things older than
  :data:`MIN_AGE`); temporaries of interrupted writes older than :data:`TEMP_AGE`; expired
  output cache entries, with their copied blobs once nothing references them. Blobs whose
  owner is gone are swept from the ``file`` store always, from S3 only with
  ``controller.storage.s3.sweep-orphans`` (a bucket may be shared with other homes).

Invariants: the caches (every StepRun and StoryRun, a projection of the StoryTriggers) say
what exists; storage and file-system work runs in a thread; a failure is logged and the work
is tried again by the next batch or sweep, never raised out of the task (at most
:data:`MAX_PENDING` deletions wait for a batch); :meth:`stop` first handles the deletions
already seen (for at most :data:`STOP_GRACE` seconds), so a short-lived engine that deleted
runs leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bobrapet.api import runmeta
from bobrapet.api.errors import NotFound
from bobrapet.api.kinds import STEP_RUN, STORY_RUN, STORY_TRIGGER
from bobrapet.controllers import runs, sweep
from bobrapet.controllers.live_refs import ReferencedKeys
from bobrapet.controllers.steplog import log_files
from bobrapet.engine import EngineConfig
from bobrapet.executors.logpath import inputs_log_path, step_log_path
from bobrapet.runtime.manager import Manager
from bobrapet.storage.backend import BlobInfo, BlobStore
from bobrapet.storage.envelope import parse_envelope
from bobrapet.storage.errors import StorageError
from bobrapet.storage.file import FileStore
from bobrapet.storage.layout import (
    CACHE_PREFIX,
    Owner,
    named_input_prefix,
    owner_of,
    parent,
    step_run_prefixes,
)
from bobrapet.storage.refs import storage_keys
from bobrapet.storage.settings import open_store
from bobrapet.store.client import Resource, WatchEvent

log = logging.getLogger("bobrapet.controllers.leftovers")

NAME: Final = "leftovers"
#: Seconds between the first deletion of a burst and the batch that cleans up after it.
SETTLE: Final = 1.0
#: The first sweep comes at most this long after the engine started.
FIRST_SWEEP: Final = 60.0
#: A sweep leaves alone what was modified less than this long ago.
MIN_AGE: Final = 60.0
#: Temporary files of writes older than this are leftovers of a crash.
TEMP_AGE: Final = 3600.0
#: How long stopping may spend on the deletions already seen.
STOP_GRACE: Final = 5.0
#: Deletions kept for the next batch at most (when batches keep failing, the oldest are left
#: to the sweep, so memory stays bounded).
MAX_PENDING: Final = 100_000
#: StoryTriggers (cleaned-up projection) by the uid of their StoryRun.
BY_RUN_UID: Final = "by-run-uid"


@dataclass(frozen=True)
class Gone:
    """One deletion seen: what was deleted, when (wall clock), and what it referenced."""

    kind: str
    namespace: str
    name: str
    uid: str
    at: float
    #: A StepRun's StoryRun (its label).
    run: str = ""
    #: Storage keys the deleted object referenced (inputs, outputs).
    refs: frozenset[str] = frozenset()


@dataclass
class Batch:
    """What one batch or sweep removes (paths, keys) once the storage was read."""

    prefixes: dict[str, float] = field(default_factory=dict)
    logs: dict[Path, float] = field(default_factory=dict)


def gone_of(event: WatchEvent, at: float) -> Gone | None:
    """The :class:`Gone` of a ``DELETED`` event of a StepRun, StoryRun or StoryTrigger."""
    if event.type != "DELETED":
        return None
    obj = event.object
    metadata = obj.get("metadata") or {}
    kind = str(obj.get("kind") or "")
    namespace = str(metadata.get("namespace") or "default")
    name, uid = str(metadata.get("name") or ""), str(metadata.get("uid") or "")
    if kind not in (STEP_RUN.kind, STORY_RUN.kind, STORY_TRIGGER.kind):
        return None
    run = (runmeta.story_run_of(obj) or "") if kind == STEP_RUN.kind else ""
    return Gone(kind, namespace, name, uid, at, run=run, refs=frozenset(storage_keys(obj)))


class Leftovers:
    """The clean-up runnable of one engine (see the module docstring)."""

    def __init__(
        self,
        manager: Manager,
        home: Path,
        config: EngineConfig,
        *,
        background: bool = True,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client = manager.client
        #: Without it, nothing happens on its own: the owner calls :meth:`flush` / :meth:`sweep`.
        self.background = background
        self.clock = manager.clock
        self.home = home
        self.config = config
        self.wall = wall
        self.step_runs = runs.step_runs(manager)
        self.story_runs = runs.story_runs(manager)
        self.triggers = manager.projection(STORY_TRIGGER, NAME, sweep.trigger_view)
        self.triggers.add_index(BY_RUN_UID, lambda view: [view["run"]] if view.get("run") else [])
        for kind in (STEP_RUN, STORY_RUN, STORY_TRIGGER):
            manager.listen(kind, self._observe)
        self.refs = ReferencedKeys()
        self.suspects = sweep.Suspects()
        #: Cache entries read by earlier sweeps: key -> (modified, size, what it holds or None).
        self._entries: dict[str, tuple[float, int, sweep.CacheRecord | None]] = {}
        self._gone: list[Gone] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: What was removed so far, by kind of thing (``blobs``, ``logs``, ``triggers``...).
        self.removed: Counter[str] = Counter()
        self.sweeps = 0

    @property
    def name(self) -> str:
        return NAME

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None and self.background:
            self._task = asyncio.create_task(self._run(), name=NAME)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._gone:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_GRACE):
                    await self._guarded(self.flush)

    def _observe(self, event: WatchEvent) -> None:
        gone = gone_of(event, self.wall())
        if gone is not None:
            if len(self._gone) >= MAX_PENDING:  # batches keep failing: the sweep takes over
                del self._gone[: len(self._gone) // 2]
            self._gone.append(gone)
            self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + min(self.config.cleanup_interval, FIRST_SWEEP)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_sweep - loop.time()))
            if self._gone:
                await asyncio.sleep(SETTLE)  # the rest of the burst (a cascade) lands meanwhile
                self._wake.clear()
                await self._guarded(self.flush)
            else:
                self._wake.clear()
            if loop.time() >= next_sweep:
                await self._guarded(self.sweep)
                next_sweep = loop.time() + self.config.cleanup_interval

    async def _guarded(self, work: Callable[[], Any]) -> None:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("clean-up: %s failed (tried again later): %s", work.__name__, exc, exc_info=exc)

    # -- what exists ----------------------------------------------------------------------------
    def store(self) -> BlobStore | None:
        try:
            return open_store(self.config.storage)
        except StorageError as exc:
            log.warning("clean-up: cannot open the storage: %s", exc.message)
            return None

    def live(self, extra_refs: Iterable[str] = ()) -> sweep.Live:
        """What exists now, from the caches."""
        step_runs, story_runs = self.step_runs.list(), self.story_runs.list()
        refs = self.refs.collect([*step_runs, *story_runs])
        for view in self.triggers.list():
            refs.update(view.get("refs") or ())
        refs.update(extra_refs)
        return sweep.Live.of(step_runs, story_runs, refs)

    # -- deletions seen ------------------------------------------------------------------------
    async def flush(self) -> None:
        """Clean up after the deletions seen so far (see the module docstring); they are
        forgotten only once handled (an interrupted batch is handled again: every step is
        safe to repeat)."""
        gone = list(self._gone)
        if not gone:
            return
        for run in (g for g in gone if g.kind == STORY_RUN.kind):
            await self._delete_triggers(self.triggers.by_index(BY_RUN_UID, run.uid))
        live = self.live()
        batch = self._batch(gone, live)
        store = self.store()
        removed = await asyncio.to_thread(self._remove_batch, batch, live, store)
        del self._gone[: len(gone)]
        self._count(removed)

    def _batch(self, gone: list[Gone], live: sweep.Live) -> Batch:
        storage = self.config.storage
        batch = Batch()

        def prefix(key: str, at: float) -> None:
            batch.prefixes[key] = max(at, batch.prefixes.get(key, at))

        for g in gone:
            if g.kind == STEP_RUN.kind:
                if (g.namespace, g.name) in live.step_runs:
                    continue  # a successor of the same name owns the prefixes now
                prefixes = step_run_prefixes(storage.output_prefix, storage.input_prefix, g.namespace, g.name)
                for key in prefixes:
                    prefix(key, g.at)
                if not g.run or (g.namespace, g.run) not in live.story_runs:
                    batch.logs[step_log_path(self.home, g.namespace, g.name)] = g.at
            elif g.kind == STORY_RUN.kind and (g.namespace, g.name) not in live.story_runs:
                prefix(named_input_prefix(storage.input_prefix, g.name), g.at)
                batch.logs[inputs_log_path(self.home, g.namespace, g.name)] = g.at
            for key in g.refs:
                if parent(key):
                    prefix(parent(key), g.at)
        return batch

    def _remove_batch(self, batch: Batch, live: sweep.Live, store: BlobStore | None) -> Counter[str]:
        removed: Counter[str] = Counter()
        for path, before in batch.logs.items():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime <= before:
                    path.unlink()
                    removed["logs"] += 1
        if store is None:
            return removed
        for key, before in batch.prefixes.items():
            for info in list(store.list(key)):
                if sweep.removable_blob(info, self._owner(info.key), live, before=before):
                    store.delete(info.key)
                    removed["blobs"] += 1
        return removed

    def _owner(self, key: str) -> Owner | None:
        return owner_of(key, self.config.storage.output_prefix, self.config.storage.input_prefix)

    async def _delete_triggers(self, views: Iterable[Resource]) -> None:
        for view in views:
            metadata = view.get("metadata") or {}
            try:
                await self.client.delete(STORY_TRIGGER, str(metadata.get("name")), metadata.get("namespace"))
            except NotFound:
                continue
            self.removed["triggers"] += 1

    def _count(self, removed: Counter[str]) -> None:
        if removed:
            self.removed.update(removed)
            log.info("clean-up: removed %s", ", ".join(f"{n} {what}" for what, n in sorted(removed.items())))

    # -- the sweep ------------------------------------------------------------------------------
    async def sweep(self) -> None:
        """Remove leftovers no deletion was seen for (see the module docstring)."""
        now = self.wall()
        store = self.store()
        listing = await asyncio.to_thread(self._read_storage, store)
        live = self.live(extra_refs=listing.cache_refs)
        before = now - MIN_AGE
        suspects: set[Hashable] = set()
        orphans = store is not None and (isinstance(store, FileStore) or self.config.sweep_s3_orphans)
        for info in listing.blobs:
            owner = self._owner(info.key)
            if owner is None or (not orphans and owner.kind != "cache-blob"):
                continue
            if sweep.removable_blob(info, owner, live, before=before):
                suspects.add(("blob", info.key))
        for namespace, path, modified in listing.logs:
            if modified < before and sweep.log_owner_alive(namespace, path.name, live) is False:
                suspects.add(("log", str(path)))
        at = self.clock.now()
        retention = self.config.retention_seconds
        for view in self.triggers.list():
            if sweep.trigger_removable(view, live, at, retention):
                metadata = view.get("metadata") or {}
                suspects.add(("trigger", str(metadata.get("namespace")), str(metadata.get("name"))))
        confirmed = self.suspects.confirm(suspects)
        await self._delete_triggers(
            {"metadata": {"namespace": ns, "name": name}} for ns, name in _tagged(confirmed, "trigger")
        )
        removed = await asyncio.to_thread(self._remove_swept, confirmed, listing, store)
        self._count(removed)
        self.sweeps += 1

    def _read_storage(self, store: BlobStore | None) -> Listing:
        listing = Listing(logs=list(log_files(self.home)))
        if store is None:
            return listing
        storage = self.config.storage
        seen: set[str] = set()
        for prefix in dict.fromkeys((storage.output_prefix, storage.input_prefix, CACHE_PREFIX)):
            for info in store.list(prefix):
                if info.key in seen:
                    continue
                seen.add(info.key)
                listing.blobs.append(info)
                owner = self._owner(info.key)
                if owner is not None and owner.kind == "cache-entry":
                    self._read_entry(store, info, listing)
        for key in [k for k in self._entries if k not in seen]:
            del self._entries[key]
        if isinstance(store, FileStore):
            listing.temporaries = store.stale_temporaries(self.wall() - TEMP_AGE)
        return listing

    def _read_entry(self, store: BlobStore, info: BlobInfo, listing: Listing) -> None:
        """Note a cache entry's references, or that it expired (read once per version)."""
        known = self._entries.get(info.key)
        if known is not None and known[:2] == (info.modified, info.size):
            entry = known[2]
        else:
            try:
                entry = sweep.cache_record(parse_envelope(store.read(info.key), info.key))
            except StorageError as exc:
                log.info("clean-up: cache entry %s is unreadable (%s); removed", info.key, exc.message)
                entry = None
            self._entries[info.key] = (info.modified, info.size, entry)
        if entry is None or not entry.fresh(self.clock.now()):
            listing.expired.append(info.key)
        else:
            listing.cache_refs.update(entry.keys)

    def _remove_swept(
        self, confirmed: set[Hashable], listing: Listing, store: BlobStore | None
    ) -> Counter[str]:
        removed: Counter[str] = Counter()
        for (path,) in _tagged(confirmed, "log"):
            with contextlib.suppress(FileNotFoundError):
                Path(path).unlink()
                removed["logs"] += 1
        for path in listing.temporaries:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed["temporaries"] += 1
        if store is None:
            return removed
        for key in listing.expired:
            store.delete(key)
            self._entries.pop(key, None)
            removed["cache entries"] += 1
        for (key,) in _tagged(confirmed, "blob"):
            store.delete(key)
            removed["blobs"] += 1
        return removed


@dataclass
class Listing:
    """What a sweep read from the storage and the log directory."""

    blobs: list[BlobInfo] = field(default_factory=list)
    logs: list[tuple[str, Path, float]] = field(default_factory=list)
    #: Keys referenced by fresh cache entries; entries that expired.
    cache_refs: set[str] = field(default_factory=set)
    expired: list[str] = field(default_factory=list)
    temporaries: list[Path] = field(default_factory=list)


def _tagged(items: Iterable[Hashable], tag: str) -> list[tuple[Any, ...]]:
    """The members of ``items`` tagged ``tag`` (tuples ``(tag, ...)``), without the tag."""
    return [item[1:] for item in items if isinstance(item, tuple) and item and item[0] == tag]


def setup(manager: Manager, home: Path, config: EngineConfig) -> Leftovers:
    """The clean-up runnable of an engine on ``home``, registered with ``manager``."""
    leftovers = Leftovers(manager, home, config)
    manager.add_runnable(leftovers)
    return leftovers
