"""The engine's in-process hydration for compound templates is bounded (policy controller)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bobrapet.controllers.offloaded import load_blobs
from bobrapet.engine import EngineConfig
from bobrapet.storage.envelope import ENCODER, RAW, envelope_chunks
from bobrapet.storage.file import FileStore
from bobrapet.storage.settings import StorageSettings
from bobrapet.templating import LoadFailure


async def test_blobs_above_the_cap_become_clear_failures(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.write("outputs/a.json", envelope_chunks(RAW, ENCODER.encode("x" * 100)))
    store.write("outputs/b.json", envelope_chunks(RAW, ENCODER.encode("y" * 5000)))
    config = replace(
        EngineConfig(max_controller_hydration=1000),
        storage=StorageSettings(provider="file", path=str(tmp_path)),
    )
    blobs = await load_blobs(config, ["outputs/a.json", "outputs/b.json", "outputs/c.json"], {})
    assert blobs["outputs/a.json"] == "x" * 100
    too_big = blobs["outputs/b.json"]
    assert isinstance(too_big, LoadFailure) and "more than 1000 bytes" in too_big.message
    missing = blobs["outputs/c.json"]
    assert isinstance(missing, LoadFailure) and "no blob 'outputs/c.json'" in missing.message
    disabled = await load_blobs(replace(config, storage=StorageSettings()), ["outputs/a.json"], {})
    assert isinstance(disabled["outputs/a.json"], LoadFailure)
