"""The storage an engine process uses: ``controller.storage.*`` of config.yaml, the embedded
default and the environment (reference §7.5).

Invariants: a ``BUBU_*`` variable set in the process environment wins over the config file
(as the reference's operator only exports its configured settings where unset); the ``file``
provider stores under ``<home>/storage`` (a relative ``controller.storage.file.path`` is
relative to the home); S3 credentials come only from the
environment (``BUBU_S3_ACCESS_KEY_ID``... or the AWS chain), never from the config file; a bad
combination raises :class:`~bobrapet.host.config_file.ConfigFileError` naming the setting.

The StoryRun-input seams of a process on a home (none of them when storage is disabled):

* :func:`run_inputs_offload` — the StoryTrigger controller's offload of a run's oversized
  inputs, blobs under ``inputs/<storyRunName>/`` (reference §7.2);
* :func:`submission_offload` — a submitter's (``bobrapet trigger``, ``ctx.trigger_story``)
  offload before the trigger is stored, blobs under ``inputs/<ns>/<run name>-<12 hex>/``: the
  derived StoryRun name and the start of the inputs' canonical hash, so submitting the same
  request again writes the same blobs and yields the same references (the same trigger),
  while other inputs under the same key never overwrite them;
* :func:`inputs_hydrator` — admission's reading of offloaded StoryRun inputs (the
  trigger-input-hash check), at most ``max_controller_hydration`` bytes.

Storage calls run in threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bobrapet.api.admission.identity import canonical_input_hash
from bobrapet.host.config_file import ConfigFileError
from bobrapet.storage.dehydrate import Dehydrator, encoded_size
from bobrapet.storage.errors import StorageConfigError, StorageDisabled, StorageError
from bobrapet.storage.hydrate import Hydrator, StoreLoader
from bobrapet.storage.settings import PATH, PROVIDER, StorageSettings, open_store

if TYPE_CHECKING:
    from bobrapet.host.embedded import ControlPlane

STORAGE_DIR = "storage"


def resolve_storage(configured: StorageSettings, home: Path, environ: Mapping[str, str]) -> StorageSettings:
    """The effective storage settings of an engine on ``home``."""
    env = dict(configured.to_env())
    if configured.provider == "file":  # a relative path is relative to the home
        env[PATH] = str((home / (configured.path or STORAGE_DIR)).absolute())
    overrides = {k: v for k, v in environ.items() if k.startswith("BUBU_") and v != ""}
    if overrides.get(PROVIDER, "").strip().lower() == "file" and PATH not in overrides:
        overrides[PATH] = str((home / STORAGE_DIR).absolute())
    env.update(overrides)
    try:
        return StorageSettings.from_env(env)
    except StorageConfigError as exc:
        raise ConfigFileError(f"storage: {exc.message} (controller.storage.* in config.yaml)") from None


def home_storage(home: Path) -> StorageSettings:
    """The effective storage settings of a process on ``home`` (its config file and env)."""
    from bobrapet.host.config_file import load

    return resolve_storage(load(home).engine.storage, home, os.environ)


def _offload_inputs(settings: StorageSettings, limit: int, id: str, inputs: dict[str, Any]) -> Any:
    store = open_store(settings)
    dehydrator = Dehydrator(store, limit=limit, prefix=settings.input_prefix, id=id, what="input")
    return dehydrator.dehydrate_inputs(inputs)


#: ``(namespace, story run name, inputs) -> blob id`` of an :class:`InputsOffload`.
BlobId = Callable[[str, str, dict[str, Any]], str]


class InputsOffload:
    """An :class:`~bobrapet.triggers.OffloadInputs`: inputs above ``limit`` bytes go to storage
    under ``inputs/<blob_id(...)>/``; inputs that fit come back as they are."""

    def __init__(self, settings: StorageSettings, limit: int, blob_id: BlobId) -> None:
        self.settings = settings
        self.limit = limit
        self.blob_id = blob_id

    async def __call__(self, namespace: str, story_run_name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        if not inputs or encoded_size(inputs) <= self.limit:
            return inputs
        blob = self.blob_id(namespace, story_run_name, inputs)
        offloaded: dict[str, Any] = await asyncio.to_thread(
            _offload_inputs, self.settings, self.limit, blob, inputs
        )
        return offloaded


def _run_blob(namespace: str, story_run_name: str, inputs: dict[str, Any]) -> str:
    return story_run_name


def _submission_blob(namespace: str, story_run_name: str, inputs: dict[str, Any]) -> str:
    return f"{namespace}/{story_run_name}-{canonical_input_hash(inputs)[:12]}"


def run_inputs_offload(settings: StorageSettings, limit: int) -> InputsOffload | None:
    """The StoryTrigger controller's offload (None: storage disabled or no limit)."""
    return InputsOffload(settings, limit, _run_blob) if settings.enabled and limit > 0 else None


def submission_offload(settings: StorageSettings, limit: int) -> InputsOffload | None:
    """A submitter's offload (None: storage disabled or no limit)."""
    return InputsOffload(settings, limit, _submission_blob) if settings.enabled and limit > 0 else None


def _hydrate(settings: StorageSettings, budget: int, value: Any) -> Any:
    store = open_store(settings)
    if store is None:
        raise StorageDisabled("storage is disabled (controller.storage.provider)")
    return Hydrator(StoreLoader(store, budget=budget)).hydrate(value)


def inputs_hydrator(settings: StorageSettings, budget: int) -> Callable[[Any], Any]:
    """``async (value) -> value`` with its storage references replaced by the stored data
    (raises :class:`~bobrapet.storage.errors.StorageError`)."""

    async def hydrate(value: Any) -> Any:
        return await asyncio.to_thread(_hydrate, settings, budget, value)

    return hydrate


async def offload_run_inputs(plane: ControlPlane, namespace: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """StoryRun ``spec.inputs`` larger than ``storyrun.max-inline-inputs-size``, with their large
    values offloaded to storage (``inputs/<namespace>/<random id>/``, as the SDK's TriggerStory
    does without a token); as they are when small, or when storage is disabled (admission then
    rejects them, naming the limit). Raises :class:`ConfigFileError` for bad storage settings."""
    limit = plane.config.storyrun_max_inline_inputs
    if not inputs or not limit or encoded_size(inputs) <= limit:
        return inputs
    settings = home_storage(plane.home)
    if not settings.enabled:
        return inputs
    try:
        blob = f"{namespace}/{uuid.uuid4().hex}"
        result = await asyncio.to_thread(_offload_inputs, settings, limit, blob, inputs)
    except StorageError as exc:
        raise ConfigFileError(f"cannot offload the run's inputs to storage: {exc.message}") from None
    offloaded: dict[str, Any] = result  # a dict, or one reference map for the whole inputs
    return offloaded
