"""A real S3-compatible server for the tests: moto in server mode, on 127.0.0.1 (a subprocess)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

CREDENTIALS = {"BUBU_S3_ACCESS_KEY_ID": "testing", "BUBU_S3_SECRET_ACCESS_KEY": "testing"}


@dataclass
class S3Server:
    endpoint: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def bucket(self) -> str:
        """A new empty bucket."""
        name = f"bubu-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str) -> dict[str, str]:
        """The ``BUBU_*`` variables of an S3 storage on this server."""
        return {
            "BUBU_STORAGE_PROVIDER": "s3",
            "BUBU_STORAGE_S3_BUCKET": bucket,
            "BUBU_STORAGE_S3_ENDPOINT": self.endpoint,
            "BUBU_STORAGE_S3_REGION": "us-east-1",
            "BUBU_S3_FORCE_PATH_STYLE": "true",
            **CREDENTIALS,
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running() -> Iterator[S3Server]:
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the moto S3 server did not start")
            time.sleep(0.05)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
