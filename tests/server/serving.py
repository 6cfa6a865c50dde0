"""Helpers of the serve tests: a real ``bobrapet serve`` process on a free loopback port, a small
HTTP client for it, and minimal manifests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BOBRAPET = str(Path(sys.executable).parent / "bobrapet")
START_LIMIT = 60.0


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: Any

    @property
    def reason(self) -> str | None:
        return self.body.get("reason") if isinstance(self.body, dict) else None


@dataclass
class Serve:
    """One running ``bobrapet serve`` (started by :func:`start_serve`)."""

    home: Path
    process: subprocess.Popen[str]
    port: int = 0
    token: str | None = None
    log: Path = field(default_factory=Path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        token: str | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if body is not None or raw is not None:
            sent["Content-Type"] = content_type
        chosen = token if token is not None else self.token
        if chosen:
            sent["Authorization"] = f"Bearer {chosen}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn = self.connection()
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        text = payload.decode()
        try:
            parsed: Any = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return Reply(response.status, response.headers, parsed)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def start_serve(home: Path, *args: str, token: str | None = None, cwd: Path = REPO) -> Serve:
    """Start ``bobrapet --home HOME serve --port 0 ARGS`` and wait until it is ready."""
    log = home.parent / f"{home.name}-serve.log"
    home.mkdir(parents=True, exist_ok=True)
    command = [BOBRAPET, "--home", str(home), "serve", "--port", "0", *args]
    if token:
        command += ["--token", token]
    env = {**os.environ, "BOBRAPET_WORKER_SLOTS": "8"}
    handle = log.open("w")
    process = subprocess.Popen(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, text=True, env=env)
    serve = Serve(home=home, process=process, token=token, log=log)
    deadline = time.monotonic() + START_LIMIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"bobrapet serve exited with {process.returncode}: {serve.output()}")
        record = home / "serve.json"
        if record.exists():
            serve.port = int(json.loads(record.read_text())["port"])
            if serve.request("GET", "/readyz").status == 200:
                return serve
        time.sleep(0.05)
    serve.stop(signal.SIGKILL)
    raise AssertionError(f"bobrapet serve did not get ready: {serve.output()}")


def manifest(kind: str, name: str, namespace: str | None = "default", **fields: Any) -> dict[str, Any]:
    """A minimal object of one of our kinds (EngramTemplate, Engram, Story, StoryRun, ConfigMap)."""
    api_version = {
        "EngramTemplate": "catalog.bubustack.io/v1alpha1",
        "Engram": "bubustack.io/v1alpha1",
        "Story": "bubustack.io/v1alpha1",
        "StoryRun": "runs.bubustack.io/v1alpha1",
        "ConfigMap": "v1",
        "Secret": "v1",
    }[kind]
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}


def story(name: str, namespace: str = "default", steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    gate = [{"name": "approve", "type": "gate", "with": {"timeout": "30m"}}]
    return manifest("Story", name, namespace, spec={"steps": steps or gate})
