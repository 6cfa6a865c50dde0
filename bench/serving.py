"""``bobrapet serve`` for the benchmark: start it on a free loopback port, watch its memory, and
build the requests the load generator sends to it.

:func:`start_serve` runs ``bobrapet --home H serve --port 0`` from the repository root (so the
benchmark engrams, ``bench.engrams``, import) and returns once ``/readyz`` answers 200. The
request bodies are built by :func:`trigger_bodies` (StoryTriggers through the Kubernetes-shaped
API, what an SDK's ``trigger_story`` writes) and :func:`storyrun_bodies` (StoryRuns, what
``kubectl create`` writes); :func:`webhook_target` is the webhook endpoint of an Impulse
(:func:`impulse` builds one, and the ``cron`` Impulse of the soak). :func:`trigger_name` reads
the StoryTrigger a reply names, whichever way the delivery came.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import BodyOf, Target
from bench.procmon import read_peak_kb

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "default"
RUNS_API = f"/apis/runs.bubustack.io/v1alpha1/namespaces/{NAMESPACE}"
TRIGGERS_PATH = f"{RUNS_API}/storytriggers"
STORYRUNS_PATH = f"{RUNS_API}/storyruns"
IMPULSES_PATH = f"/apis/bubustack.io/v1alpha1/namespaces/{NAMESPACE}/impulses"
WORKER_MARKER = "executors.local.worker"
START_LIMIT = 120.0


def read_rss_kb(pid: int) -> int | None:
    """``VmRSS`` (current resident set, KiB) of a live process; ``None`` when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all its threads')."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class ServeProcess:
    """One running ``bobrapet serve``."""

    proc: subprocess.Popen[bytes]
    home: Path
    port: int
    log: Path

    def target(
        self, path: str, *, method: str = "POST", accepted: tuple[int, ...] = (200, 201, 202)
    ) -> Target:
        return Target("127.0.0.1", self.port, path, method=method, accepted=accepted)

    def rss_kb(self) -> int:
        return read_rss_kb(self.proc.pid) or 0

    def peak_kb(self) -> int:
        return read_peak_kb(self.proc.pid) or 0

    def workers(self) -> list[int]:
        return [pid for pid in children(self.proc.pid) if WORKER_MARKER in _cmdline(pid)]

    def workers_rss_kb(self) -> int:
        return sum(read_rss_kb(pid) or 0 for pid in self.workers())

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _ready(port: int) -> bool:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def start_serve(
    bobrapet: Path, home: Path, *, workers: int | None = None, env: dict[str, str] | None = None
) -> ServeProcess:
    """``bobrapet --home HOME serve --port 0`` from the repository root, once ready."""
    log = home / "serve.log"
    argv = [str(bobrapet), "--home", str(home), "serve", "--port", "0", "--grace", "5s"]
    if workers:
        argv += ["--workers", str(workers)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    deadline = time.monotonic() + START_LIMIT
    record = home / "serve.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bobrapet serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        if record.exists():
            try:
                port = int(json.loads(record.read_text())["port"])
            except (ValueError, KeyError):
                port = 0
            if port and _ready(port):
                return ServeProcess(proc, home, port, log)
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"bobrapet serve did not get ready in {START_LIMIT:g}s: {log.read_text()[-2000:]}")


# -- request bodies ----------------------------------------------------------------------------
def trigger_bodies(story: str, inputs_of: Callable[[int], dict[str, Any]]) -> BodyOf:
    """Bodies of StoryTriggers for ``story`` (request ``i`` gets ``inputs_of(i)`` and a fresh
    submission id)."""
    from bobrapet.triggers.request import TriggerRequest, trigger_object

    def body_of(index: int) -> bytes:
        inputs = inputs_of(index)
        request = TriggerRequest(story=story, namespace=NAMESPACE, inputs=inputs)
        obj = trigger_object(request, mode="none", key=None, submission_id=str(uuid.uuid4()), inputs=inputs)
        return json.dumps(obj, separators=(",", ":")).encode()

    return body_of


def json_bodies(inputs_of: Callable[[int], dict[str, Any]]) -> BodyOf:
    """Plain JSON bodies (a webhook delivery's body becomes the run's inputs)."""
    return lambda index: json.dumps(inputs_of(index), separators=(",", ":")).encode()


def trigger_name(reply: bytes | None) -> str | None:
    """The StoryTrigger a reply names: a webhook's answer (``storyTrigger``) or the created
    StoryTrigger itself (``metadata.name``)."""
    try:
        body = json.loads(reply or b"")
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    name = body.get("storyTrigger") or (body.get("metadata") or {}).get("name")
    return str(name) if name else None


def storyrun_bodies(story: str, prefix: str, inputs_of: Callable[[int], dict[str, Any]]) -> BodyOf:
    """Bodies of StoryRuns ``<prefix>-<i>`` of ``story`` with ``inputs_of(i)``."""

    def body_of(index: int) -> bytes:
        obj = {
            "apiVersion": "runs.bubustack.io/v1alpha1",
            "kind": "StoryRun",
            "metadata": {"name": f"{prefix}-{index}", "namespace": NAMESPACE},
            "spec": {"storyRef": {"name": story}, "inputs": inputs_of(index)},
        }
        return json.dumps(obj, separators=(",", ":")).encode()

    return body_of


def webhook_target(serve: ServeProcess, impulse: str) -> Target:
    """The webhook endpoint of Impulse ``impulse`` (``POST /impulses/<ns>/<impulse>``)."""
    return serve.target(f"/impulses/{NAMESPACE}/{impulse}", accepted=(202,))


def impulse(name: str, template: str, story: str, **with_: Any) -> dict[str, Any]:
    """An Impulse of the built-in ``template`` starting ``story`` (``spec.with`` from ``with_``)."""
    spec: dict[str, Any] = {"templateRef": {"name": template}, "storyRef": {"name": story}}
    if with_:
        spec["with"] = with_
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Impulse",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def impulses_available() -> bool:
    """Whether this build of serve runs Impulses (the webhook endpoint exists)."""
    import importlib.util

    return importlib.util.find_spec("bobrapet.impulses.supervisor") is not None


def install_impulses(bobrapet: Path, home: Path, impulses: list[dict[str, Any]]) -> None:
    """``bobrapet catalog install`` and ``bobrapet apply`` of ``impulses`` in ``home``."""
    import yaml

    manifest = home / "impulses.yaml"
    manifest.write_text(yaml.safe_dump_all(impulses))
    for argv in (["catalog", "install"], ["apply", "-f", str(manifest)]):
        done = subprocess.run(
            [str(bobrapet), "--home", str(home), *argv], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"bobrapet {' '.join(argv)} failed: {done.stderr.strip()[-500:]}")


async def await_impulse(serve: ServeProcess, name: str, timeout: float = 60.0) -> None:
    """Until Impulse ``name`` is ``Running`` (its runtime listens)."""
    import asyncio

    from bench.loadgen import get_json

    deadline = time.monotonic() + timeout
    reader = serve.target("", method="GET")
    while True:
        status = (await get_json(reader, f"{IMPULSES_PATH}/{name}")).get("status") or {}
        if status.get("phase") == "Running":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Impulse {name} is not Running after {timeout:g}s: {status}")
        await asyncio.sleep(0.2)
