"""The S3 blob store against a real S3-compatible server (moto in server mode, on loopback)."""

from __future__ import annotations

import hashlib

import pytest
from tests.s3server import S3Server

from bobrapet.storage.dehydrate import Dehydrator
from bobrapet.storage.errors import BlobNotFound, IntegrityError, InvalidReference, StorageConfigError
from bobrapet.storage.hydrate import Hydrator, StoreLoader
from bobrapet.storage.s3 import S3Store
from bobrapet.storage.settings import StorageSettings, open_store


def s3_store(server: S3Server, **env: str) -> S3Store:
    settings = StorageSettings.from_env({**server.env(server.bucket()), **env})
    store = open_store(settings)
    assert isinstance(store, S3Store)
    return store


def test_put_carries_checksums_and_read_verifies_them(s3_server: S3Server) -> None:
    store = s3_store(s3_server)
    body = b'{"contentType":"raw","data":"hello"}'
    assert store.write("outputs/ns/r/a.json", [body[:10], body[10:]]) == len(body)
    assert store.read("outputs/ns/r/a.json") == body
    head = s3_server.client().head_object(
        Bucket=store.bucket, Key="outputs/ns/r/a.json", ChecksumMode="ENABLED"
    )
    assert head["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert head["ContentLength"] == len(body) == store.size("outputs/ns/r/a.json")


def test_a_modified_object_fails_verification(s3_server: S3Server) -> None:
    store = s3_store(s3_server)
    store.write("outputs/x.json", [b'{"contentType":"raw","data":"a"}'])
    original = s3_server.client().head_object(Bucket=store.bucket, Key="outputs/x.json")["Metadata"]
    s3_server.client().put_object(
        Bucket=store.bucket, Key="outputs/x.json", Body=b'{"contentType":"raw","data":"b"}', Metadata=original
    )
    with pytest.raises(IntegrityError, match="does not match its recorded SHA-256"):
        store.read("outputs/x.json")


def test_large_blobs_go_up_in_parts(s3_server: S3Server) -> None:
    store = s3_store(s3_server, BUBU_S3_MAX_PART_SIZE=str(5 << 20), BUBU_S3_CONCURRENCY="3")
    chunk = bytes(range(256)) * 4096  # 1 MiB
    assert store.write("outputs/big.json", [chunk] * 12) == 12 << 20
    data = store.read("outputs/big.json")
    assert data == chunk * 12
    head = s3_server.client().head_object(Bucket=store.bucket, Key="outputs/big.json")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of 3 parts


def test_dehydrate_and_hydrate_through_s3_with_encryption(s3_server: S3Server) -> None:
    store = s3_store(s3_server, BUBU_S3_SSE="s3")
    value = {"items": [{"id": i} for i in range(200)], "text": "t" * 5000}
    out = Dehydrator(store, limit=1000, prefix="outputs", id="ns/run-a").dehydrate(value)
    assert out["items"]["$bubuStorageRef"] == "outputs/ns/run-a/items.json"
    head = s3_server.client().head_object(Bucket=store.bucket, Key="outputs/ns/run-a/items.json")
    assert head["ServerSideEncryption"] == "AES256"
    assert Hydrator(StoreLoader(store)).hydrate(out) == value


def test_missing_keys_buckets_and_bad_settings(s3_server: S3Server) -> None:
    store = s3_store(s3_server)
    with pytest.raises(BlobNotFound):
        store.read("outputs/none.json")
    with pytest.raises(InvalidReference):
        store.read("../outputs/none.json")
    gone = open_store(
        StorageSettings.from_env({**s3_server.env("no-such-bucket"), "BUBU_S3_MAX_RETRIES": "0"})
    )
    assert gone is not None
    with pytest.raises(StorageConfigError, match="bucket 'no-such-bucket' does not exist"):
        gone.write("a.json", [b"{}"])
    with pytest.raises(StorageConfigError, match="BUBU_STORAGE_S3_BUCKET"):
        StorageSettings.from_env({"BUBU_STORAGE_PROVIDER": "s3"})
    with pytest.raises(StorageConfigError, match="BUBU_S3_SSE_KMS_KEY"):
        StorageSettings.from_env({**s3_server.env("b"), "BUBU_S3_SSE": "kms"})
