"""The Story each run executes: its stored copy once started, the current Story before.

A started StoryRun records a :class:`~bobrapet.engine.story_pin.StoryPin` in
``status.storySnapshot``; the copy it names is an immutable ConfigMap in the run's
namespace, owned by the run (garbage-collected with it), whose key :data:`DATA_KEY` holds
the canonical JSON of the Story's identity and spec. The StoryRun and StepRun controllers
(and the CLI) read a run's Story only through :class:`StorySnapshots`, so an edit of the
Story never reaches a run that already started — nor its StepRuns, which carry the hash
of the copy (annotation ``bobrapet.bubustack.io/story-snapshot``).

Invariants:

* Parsed copies are memoised by content hash (bounded, least recently used dropped
  first): runs of the same Story content share ONE parsed model, hence one compiled graph
  (``compile_graph`` caches per model object). The current Story is hashed once per
  ``(uid, generation)``.
* A copy is read from the store only on a memo miss (after a restart, or in another engine
  process) and checked against its hash: a copy that is gone or altered is reported as a
  problem (the run fails with ``StoryReferenceInvalid``), never silently replaced by the
  current Story.
* Storing a copy is create-if-absent under a name derived from the run and the hash, so
  an engine that died between storing it and recording the pin converges on restart.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Final

from pydantic import ValidationError

from bobrapet.api import runmeta
from bobrapet.api.errors import AlreadyExists, NotFound
from bobrapet.api.kinds import CONFIG_MAP, STORY
from bobrapet.api.types.story import Story
from bobrapet.controllers.refs import namespace_of
from bobrapet.engine import StoryPin, canonical_json, content_hash, pin_for, snapshot_name
from bobrapet.runtime.cache import ObjectCache
from bobrapet.store.client import Client, Resource

#: ConfigMap key holding the copy (canonical JSON of the Story's identity and spec).
DATA_KEY: Final = "story.json"
#: Annotations of the ConfigMap: the content hash and the Story generation it was copied at.
HASH_ANNOTATION: Final = "bobrapet.bubustack.io/story-hash"
GENERATION_ANNOTATION: Final = "bobrapet.bubustack.io/story-generation"
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MAX_MODELS: Final = 512


@dataclass(frozen=True, slots=True)
class RunStory:
    """The Story one run executes, and where it comes from."""

    namespace: str
    name: str
    story: Story | None
    #: The pin of ``story``: recorded in the run's status, or the one to record at start.
    pin: StoryPin | None = None
    #: Body of the copy for an unpinned run (what to store when the run starts).
    body: dict[str, Any] | None = None
    #: Why the recorded copy could not be read (``story`` is then ``None``).
    problem: str | None = None


def story_ref_of(run: Resource) -> tuple[str, str]:
    """(namespace, name) of a run's ``spec.storyRef``."""
    ref = (run.get("spec") or {}).get("storyRef") or {}
    return str(ref.get("namespace") or namespace_of(run)), str(ref.get("name") or "")


def config_map(pin: StoryPin, body: dict[str, Any], run: Resource, owner: dict[str, Any]) -> Resource:
    """The ConfigMap that stores ``body`` for ``run`` under ``pin.name``."""
    metadata = run["metadata"]
    annotations = {HASH_ANNOTATION: pin.hash}
    if pin.generation is not None:
        annotations[GENERATION_ANNOTATION] = str(pin.generation)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": pin.name,
            "namespace": metadata.get("namespace"),
            "labels": {
                runmeta.STORYRUN: runmeta.run_label(str(metadata["name"])),
                runmeta.STORY_NAME: str((body.get("metadata") or {}).get("name") or ""),
                MANAGED_BY: "bobrapet",
            },
            "annotations": annotations,
            "ownerReferences": [owner],
        },
        "data": {DATA_KEY: canonical_json(body)},
        "immutable": True,
    }


def body_of(config: Resource, digest: str) -> tuple[dict[str, Any] | None, str | None]:
    """(body, problem): the copy stored in ``config`` if its content hashes to ``digest``."""
    text = (config.get("data") or {}).get(DATA_KEY)
    name = (config.get("metadata") or {}).get("name")
    try:
        body = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or content_hash(body) != digest:
        return None, f"ConfigMap '{name}' does not hold the Story copy {digest} this run executes"
    return body, None


class StorySnapshots:
    """Stories of runs, for the run controllers (see the module docstring)."""

    def __init__(self, client: Client, stories: ObjectCache) -> None:
        self._client = client
        self._stories = stories
        self._models: OrderedDict[str, Story] = OrderedDict()
        #: (namespace, name) -> ((uid, generation), pin without a name, body)
        self._current: dict[tuple[str, str], tuple[Any, StoryPin, dict[str, Any]]] = {}

    # -- parsed copies ----------------------------------------------------------------------
    def _model(self, digest: str, body: dict[str, Any]) -> Story | None:
        hit = self._models.get(digest)
        if hit is not None:
            self._models.move_to_end(digest)
            return hit
        try:
            model = Story.model_validate(body)
        except ValidationError:
            return None
        self._models[digest] = model
        if len(self._models) > MAX_MODELS:
            self._models.popitem(last=False)
        return model

    def cached_model(self, digest: str) -> Story | None:
        return self._models.get(digest)

    # -- the current Story (runs that did not start) ----------------------------------------
    def _current_of(
        self, namespace: str, name: str, obj: Resource
    ) -> tuple[StoryPin, dict[str, Any], Story | None]:
        """(pin without a name, body, parsed model) of the stored Story ``obj``."""
        metadata = obj.get("metadata") or {}
        stamp = (metadata.get("uid"), metadata.get("generation"))
        hit = self._current.get((namespace, name))
        if hit is None or hit[0] != stamp:
            template, body = pin_for("", obj)
            hit = (stamp, template, body)
            self._current[(namespace, name)] = hit
        _, template, body = hit
        return template, body, self._model(template.hash, body)

    def prepare(self, story: Resource) -> Story | None:
        """Parse a stored Story now (memoised), so its first run does not pay for it."""
        metadata = story.get("metadata") or {}
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name"))
        return self._current_of(namespace, name, story)[2]

    def current(self, run: Resource) -> RunStory:
        namespace, name = story_ref_of(run)
        obj = self._stories.get(name, namespace)
        if obj is None:
            return RunStory(namespace, name, None)
        template, body, model = self._current_of(namespace, name, obj)
        pin = replace(template, name=snapshot_name(str(run["metadata"]["name"]), template.hash))
        return RunStory(namespace, name, model, pin=pin, body=body)

    # -- a run's Story ----------------------------------------------------------------------
    def cached(self, run: Resource) -> RunStory:
        """Like :meth:`of_run` without I/O: a recorded copy not in memory yet falls back to the
        current Story (for estimates such as priority ordering, never for execution)."""
        pin = StoryPin.from_status(run.get("status"))
        if pin is not None:
            model = self._models.get(pin.hash)
            if model is not None:
                namespace, name = story_ref_of(run)
                return RunStory(namespace, name, model, pin=pin)
        return self.current(run)

    async def of_run(self, run: Resource) -> RunStory:
        """The Story ``run`` executes: its recorded copy, else (not started) the current Story."""
        pin = StoryPin.from_status(run.get("status"))
        if pin is None:
            return self.current(run)
        return await self._pinned(run, pin)

    async def of_step_run(self, run: Resource, step_run: Resource) -> RunStory:
        """The Story a StepRun belongs to: the copy named by its annotation, else its run's."""
        digest = ((step_run.get("metadata") or {}).get("annotations") or {}).get(runmeta.STORY_SNAPSHOT)
        recorded = StoryPin.from_status(run.get("status"))
        if digest and (recorded is None or recorded.hash != digest):
            recorded = StoryPin(name=snapshot_name(str(run["metadata"]["name"]), digest), hash=digest)
        if recorded is None:
            return self.current(run)
        return await self._pinned(run, recorded)

    async def _pinned(self, run: Resource, pin: StoryPin) -> RunStory:
        namespace, name = story_ref_of(run)
        model = self._models.get(pin.hash)
        if model is not None:
            self._models.move_to_end(pin.hash)
            return RunStory(namespace, name, model, pin=pin)
        body, problem = await self._read(namespace_of(run), pin)
        if body is not None:
            model = self._model(pin.hash, body)
            if model is None:
                problem = f"the Story copy in ConfigMap '{pin.name}' is not a valid Story"
        if model is None:
            return RunStory(namespace, name, None, pin=pin, problem=problem)
        return RunStory(namespace, name, model, pin=pin)

    async def _read(self, namespace: str, pin: StoryPin) -> tuple[dict[str, Any] | None, str | None]:
        try:
            config = await self._client.get(CONFIG_MAP, pin.name, namespace or None)
        except NotFound:
            return None, (
                f"the copy of the Story this run executes (ConfigMap '{pin.name}') is gone; "
                "redrive the run with --latest to run the current Story"
            )
        return body_of(config, pin.hash)

    # -- storing ----------------------------------------------------------------------------
    async def store(self, run: Resource, pin: StoryPin, body: dict[str, Any], owner: dict[str, Any]) -> None:
        """Create the copy (create-if-absent); an existing object must hold the same copy."""
        namespace = namespace_of(run)
        try:
            await self._client.create(config_map(pin, body, run, owner), trusted=True)  # the admitted Story
        except AlreadyExists:
            existing = await self._client.get(CONFIG_MAP, pin.name, namespace or None)
            _, problem = body_of(existing, pin.hash)
            if problem is not None:
                raise RuntimeError(f"{problem}; delete it so the run can record its Story") from None
        self._model(pin.hash, body)


async def read_run_story(client: Client, run: Resource) -> Resource | None:
    """The Story (wire dict) ``run`` executes, for display: its copy, else the current Story.

    A copy has only the Story's identity and spec (no status). ``None`` when neither exists.
    While a ``redrive --latest`` is pending the run is about to take the current Story.
    """
    pin = StoryPin.from_status(run.get("status"))
    if pin is not None and not _latest_redrive_pending(run):
        try:
            config = await client.get(CONFIG_MAP, pin.name, namespace_of(run) or None)
        except NotFound:
            config = None
        if config is not None:
            body, _ = body_of(config, pin.hash)
            if body is not None:
                return body
    namespace, name = story_ref_of(run)
    try:
        return await client.get(STORY, name, namespace or None)
    except NotFound:
        return None


def _latest_redrive_pending(run: Resource) -> bool:
    notes = (run.get("metadata") or {}).get("annotations") or {}
    token = notes.get(runmeta.REDRIVE_TOKEN)
    return (
        bool(token)
        and token == notes.get(runmeta.REDRIVE_LATEST)
        and token != notes.get(runmeta.REDRIVE_OBSERVED)
    )
