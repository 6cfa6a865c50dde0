"""A real S3-compatible server for the tests: moto in server mode, on 127.0.0.1 (a subprocess)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from bench.s3 import ACCESS_KEY, SECRET_KEY, S3ServerError, moto_server, storage_env


@dataclass
class S3Server:
    endpoint: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def bucket(self) -> str:
        """A new empty bucket."""
        name = f"bubu-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str) -> dict[str, str]:
        """The ``BUBU_*`` variables of an S3 storage on this server."""
        return storage_env(self.endpoint, bucket)


@contextlib.contextmanager
def running() -> Iterator[S3Server]:
    try:
        with moto_server() as endpoint:
            yield S3Server(endpoint)
    except S3ServerError as err:
        pytest.fail(str(err))
