"""The file blob store: atomic writes, checksums, nothing outside the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bobrapet.storage.errors import BlobNotFound, IntegrityError, InvalidReference, PayloadTooLarge
from bobrapet.storage.file import CHECKSUM_SUFFIX, FileStore


def test_write_read_and_checksum(store: FileStore) -> None:
    assert store.write("outputs/a/b.json", [b"{", b'"x":1', b"}"]) == 7
    assert store.read("outputs/a/b.json") == b'{"x":1}'
    assert store.size("outputs/a/b.json") == 7
    sidecar = store.root / ("outputs/a/b.json" + CHECKSUM_SUFFIX)
    assert len(sidecar.read_text()) == 64
    assert not [p for p in (store.root / "outputs/a").iterdir() if p.name.startswith(".tmp-")]


def test_a_corrupted_blob_fails_with_a_clear_message(store: FileStore) -> None:
    store.write("outputs/c.json", [b'{"contentType":"raw","data":"hello"}'])
    (store.root / "outputs/c.json").write_bytes(b'{"contentType":"raw","data":"HELLO"}')
    with pytest.raises(IntegrityError, match="does not match its recorded SHA-256"):
        store.read("outputs/c.json")


def test_a_blob_placed_by_hand_without_a_checksum_is_read(store: FileStore) -> None:
    (store.root / "inputs").mkdir(parents=True)
    (store.root / "inputs/hand.json").write_bytes(b"{}")
    assert store.read("inputs/hand.json") == b"{}"


def test_traversal_is_rejected_on_read_and_write(store: FileStore, tmp_path: Path) -> None:
    for key in ("../escape.json", "a/../../escape.json", "/tmp/escape.json"):
        with pytest.raises(InvalidReference):
            store.write(key, [b"x"])
        with pytest.raises(InvalidReference):
            store.read(key)
    assert not (tmp_path / "escape.json").exists()


def test_a_symlink_out_of_the_root_is_rejected(store: FileStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.json").write_text("{}")
    store.root.mkdir(parents=True)
    os.symlink(outside, store.root / "link")
    with pytest.raises(InvalidReference, match="outside the storage root"):
        store.read("link/x.json")
    with pytest.raises(InvalidReference, match="outside the storage root"):
        store.write("link/y.json", [b"{}"])
    assert not (outside / "y.json").exists()


def test_missing_blobs_and_size_limits(store: FileStore) -> None:
    with pytest.raises(BlobNotFound):
        store.read("outputs/none.json")
    store.write("outputs/big.json", [b"x" * 1000])
    with pytest.raises(PayloadTooLarge, match="1000 bytes, more than the limit of 10"):
        store.read("outputs/big.json", limit=10)
    store.delete("outputs/big.json")
    with pytest.raises(BlobNotFound):
        store.size("outputs/big.json")
