"""The storage an engine process uses: ``controller.storage.*`` of config.yaml, the embedded
default and the environment (reference §7.5).

Invariants: a ``BUBU_*`` variable set in the process environment wins over the config file
(as the reference's operator only exports its configured settings where unset); the ``file``
provider stores under ``<home>/storage`` (a relative ``controller.storage.file.path`` is
relative to the home); S3 credentials come only from the
environment (``BUBU_S3_ACCESS_KEY_ID``... or the AWS chain), never from the config file; a bad
combination raises :class:`~bobrapet.host.config_file.ConfigFileError` naming the setting.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bobrapet.host.config_file import ConfigFileError
from bobrapet.storage.dehydrate import Dehydrator, encoded_size
from bobrapet.storage.errors import StorageConfigError, StorageError
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


def _offload_inputs(settings: StorageSettings, limit: int, namespace: str, inputs: dict[str, Any]) -> Any:
    store = open_store(settings)
    dehydrator = Dehydrator(
        store, limit=limit, prefix=settings.input_prefix, id=f"{namespace}/{uuid.uuid4().hex}", what="input"
    )
    return dehydrator.dehydrate_inputs(inputs)


async def offload_run_inputs(plane: ControlPlane, namespace: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """StoryRun ``spec.inputs`` larger than ``storyrun.max-inline-inputs-size``, with their large
    values offloaded to storage (``inputs/<namespace>/<random id>/``, as the SDK's TriggerStory
    does without a token); as they are when small, or when storage is disabled (admission then
    rejects them, naming the limit). Raises :class:`ConfigFileError` for bad storage settings."""
    limit = plane.config.storyrun_max_inline_inputs
    if not inputs or not limit or encoded_size(inputs) <= limit:
        return inputs
    from bobrapet.host.config_file import load

    settings = resolve_storage(load(plane.home).engine.storage, plane.home, os.environ)
    if not settings.enabled:
        return inputs
    try:
        result = await asyncio.to_thread(_offload_inputs, settings, limit, namespace, inputs)
    except StorageError as exc:
        raise ConfigFileError(f"cannot offload the run's inputs to storage: {exc.message}") from None
    offloaded: dict[str, Any] = result  # a dict, or one reference map for the whole inputs
    return offloaded
