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

from collections.abc import Mapping
from pathlib import Path

from bobrapet.host.config_file import ConfigFileError
from bobrapet.storage.errors import StorageConfigError
from bobrapet.storage.settings import PATH, PROVIDER, StorageSettings

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
