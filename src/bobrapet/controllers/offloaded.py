"""The engine's own storage work: loading offloaded values for templates, offloading inputs.

* ``templating.offloaded-data-policy: controller`` — a compound template over offloaded data
  is evaluated by the engine: the plan (or launch decision) names the storage keys it needs,
  :func:`load_blobs` reads them (in a thread, at most ``max_controller_hydration`` bytes in
  total; a key that cannot be loaded becomes a :class:`~bobrapet.templating.LoadFailure`, so
  the template fails with the reason) and the engine decides again with them;
* a resolved step input larger than ``max_inline_step_input`` is offloaded by
  :func:`offload_inputs` to ``inputs/<steprun>/`` (reference §7.2) before the request is
  handed to the executor; the step's process hydrates it.

Invariants: storage calls never run on the event loop (``asyncio.to_thread``); at most
:data:`MAX_ROUNDS` load rounds per decision (stored values may hold further references).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from bobrapet.engine import EngineConfig
from bobrapet.execution.request import ExecutionRequest
from bobrapet.storage.dehydrate import Dehydrator
from bobrapet.storage.errors import StorageError
from bobrapet.storage.hydrate import StoreLoader
from bobrapet.storage.settings import MAX_INLINE_SIZE, open_store
from bobrapet.templating import LoadFailure

#: Load rounds per decision (a stored value may reference further stored values).
MAX_ROUNDS = 4


def _load(config: EngineConfig, keys: Iterable[str], have: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(have)
    try:
        store = open_store(config.storage)
    except StorageError as exc:
        return {**out, **{k: LoadFailure(exc.message) for k in keys}}
    if store is None:
        failure = LoadFailure("storage is disabled (controller.storage.provider)")
        return {**out, **dict.fromkeys(keys, failure)}
    loader = StoreLoader(store, budget=config.max_controller_hydration)
    for key in keys:
        try:
            out[key] = loader(key)
        except StorageError as exc:
            out[key] = LoadFailure(exc.message)
    return out


async def load_blobs(config: EngineConfig, keys: Iterable[str], have: Mapping[str, Any]) -> dict[str, Any]:
    """``have`` plus the stored values of ``keys`` (or why each could not be loaded)."""
    wanted = [k for k in keys if k not in have]
    if not wanted:
        return dict(have)
    return await asyncio.to_thread(_load, config, wanted, have)


def _offload(config: EngineConfig, request: ExecutionRequest, step_run: str) -> ExecutionRequest:
    store = open_store(config.storage)
    limit = int(request.env.get(MAX_INLINE_SIZE) or config.max_inline_size)
    dehydrator = Dehydrator(store, limit=limit, prefix=config.storage.input_prefix, id=step_run, what="input")
    inputs = dehydrator.dehydrate_inputs(request.inputs)
    config_value = inputs if request.config is request.inputs else dehydrator.dehydrate(request.config)
    return replace(request, inputs=inputs, config=config_value)


async def offload_inputs(config: EngineConfig, request: ExecutionRequest, step_run: str) -> ExecutionRequest:
    """``request`` with its inputs (and config) dehydrated to ``inputs/<step_run>/``;
    raises :class:`~bobrapet.storage.errors.StorageError`."""
    return await asyncio.to_thread(_offload, config, request, step_run)
