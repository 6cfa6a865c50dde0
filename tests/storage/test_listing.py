"""Listing, copying and removing blobs (what the clean-up and the output cache need), on the
file store and on a real S3-compatible server."""

from __future__ import annotations

import os
import time

import pytest
from tests.s3server import S3Server
from tests.storage.test_s3_store import s3_store

from bobrapet.storage.errors import BlobNotFound, InvalidReference
from bobrapet.storage.file import CHECKSUM_SUFFIX, TEMP_PREFIX, FileStore


def _keys(store: FileStore, prefix: str) -> set[str]:
    return {info.key for info in store.list(prefix)}


def test_list_yields_blobs_under_a_prefix_with_size_and_time(store: FileStore) -> None:
    before = time.time() - 1
    store.write("outputs/ns/r-a/big.json", [b"12345"])
    store.write("outputs/ns/r-b/output.json", [b"1"])
    store.write("outputs-other/x.json", [b"1"])
    (store.root / "outputs/ns/r-a" / f"{TEMP_PREFIX}half").write_bytes(b"partial")
    found = {info.key: info for info in store.list("outputs")}
    assert set(found) == {"outputs/ns/r-a/big.json", "outputs/ns/r-b/output.json"}  # no checksums, no temps
    assert found["outputs/ns/r-a/big.json"].size == 5
    assert found["outputs/ns/r-a/big.json"].modified >= before
    assert _keys(store, "outputs/ns/r-a") == {"outputs/ns/r-a/big.json"}
    assert _keys(store, "nothing/here") == set()
    with pytest.raises(InvalidReference):
        list(store.list("../up"))


def test_delete_removes_the_directories_it_empties(store: FileStore) -> None:
    store.write("outputs/ns/r-a/one.json", [b"1"])
    store.write("outputs/ns/r-a/two.json", [b"2"])
    store.write("outputs/ns/r-b/one.json", [b"1"])
    store.delete("outputs/ns/r-a/one.json")
    assert (store.root / "outputs/ns/r-a").is_dir()
    store.delete("outputs/ns/r-a/two.json")
    assert not (store.root / "outputs/ns/r-a").exists()
    assert (store.root / "outputs/ns").is_dir()
    store.delete("outputs/ns/r-b/one.json")
    assert not (store.root / "outputs").exists() and store.root.is_dir()
    store.write("outputs/ns/r-a/one.json", [b"again"])  # directories come back with the next write
    assert store.read("outputs/ns/r-a/one.json") == b"again"


def test_copy_shares_the_bytes_and_the_checksum(store: FileStore) -> None:
    store.write("outputs/ns/r-a/big.json", [b'{"contentType":"raw","data":"x"}'])
    store.copy("outputs/ns/r-a/big.json", "cache/ns/e/latest/k/big.json")
    copy = store.root / "cache/ns/e/latest/k/big.json"
    assert os.stat(copy).st_ino == os.stat(store.root / "outputs/ns/r-a/big.json").st_ino  # a hard link
    assert (store.root / ("cache/ns/e/latest/k/big.json" + CHECKSUM_SUFFIX)).exists()
    store.delete("outputs/ns/r-a/big.json")
    assert store.read("cache/ns/e/latest/k/big.json") == b'{"contentType":"raw","data":"x"}'
    with pytest.raises(BlobNotFound):
        store.copy("outputs/ns/r-a/big.json", "cache/ns/e/latest/k/again.json")


def test_stale_temporaries_are_the_old_ones(store: FileStore) -> None:
    store.write("outputs/ns/r/a.json", [b"1"])
    old = store.root / "outputs/ns/r" / f"{TEMP_PREFIX}old"
    new = store.root / "outputs/ns/r" / f"{TEMP_PREFIX}new"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert store.stale_temporaries(time.time() - 3600) == [old]


def test_s3_list_copy_and_delete(s3_server: S3Server) -> None:
    store = s3_store(s3_server, BUBU_S3_MAX_PART_SIZE="5242880")
    for i in range(3):
        store.write(f"outputs/ns/r-{i}/big.json", [b'{"contentType":"raw","data":"x"}'])
    store.write("outputsx/ns/r/big.json", [b"1"])
    found = {info.key: info for info in store.list("outputs")}
    assert set(found) == {f"outputs/ns/r-{i}/big.json" for i in range(3)}
    assert all(info.size == 32 and info.modified > time.time() - 600 for info in found.values())
    store.copy("outputs/ns/r-0/big.json", "cache/ns/e/latest/k/big.json")
    store.delete("outputs/ns/r-0/big.json")
    assert store.read("cache/ns/e/latest/k/big.json") == b'{"contentType":"raw","data":"x"}'  # sha256 kept
    assert {i.key for i in store.list("outputs/ns")} == {f"outputs/ns/r-{i}/big.json" for i in (1, 2)}
    with pytest.raises(BlobNotFound):
        store.copy("outputs/ns/r-0/big.json", "cache/x/y.json")


def test_s3_list_pages_through_many_blobs(s3_server: S3Server) -> None:
    store = s3_store(s3_server)
    for i in range(1005):  # one page of ListObjectsV2 holds 1000 keys
        store.client().put_object(Bucket=store.bucket, Key=f"inputs/r-{i}/input.json", Body=b"{}")
    assert len(list(store.list("inputs"))) == 1005
