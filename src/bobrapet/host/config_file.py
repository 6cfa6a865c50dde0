"""``<home>/config.yaml``: the embedded operator configuration (reference §9.1 keys).

The file is a flat YAML mapping of the ConfigMap's dotted keys, e.g.::

    timeout.default-step: 10m
    storyrun.global-concurrency: 4
    storyrun.queue.batch.concurrency: 2

Invariants: every process of the home reads it once at start through :func:`load` (the
one loader of :class:`~bobrapet.engine.config.EngineConfig` and the admission limits);
a missing file means the defaults; a broken one is an error naming the file and key, never
a silent fallback. :func:`set_value` validates the whole new configuration before it
replaces the file atomically (write to a temporary file, then rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from bobrapet.engine.operator_config import Settings

# The engine package is imported where first needed: read-only commands start faster without it.

CONFIG_FILE = "config.yaml"


class ConfigFileError(Exception):
    """The home's configuration file cannot be used (message names the file and key)."""


def path_of(home: Path) -> Path:
    return home / CONFIG_FILE


def read_raw(home: Path) -> dict[str, Any]:
    path = path_of(home)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise ConfigFileError(f"{path}: cannot be read: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigFileError(f"{path}: not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: must be a mapping of keys to values, got {type(data).__name__}")
    return data


def load(home: Path) -> Settings:
    """The configuration of ``home`` (defaults when it has no config file)."""
    from bobrapet.engine.operator_config import ConfigError, parse_settings

    raw = read_raw(home)
    try:
        return parse_settings(raw)
    except ConfigError as err:
        raise ConfigFileError(f"{path_of(home)}: {err}") from None


def _scalar(text: str) -> Any:
    """``"3"`` -> 3, ``"true"`` -> True, ``"5m"`` -> ``"5m"`` (as a YAML value would read)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, str | int | float | bool) else text


def set_value(home: Path, key: str, text: str) -> Any:
    """Validate ``key: text`` with the rest of the file and write it atomically; return the value.

    Raises :class:`~bobrapet.engine.operator_config.ConfigError` naming the key.
    """
    from bobrapet.engine.operator_config import parse_settings, parse_value

    value = _scalar(text)
    parse_value(key, value)  # ConfigError naming the key
    raw = read_raw(home)
    raw[key] = value
    parse_settings(raw)  # the whole file must stay valid
    _write(home, raw)
    return value


def unset_value(home: Path, key: str) -> bool:
    """Remove ``key`` from the file (back to its default); return whether it was set."""
    from bobrapet.engine.operator_config import parse_settings

    raw = read_raw(home)
    if key not in raw:
        return False
    del raw[key]
    parse_settings(raw)
    _write(home, raw)
    return True


def _write(home: Path, raw: dict[str, Any]) -> None:
    """Replace the file with ``raw`` atomically (readers see the old or the new file, whole)."""
    home.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".yaml", dir=home)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(
                "# Bobrapet embedded operator configuration (reference keys); see: bobrapet config view\n"
            )
            yaml.safe_dump(raw, handle, sort_keys=True, default_flow_style=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path_of(home))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
