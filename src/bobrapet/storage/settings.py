"""Storage settings from the environment (reference §7.5), and opening the configured store.

The provider is chosen by ``BUBU_STORAGE_PROVIDER``: ``file`` (``BUBU_STORAGE_PATH``), ``s3``
(``BUBU_STORAGE_S3_BUCKET`` required; ``BUBU_STORAGE_S3_REGION``, ``BUBU_STORAGE_S3_ENDPOINT``,
``BUBU_S3_FORCE_PATH_STYLE``, ``BUBU_S3_ACCESS_KEY_ID``/``BUBU_S3_SECRET_ACCESS_KEY``/
``BUBU_S3_SESSION_TOKEN`` or the default AWS chain, ``BUBU_S3_MAX_RETRIES`` (3),
``BUBU_S3_MAX_BACKOFF`` (10s), ``BUBU_S3_TIMEOUT``, ``BUBU_S3_TLS``, ``BUBU_S3_MAX_PART_SIZE``,
``BUBU_S3_CONCURRENCY``, ``BUBU_S3_SSE`` (``s3``|``kms``) + ``BUBU_S3_SSE_KMS_KEY``), or
nothing (empty or ``none``: storage disabled). ``BUBU_STORAGE_TIMEOUT`` (300s) bounds each
operation; ``BUBU_STORAGE_OUTPUT_PREFIX``/``BUBU_STORAGE_INPUT_PREFIX`` name the prefixes.

Invariants: a bad value raises :class:`~bobrapet.storage.errors.StorageConfigError` naming the
variable and the fix; :func:`open_store` returns one store per distinct settings in a process
(workers reuse it across steps); S3 credentials are never part of :meth:`StorageSettings.to_env`
(a process gets them from its own environment). Standard library only.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bobrapet.storage.backend import DEFAULT_TIMEOUT, BlobStore
from bobrapet.storage.errors import InvalidReference, StorageConfigError
from bobrapet.storage.refs import check_key

PROVIDER: Final = "BUBU_STORAGE_PROVIDER"
PATH: Final = "BUBU_STORAGE_PATH"
TIMEOUT: Final = "BUBU_STORAGE_TIMEOUT"
OUTPUT_PREFIX: Final = "BUBU_STORAGE_OUTPUT_PREFIX"
INPUT_PREFIX: Final = "BUBU_STORAGE_INPUT_PREFIX"
S3_BUCKET: Final = "BUBU_STORAGE_S3_BUCKET"
S3_REGION: Final = "BUBU_STORAGE_S3_REGION"
S3_ENDPOINT: Final = "BUBU_STORAGE_S3_ENDPOINT"
S3_PATH_STYLE: Final = "BUBU_S3_FORCE_PATH_STYLE"
S3_ACCESS_KEY: Final = "BUBU_S3_ACCESS_KEY_ID"
S3_SECRET_KEY: Final = "BUBU_S3_SECRET_ACCESS_KEY"
S3_SESSION_TOKEN: Final = "BUBU_S3_SESSION_TOKEN"
S3_MAX_RETRIES: Final = "BUBU_S3_MAX_RETRIES"
S3_MAX_BACKOFF: Final = "BUBU_S3_MAX_BACKOFF"
S3_TIMEOUT: Final = "BUBU_S3_TIMEOUT"
S3_TLS: Final = "BUBU_S3_TLS"
S3_MAX_PART_SIZE: Final = "BUBU_S3_MAX_PART_SIZE"
S3_CONCURRENCY: Final = "BUBU_S3_CONCURRENCY"
S3_SSE: Final = "BUBU_S3_SSE"
S3_SSE_KMS_KEY: Final = "BUBU_S3_SSE_KMS_KEY"
#: Per step: the inline limit (bytes) and the (de)hydration recursion depth.
MAX_INLINE_SIZE: Final = "BUBU_MAX_INLINE_SIZE"
MAX_RECURSION_DEPTH: Final = "BUBU_MAX_RECURSION_DEPTH"

PROVIDERS: Final = ("file", "s3")
DEFAULT_OUTPUT_PREFIX: Final = "outputs"
DEFAULT_INPUT_PREFIX: Final = "inputs"
DEFAULT_PART_SIZE: Final = 64 << 20
MIN_PART_SIZE: Final = 5 << 20


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        from bobrapet.api.durations import parse_duration  # only for Go durations: workers stay light

        try:
            seconds = parse_duration(text).total_seconds()
        except ValueError:
            raise StorageConfigError(f"{name}={text!r} is not a duration (such as 30s or 5m)") from None
    if seconds <= 0:
        raise StorageConfigError(f"{name}={text!r} must be a positive duration")
    return seconds


def _int(env: Mapping[str, str], name: str, default: int, low: int = 0) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise StorageConfigError(f"{name}={text!r} is not an integer") from None
    if value < low:
        raise StorageConfigError(f"{name}={text!r} must be at least {low}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = (env.get(name) or "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise StorageConfigError(f"{name}={text!r} must be true or false")


@dataclass(frozen=True)
class StorageSettings:
    """Where and how offloaded values are stored (``provider`` ``""``: disabled)."""

    provider: str = ""
    path: str = ""
    timeout: float = DEFAULT_TIMEOUT
    output_prefix: str = DEFAULT_OUTPUT_PREFIX
    input_prefix: str = DEFAULT_INPUT_PREFIX
    bucket: str = ""
    region: str = ""
    endpoint: str = ""
    force_path_style: bool = False
    access_key: str = ""
    secret_key: str = ""
    session_token: str = ""
    max_retries: int = 3
    max_backoff: float = 10.0
    s3_timeout: float | None = None
    tls: bool = True
    max_part_size: int = DEFAULT_PART_SIZE
    concurrency: int = 4
    sse: str = ""
    sse_kms_key: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.provider)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StorageSettings:
        """The settings ``env`` describes; raises :class:`StorageConfigError`."""
        provider = (env.get(PROVIDER) or "").strip().lower()
        if provider == "none":
            provider = ""
        if provider and provider not in PROVIDERS:
            raise StorageConfigError(f"{PROVIDER}={provider!r} is unknown; use file, s3 or none")
        settings = cls(
            provider=provider,
            path=(env.get(PATH) or "").strip(),
            timeout=_seconds(env, TIMEOUT, DEFAULT_TIMEOUT),
            output_prefix=_prefix(env, OUTPUT_PREFIX, DEFAULT_OUTPUT_PREFIX),
            input_prefix=_prefix(env, INPUT_PREFIX, DEFAULT_INPUT_PREFIX),
            bucket=(env.get(S3_BUCKET) or "").strip(),
            region=(env.get(S3_REGION) or "").strip(),
            endpoint=(env.get(S3_ENDPOINT) or "").strip(),
            force_path_style=_bool(env, S3_PATH_STYLE, False),
            access_key=env.get(S3_ACCESS_KEY) or "",
            secret_key=env.get(S3_SECRET_KEY) or "",
            session_token=env.get(S3_SESSION_TOKEN) or "",
            max_retries=_int(env, S3_MAX_RETRIES, 3),
            max_backoff=_seconds(env, S3_MAX_BACKOFF, 10.0),
            s3_timeout=_seconds(env, S3_TIMEOUT, 0.0) or None,
            tls=_bool(env, S3_TLS, True),
            max_part_size=_int(env, S3_MAX_PART_SIZE, DEFAULT_PART_SIZE, MIN_PART_SIZE),
            concurrency=_int(env, S3_CONCURRENCY, 4, 1),
            sse=(env.get(S3_SSE) or "").strip().lower(),
            sse_kms_key=(env.get(S3_SSE_KMS_KEY) or "").strip(),
        )
        settings.check()
        return settings

    def check(self) -> None:
        if self.provider == "file" and not self.path:
            raise StorageConfigError(f"{PROVIDER}=file needs {PATH} (the storage root directory)")
        if self.provider == "s3" and not self.bucket:
            raise StorageConfigError(f"{PROVIDER}=s3 needs {S3_BUCKET} (the bucket name)")
        if self.sse not in ("", "s3", "kms"):
            raise StorageConfigError(f"{S3_SSE}={self.sse!r} must be s3 or kms")
        if self.sse == "kms" and not self.sse_kms_key:
            raise StorageConfigError(f"{S3_SSE}=kms needs {S3_SSE_KMS_KEY}")
        if bool(self.access_key) != bool(self.secret_key):
            raise StorageConfigError(f"set both {S3_ACCESS_KEY} and {S3_SECRET_KEY}, or neither")

    def to_env(self) -> dict[str, str]:
        """The non-secret variables that describe these settings (for a step's environment)."""
        if not self.provider:
            return {PROVIDER: "none"}
        env = {PROVIDER: self.provider}
        if self.timeout != DEFAULT_TIMEOUT:
            env[TIMEOUT] = f"{self.timeout:g}"
        if self.output_prefix != DEFAULT_OUTPUT_PREFIX:
            env[OUTPUT_PREFIX] = self.output_prefix
        if self.input_prefix != DEFAULT_INPUT_PREFIX:
            env[INPUT_PREFIX] = self.input_prefix
        if self.provider == "file":
            env[PATH] = self.path
            return env
        env[S3_BUCKET] = self.bucket
        for name, value in ((S3_REGION, self.region), (S3_ENDPOINT, self.endpoint)):
            if value:
                env[name] = value
        if self.force_path_style:
            env[S3_PATH_STYLE] = "true"
        return env


def _prefix(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or "").strip().strip("/") or default
    try:
        check_key(value)
    except InvalidReference as exc:
        raise StorageConfigError(f"{name}={value!r}: {exc}") from None
    return value


_STORES: dict[StorageSettings, BlobStore] = {}
_LOCK = threading.Lock()


def open_store(settings: StorageSettings) -> BlobStore | None:
    """The store ``settings`` describe (``None`` when storage is disabled); one per settings."""
    if not settings.enabled:
        return None
    with _LOCK:
        store = _STORES.get(settings)
        if store is None:
            store = _STORES[settings] = _open(settings)
        return store


def _open(settings: StorageSettings) -> BlobStore:
    if settings.provider == "file":
        from bobrapet.storage.file import FileStore

        return FileStore(Path(settings.path), timeout=settings.timeout)
    from bobrapet.storage.s3 import S3Store

    return S3Store(settings)


def store_from_env(env: Mapping[str, str]) -> tuple[StorageSettings, BlobStore | None]:
    """Settings and store of the environment ``env``; raises :class:`StorageConfigError`."""
    settings = StorageSettings.from_env(env)
    return settings, open_store(settings)
