"""What one step's process does with storage: hydrate its inputs, dehydrate its output.

A step's environment (reference §8.3, §7.5) says where storage is (``BUBU_STORAGE_*``), the
inline limit (``BUBU_MAX_INLINE_SIZE``), the recursion depth (``BUBU_MAX_RECURSION_DEPTH``)
and who writes (``BUBU_STEPRUN_NAMESPACE``/``BUBU_STEPRUN_NAME``: outputs go under
``<output prefix>/<namespace>/<steprun>/``).

Invariants: without ``BUBU_MAX_INLINE_SIZE`` nothing is dehydrated (the value is returned as
is); inputs without references are returned as they are (no store is opened); every failure is
a :class:`~bobrapet.storage.errors.StorageError` whose ``retryable`` says whether the step may
succeed on a retry (:func:`exit_class`). Standard library only (warm workers use it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bobrapet.storage.backend import BlobStore
from bobrapet.storage.dehydrate import Dehydrator, exceeds
from bobrapet.storage.envelope import ENCODER
from bobrapet.storage.errors import StorageConfigError, StorageDisabled, StorageError
from bobrapet.storage.hydrate import Hydrator, StoreLoader
from bobrapet.storage.refs import DEFAULT_MAX_DEPTH, contains_refs
from bobrapet.storage.settings import (
    MAX_INLINE_SIZE,
    MAX_RECURSION_DEPTH,
    StorageSettings,
    open_store,
)


def exit_class(exc: StorageError) -> str | None:
    """The step's exit class for a storage failure (``None``: the default, retryable)."""
    return None if exc.retryable else "terminal"


def _int_env(env: Mapping[str, str], name: str) -> int | None:
    text = (env.get(name) or "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise StorageConfigError(f"{name}={text!r} is not an integer") from None
    if value < 0:
        raise StorageConfigError(f"{name}={text!r} must not be negative")
    return value


@dataclass(frozen=True)
class StepStorage:
    """Storage as one step's environment describes it."""

    settings: StorageSettings
    limit: int | None
    max_depth: int
    namespace: str
    step_run: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StepStorage:
        """Raises :class:`StorageConfigError` for a bad variable."""
        return cls(
            settings=StorageSettings.from_env(env),
            limit=_int_env(env, MAX_INLINE_SIZE),
            max_depth=_int_env(env, MAX_RECURSION_DEPTH) or DEFAULT_MAX_DEPTH,
            namespace=(env.get("BUBU_STEPRUN_NAMESPACE") or "default").strip(),
            step_run=(env.get("BUBU_STEPRUN_NAME") or "").strip(),
        )

    def store(self) -> BlobStore | None:
        return open_store(self.settings)

    def hydrate(self, *values: Any) -> list[Any]:
        """``values`` with their storage references replaced by their data (a blob that
        several of them name is loaded once)."""
        if not any(contains_refs(v, self.max_depth) for v in values):
            return list(values)
        store = self.store()
        if store is None:
            raise StorageDisabled(
                "the inputs hold storage references but storage is disabled in this step's "
                "environment (BUBU_STORAGE_PROVIDER); enable storage (controller.storage.provider)"
            )
        hydrator = Hydrator(StoreLoader(store), max_depth=self.max_depth)
        return [hydrator.hydrate(v) for v in values]

    def dehydrate_output(self, output: Any) -> Any:
        """``output`` with the parts above the inline limit offloaded (as is without a limit)."""
        if self.limit is None:
            return output
        try:
            if not exceeds(ENCODER.encode(output), self.limit):
                return output  # the common case: small, nothing to walk
        except (TypeError, ValueError, RecursionError):
            return output  # not JSON: the caller reports it when it encodes the output
        if not self.step_run:
            raise StorageConfigError("BUBU_STEPRUN_NAME is not set: cannot name the output's blobs")
        dehydrator = Dehydrator(
            self.store(),
            limit=self.limit,
            prefix=self.settings.output_prefix,
            id=f"{self.namespace}/{self.step_run}",
            max_depth=self.max_depth,
        )
        return dehydrator.dehydrate(output)


def hydrate_step_inputs(env: Mapping[str, str], *values: Any) -> list[Any]:
    """:meth:`StepStorage.hydrate` for a step's environment; values without references are
    returned without reading the environment (the common case costs one scan)."""
    if not any(contains_refs(v) for v in values):
        return list(values)
    return StepStorage.from_env(env).hydrate(*values)


def dehydrate_step_output(env: Mapping[str, str], output: Any) -> Any:
    """:meth:`StepStorage.dehydrate_output` for a step's environment; an output within the
    inline limit is returned without reading the rest of the environment."""
    limit = _int_env(env, MAX_INLINE_SIZE)
    if limit is None:
        return output
    try:
        if not exceeds(ENCODER.encode(output), limit):
            return output
    except (TypeError, ValueError, RecursionError):
        return output  # not JSON: the caller reports it when it encodes the output
    return StepStorage.from_env(env).dehydrate_output(output)
