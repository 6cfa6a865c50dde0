"""The ``s3`` blob store: any S3-compatible service through boto3 (imported on first use).

Invariants:

* every put carries ``Content-MD5`` and ``x-amz-checksum-sha256`` of its bytes (per part for
  multipart uploads) and the whole blob's SHA-256 as object metadata ``sha256``; ``read``
  verifies that metadata and raises :class:`~bobrapet.storage.errors.IntegrityError` on a
  mismatch;
* a blob is spooled to a temporary file while its checksums are computed and uploaded from
  it (one ``PutObject`` up to ``BUBU_S3_MAX_PART_SIZE``, a multipart upload with
  ``BUBU_S3_CONCURRENCY`` parts in flight above): its bytes are never held in memory whole;
* transient failures (connection errors, 5xx, throttling) are retried ``BUBU_S3_MAX_RETRIES``
  times with exponential back-off capped at ``BUBU_S3_MAX_BACKOFF``, all within the
  operation's deadline (``BUBU_STORAGE_TIMEOUT``); ``BUBU_S3_TIMEOUT`` bounds each request;
* ``BUBU_S3_SSE`` asks for server-side encryption (``s3``: AES256, ``kms``: aws:kms with
  ``BUBU_S3_SSE_KMS_KEY``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, TypeVar

from bobrapet.storage.backend import Deadline, too_large
from bobrapet.storage.errors import BlobNotFound, IntegrityError, StorageConfigError, StorageError
from bobrapet.storage.refs import check_key
from bobrapet.storage.settings import StorageSettings

T = TypeVar("T")
_TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "SlowDown", "Throttling", "ThrottlingException", "InternalError", "ServiceUnavailable"}
)
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class S3Store:
    """Blobs as objects of one bucket."""

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.description = f"s3://{settings.bucket}"
        self._client: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ client

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:  # pragma: no cover - boto3 is a dependency
            raise StorageConfigError("BUBU_STORAGE_PROVIDER=s3 needs boto3 (pip install boto3)") from None
        s = self.settings
        timeout = s.s3_timeout or 60.0
        config = Config(
            retries={"max_attempts": 1, "mode": "standard"},  # retried here, within the deadline
            connect_timeout=min(timeout, 10.0),
            read_timeout=timeout,
            max_pool_connections=max(10, s.concurrency * 2),
            s3={"addressing_style": "path" if s.force_path_style else "auto"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        endpoint = s.endpoint or None
        if endpoint and "://" not in endpoint:
            endpoint = ("https://" if s.tls else "http://") + endpoint
        kwargs: dict[str, Any] = {}
        if s.access_key:
            kwargs = {"aws_access_key_id": s.access_key, "aws_secret_access_key": s.secret_key}
            if s.session_token:
                kwargs["aws_session_token"] = s.session_token
        session = boto3.session.Session()
        return session.client(
            "s3",
            region_name=s.region or "us-east-1",
            endpoint_url=endpoint,
            use_ssl=s.tls,
            config=config,
            **kwargs,
        )

    # ------------------------------------------------------------------ retries

    def _retry(self, deadline: Deadline, call: Callable[[], T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        attempt = 0
        while True:
            try:
                return call()
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
                if code in _MISSING_CODES:
                    raise
                if code == "NoSuchBucket":
                    raise StorageConfigError(
                        f"bucket {self.bucket!r} does not exist at {self.settings.endpoint or 'AWS'}; "
                        "create it or fix BUBU_STORAGE_S3_BUCKET"
                    ) from None
                if not (code in _TRANSIENT_CODES or status >= 500) or attempt >= self.settings.max_retries:
                    raise StorageError(f"{deadline.what} failed: {code or status}: {exc}") from None
            except BotoCoreError as exc:
                if attempt >= self.settings.max_retries:
                    raise StorageError(f"{deadline.what} failed: {exc}") from None
            attempt += 1
            pause = min(self.settings.max_backoff, 0.1 * (2**attempt))
            if pause >= deadline.remaining():
                deadline.check()
                raise StorageError(f"{deadline.what} failed and its deadline leaves no time to retry")
            time.sleep(pause)
            deadline.check()

    def _sse(self) -> dict[str, str]:
        if self.settings.sse == "s3":
            return {"ServerSideEncryption": "AES256"}
        if self.settings.sse == "kms":
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.settings.sse_kms_key}
        return {}

    # ------------------------------------------------------------------ write

    def write(self, key: str, chunks: Iterable[bytes]) -> int:
        check_key(key)
        deadline = Deadline(self.settings.timeout, f"writing {key!r} to {self.description}")
        with tempfile.TemporaryFile(prefix="bobrapet-s3-") as spool:
            md5 = hashlib.md5(usedforsecurity=False)
            sha = hashlib.sha256()
            size = 0
            for chunk in chunks:
                spool.write(chunk)
                md5.update(chunk)
                sha.update(chunk)
                size += len(chunk)
                deadline.check()
            spool.flush()
            metadata = {"sha256": sha.hexdigest()}
            if size <= self.settings.max_part_size:
                self._put(key, spool, size, md5.digest(), sha.digest(), metadata, deadline)
            else:
                self._multipart(key, spool, size, metadata, deadline)
        return size

    def _put(
        self,
        key: str,
        spool: IO[bytes],
        size: int,
        md5: bytes,
        sha: bytes,
        metadata: dict[str, str],
        deadline: Deadline,
    ) -> None:
        client = self.client()

        def put() -> Any:
            spool.seek(0)
            return client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=spool,
                ContentLength=size,
                ContentMD5=_b64(md5),
                ChecksumSHA256=_b64(sha),
                ContentType="application/json",
                Metadata=metadata,
                **self._sse(),
            )

        self._retry(deadline, put)

    def _multipart(
        self, key: str, spool: IO[bytes], size: int, metadata: dict[str, str], deadline: Deadline
    ) -> None:
        client = self.client()
        part_size = self.settings.max_part_size
        created = self._retry(
            deadline,
            lambda: client.create_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                ContentType="application/json",
                Metadata=metadata,
                ChecksumAlgorithm="SHA256",
                **self._sse(),
            ),
        )
        upload_id = created["UploadId"]
        fd = spool.fileno()

        def part(number: int) -> dict[str, Any]:
            body = os.pread(fd, part_size, (number - 1) * part_size)
            md5 = hashlib.md5(body, usedforsecurity=False).digest()
            sha = hashlib.sha256(body).digest()
            reply = self._retry(
                deadline,
                lambda: client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ContentMD5=_b64(md5),
                    ChecksumSHA256=_b64(sha),
                ),
            )
            return {"ETag": reply["ETag"], "PartNumber": number, "ChecksumSHA256": _b64(sha)}

        count = -(-size // part_size)
        try:
            with ThreadPoolExecutor(max_workers=min(self.settings.concurrency, count)) as pool:
                parts = list(pool.map(part, range(1, count + 1)))
            self._retry(
                deadline,
                lambda: client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                ),
            )
        except BaseException:
            with contextlib.suppress(Exception):  # failed already; the parts expire with the bucket
                client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    # ------------------------------------------------------------------ read

    def read(self, key: str, *, limit: int | None = None) -> bytes:
        check_key(key)
        deadline = Deadline(self.settings.timeout, f"reading {key!r} from {self.description}")
        client = self.client()

        def get() -> tuple[bytes, dict[str, str]]:
            reply = client.get_object(Bucket=self.bucket, Key=key)
            size = int(reply.get("ContentLength") or 0)
            if limit is not None and size > limit:
                reply["Body"].close()
                raise too_large(key, size, limit)
            return reply["Body"].read(), reply.get("Metadata") or {}

        data, metadata = self._missing_as_not_found(key, lambda: self._retry(deadline, get))
        recorded = metadata.get("sha256")
        if recorded:
            actual = hashlib.sha256(data).hexdigest()
            if actual != recorded:
                raise IntegrityError(
                    f"blob {key!r} in {self.description} does not match its recorded SHA-256 "
                    f"(recorded {recorded}, read {actual}): it was modified or corrupted; re-run the "
                    "step that produced it"
                )
        return data

    def size(self, key: str) -> int:
        check_key(key)
        deadline = Deadline(self.settings.timeout, f"looking up {key!r} in {self.description}")
        client = self.client()
        reply = self._missing_as_not_found(
            key, lambda: self._retry(deadline, lambda: client.head_object(Bucket=self.bucket, Key=key))
        )
        return int(reply.get("ContentLength") or 0)

    def delete(self, key: str) -> None:
        check_key(key)
        deadline = Deadline(self.settings.timeout, f"deleting {key!r} from {self.description}")
        client = self.client()
        self._retry(deadline, lambda: client.delete_object(Bucket=self.bucket, Key=key))

    def _missing_as_not_found(self, key: str, call: Callable[[], T]) -> T:
        from botocore.exceptions import ClientError

        try:
            return call()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_CODES:
                raise BlobNotFound(f"no blob {key!r} in {self.description}") from None
            raise StorageError(f"cannot read {key!r} from {self.description}: {exc}") from None
