"""A real S3-compatible server on loopback: moto in server mode, as a subprocess.

Shared by the benchmark (the ``payload`` workload through S3) and the tests
(``tests/s3server.py``). Network only to 127.0.0.1; credentials are moto's dummies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

#: The dummy credentials moto accepts (as ``BUBU_S3_*`` and as the AWS chain's variables).
ACCESS_KEY = SECRET_KEY = "testing"
START_LIMIT = 30.0


class S3ServerError(RuntimeError):
    """The moto server did not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Run a moto S3 server on a free loopback port; yields its endpoint URL."""
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_LIMIT
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise S3ServerError("the moto S3 server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def storage_env(endpoint: str, bucket: str) -> dict[str, str]:
    """The ``BUBU_*`` variables of an S3 storage in ``bucket`` of the server at ``endpoint``."""
    return {
        "BUBU_STORAGE_PROVIDER": "s3",
        "BUBU_STORAGE_S3_BUCKET": bucket,
        "BUBU_STORAGE_S3_ENDPOINT": endpoint,
        "BUBU_STORAGE_S3_REGION": "us-east-1",
        "BUBU_S3_FORCE_PATH_STYLE": "true",
        "BUBU_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "BUBU_S3_SECRET_ACCESS_KEY": SECRET_KEY,
    }
