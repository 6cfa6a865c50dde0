"""The dehydrate algorithm of reference §7.3 and hydration (file store in a temp dir)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bobrapet.storage.dehydrate import BULK_THRESHOLD, Dehydrator
from bobrapet.storage.errors import BlobNotFound, InvalidReference, SelectorError, StorageDisabled
from bobrapet.storage.file import FileStore
from bobrapet.storage.hydrate import Hydrator, StoreLoader
from bobrapet.storage.refs import STORAGE_CONTENT_TYPE, STORAGE_PATH, STORAGE_REF, contains_refs


def dehydrator(store: FileStore | None, limit: int = 100, **kw: Any) -> Dehydrator:
    return Dehydrator(store, limit=limit, prefix="outputs", id="ns/run-a", **kw)


def hydrate(store: FileStore, value: Any) -> Any:
    return Hydrator(StoreLoader(store)).hydrate(value)


def test_small_values_stay_inline(store: FileStore) -> None:
    value = {"a": "x" * 50, "n": 1, "l": [1, 2]}
    assert dehydrator(store).dehydrate(value) == value
    assert not (store.root / "outputs").exists()


def test_a_long_string_is_offloaded_raw(store: FileStore) -> None:
    out = dehydrator(store).dehydrate({"big": "x" * 101, "small": 1})
    assert out["small"] == 1
    assert out["big"] == {STORAGE_REF: "outputs/ns/run-a/big.json", STORAGE_CONTENT_TYPE: "text/plain"}
    blob = json.loads((store.root / "outputs/ns/run-a/big.json").read_text())
    assert blob == {"contentType": "raw", "data": "x" * 101}
    assert hydrate(store, out) == {"big": "x" * 101, "small": 1}


def test_a_container_of_small_children_is_offloaded_whole(store: FileStore) -> None:
    items = [{"id": i, "name": f"n{i}"} for i in range(20)]
    out = dehydrator(store).dehydrate({"items": items})
    assert out["items"][STORAGE_REF] == "outputs/ns/run-a/items.json"
    assert out["items"][STORAGE_CONTENT_TYPE] == "application/json"
    assert hydrate(store, out) == {"items": items}


def test_the_whole_value_goes_to_output_json(store: FileStore) -> None:
    out = dehydrator(store).dehydrate([{"k": i} for i in range(30)])
    assert out[STORAGE_REF] == "outputs/ns/run-a/output.json"


def test_partially_offloaded_containers_stay_unless_above_the_bulk_threshold(store: FileStore) -> None:
    parts = {f"k{i}": "y" * 101 for i in range(3)}
    out = dehydrator(store).dehydrate({"parts": parts})
    assert set(out["parts"]) == {"k0", "k1", "k2"} and all(STORAGE_REF in v for v in out["parts"].values())
    # offloaded children whose references add up past the bulk threshold (256 KiB; 1000 bytes
    # here): the original container goes in bulk
    assert BULK_THRESHOLD == 256 * 1024
    many = {f"k{i}": "z" * 101 for i in range(20)}
    bulk = dehydrator(store, bulk=1000).dehydrate({"many": many})
    assert bulk["many"][STORAGE_REF] == "outputs/ns/run-a/many.json"
    assert hydrate(store, bulk) == {"many": many}


def test_keys_are_escaped_so_paths_never_collide_or_escape(store: FileStore) -> None:
    value = {"a.b": "1" * 101, "a": {"b": "2" * 101}, "../../etc": "3" * 101}
    out = dehydrator(store).dehydrate(value)
    keys = {out["a.b"][STORAGE_REF], out["a"]["b"][STORAGE_REF], out["../../etc"][STORAGE_REF]}
    assert len(keys) == 3 and all(
        k.startswith("outputs/ns/run-a/") and ".." not in k.split("/") for k in keys
    )
    assert hydrate(store, out) == value
    assert {p.name for p in store.root.rglob("*.json")} == {
        "a%2Eb.json",
        "a.b.json",
        "%2E%2E%2F%2E%2E%2Fetc.json",
    }


def test_values_deeper_than_the_max_depth_are_offloaded_whole(store: FileStore) -> None:
    deep: Any = "leaf"
    for _ in range(6):
        deep = {"d": deep}
    out = dehydrator(store, limit=10_000, max_depth=3).dehydrate(deep)
    assert out["d"]["d"]["d"]["d"][STORAGE_REF] == "outputs/ns/run-a/d.d.d.d.json"
    assert hydrate(store, out) == deep


def test_existing_references_pass_through(store: FileStore) -> None:
    ref = {STORAGE_REF: "outputs/other/x.json", STORAGE_PATH: "a"}
    assert dehydrator(store).dehydrate({"passed": ref}) == {"passed": ref}


def test_dehydrate_inputs_offloads_the_whole_result_when_still_too_large(store: FileStore) -> None:
    value = {f"k{i}": "v" * 101 for i in range(3)}  # each offloaded; the references add up > 100
    out = Dehydrator(store, limit=100, prefix="inputs", id="run-a").dehydrate_inputs(value)
    assert out == {STORAGE_REF: "inputs/run-a/input.json", STORAGE_CONTENT_TYPE: "application/json"}
    assert hydrate(store, out) == value


def test_storage_disabled_is_a_clear_error() -> None:
    with pytest.raises(StorageDisabled, match="above the inline limit of 100 bytes, and storage is disabled"):
        dehydrator(None).dehydrate({"big": "x" * 200})
    assert dehydrator(None).dehydrate({"small": "x"}) == {"small": "x"}


def test_hydration_narrows_by_selector_and_loads_each_blob_once(store: FileStore) -> None:
    items = [{"id": i, "tags": [f"t{i}"]} for i in range(40)]
    ref = dehydrator(store).dehydrate({"items": items})["items"]
    reads: list[str] = []
    loader = StoreLoader(store)

    def counting(key: str) -> Any:
        reads.append(key)
        return loader(key)

    hydrator = Hydrator(counting)
    value = {
        "first": {**ref, STORAGE_PATH: "[0].id"},
        "ids": {**ref, STORAGE_PATH: "[*].id"},
        "tags": {**ref, STORAGE_PATH: "[*].tags[0]"},
    }
    assert hydrator.hydrate(value) == {
        "first": 0,
        "ids": list(range(40)),
        "tags": [f"t{i}" for i in range(40)],
    }
    assert reads == [ref[STORAGE_REF]]
    with pytest.raises(SelectorError, match="no field 'nope'"):
        Hydrator(loader).hydrate({**ref, STORAGE_PATH: "[0].nope"})


def test_hydration_rejects_malformed_and_traversing_refs(store: FileStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"contentType":"json","data":"stolen"}')
    for bad in ({STORAGE_REF: "../secret.json"}, {STORAGE_REF: str(secret)}, {STORAGE_REF: 5}):
        with pytest.raises(InvalidReference):
            hydrate(store, {"x": bad})
    with pytest.raises(BlobNotFound, match=r"no blob 'outputs/none\.json'"):
        hydrate(store, {STORAGE_REF: "outputs/none.json"})


def test_hydrated_values_without_refs_are_returned_as_is(store: FileStore) -> None:
    value = {"a": [1, {"b": 2}]}
    assert hydrate(store, value) is value
    assert not contains_refs(value)
