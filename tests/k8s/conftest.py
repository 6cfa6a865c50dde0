"""A real Kubernetes API server (etcd + apiextensions-apiserver) for the CRD tests.

One server per test session (see ``/work/shared/k8s/README.md``):

* ``apiserver`` starts etcd and the upstream ``apiextensions-apiserver`` on free
  loopback ports, with a throw-away CA, a serving certificate for 127.0.0.1 and
  an admin client certificate (``O=system:masters``), and waits for
  ``/readyz?exclude=informer-sync``. Teardown stops both processes by PID and
  removes the temporary directory.
* ``k8s`` installs every generated CRD (``bobrapet.api.crds.generate_crds``)
  through the API, waits for each to be ``Established`` and yields a
  :class:`K8s` helper holding an ``httpx2.Client`` authenticated with the
  admin certificate.

Binaries: ``BOBRAPET_TEST_APISERVER`` (default
``<repo>/../shared/k8s/bin/apiextensions-apiserver``) and ``BOBRAPET_TEST_ETCD``
(default ``etcd`` on ``PATH``). When either is missing the tests that need the
server are skipped with a message naming the variable.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from bobrapet.api.crds import generate_crds
from bobrapet.api.kinds import Kind

REPO_ROOT = Path(__file__).resolve().parents[2]
APISERVER_ENV = "BOBRAPET_TEST_APISERVER"
ETCD_ENV = "BOBRAPET_TEST_ETCD"
DEFAULT_APISERVER = REPO_ROOT.parent / "shared" / "k8s" / "bin" / "apiextensions-apiserver"
START_TIMEOUT_S = 60.0
ESTABLISH_TIMEOUT_S = 60.0

DISABLED_ADMISSION = (
    "NamespaceLifecycle,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,"
    "ValidatingAdmissionPolicy,MutatingAdmissionPolicy"
)


def _find_binary(env: str, default: str | Path) -> tuple[str | None, str]:
    """(the executable or None, what was looked for); relative paths are from the repo root."""
    candidate = os.environ.get(env) or str(default)
    if os.sep in candidate:
        path = Path(candidate)
        if not path.is_absolute():
            path = (REPO_ROOT / path).resolve()
        return (str(path) if path.is_file() and os.access(path, os.X_OK) else None), str(path)
    return shutil.which(candidate), f"{candidate} on PATH"


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if the test process dies without tearing down."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_ports(count: int) -> list[int]:
    """Distinct loopback ports that were free a moment ago (sockets held until all are picked)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_certs(d: Path) -> None:
    """CA, serving certificate for 127.0.0.1/localhost and an admin client certificate."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=bobrapet-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    leaves = {
        "server": ("/CN=127.0.0.1", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"),
        "client": ("/O=system:masters/CN=test-admin", "clientAuth", ""),
    }
    for name, (subject, usage, san) in leaves.items():
        (d / f"{name}.ext").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage={usage}\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid,issuer\n" + san
        )
        _openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d,
        )  # fmt: skip


def _kubeconfig(server: str, user: dict[str, str], cluster: dict[str, Any]) -> str:
    import yaml

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    return yaml.safe_dump(doc)


@dataclass
class ApiServer:
    """A running test API server and the files needed to talk to it."""

    url: str
    directory: Path
    ca_file: Path
    cert_file: Path
    key_file: Path
    kubeconfig: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx

    def client(self, timeout: float = 30.0) -> httpx2.Client:
        return httpx2.Client(base_url=self.url, verify=self.ssl_context(), timeout=timeout)

    def async_client(self, timeout: float = 30.0) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(base_url=self.url, verify=self.ssl_context(), timeout=timeout)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=15)
        self.processes.clear()


def _wait_ready(server: ApiServer, logs: dict[str, Path]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    last = "no answer yet"
    with server.client(timeout=5.0) as http:
        while time.monotonic() < deadline:
            for proc, (name, log) in zip(server.processes, logs.items(), strict=True):
                if proc.poll() is not None:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited with {proc.returncode} during start-up:\n{tail}")
            try:
                resp = http.get("/readyz", params={"exclude": "informer-sync"})
                if resp.status_code == 200 and resp.text.strip() == "ok":
                    return
                last = f"{resp.status_code} {resp.text[-500:]}"
            except httpx2.TransportError as exc:
                last = repr(exc)
            time.sleep(0.2)
    raise RuntimeError(f"API server not ready after {START_TIMEOUT_S}s: {last}")


def _start(d: Path, apiserver_bin: str, etcd_bin: str) -> ApiServer:
    """Start etcd + the API server with certificates and configs under ``d``; wait until ready.

    On failure the processes already started are stopped before the error propagates.
    """
    api_port, etcd_port, peer_port, metrics_port, dead_port = _free_ports(5)
    server = ApiServer(
        url=f"https://127.0.0.1:{api_port}",
        directory=d,
        ca_file=d / "ca.crt",
        cert_file=d / "client.crt",
        key_file=d / "client.key",
        kubeconfig=d / "client.kubeconfig",
    )
    _make_certs(d)
    # The standalone server insists on a "core" kubeconfig: point it at a closed port.
    (d / "none.kubeconfig").write_text(
        _kubeconfig(f"https://127.0.0.1:{dead_port}", {"token": "unused"}, {"insecure-skip-tls-verify": True})
    )
    server.kubeconfig.write_text(
        _kubeconfig(
            server.url,
            {"client-certificate": str(server.cert_file), "client-key": str(server.key_file)},
            {"certificate-authority": str(server.ca_file)},
        )
    )
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    etcd_cmd = [
        etcd_bin, "--name", "t", "--data-dir", str(d / "etcd"),
        "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
        "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"t={peer_url}",
        "--listen-metrics-urls", f"http://127.0.0.1:{metrics_port}",
    ]  # fmt: skip
    api_cmd = [
        apiserver_bin, f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
        f"--secure-port={api_port}", f"--tls-cert-file={d / 'server.crt'}",
        f"--tls-private-key-file={d / 'server.key'}", f"--client-ca-file={server.ca_file}",
        "--authentication-skip-lookup",
        f"--authentication-kubeconfig={d / 'none.kubeconfig'}",
        f"--authorization-kubeconfig={d / 'none.kubeconfig'}",
        f"--kubeconfig={d / 'none.kubeconfig'}",
        f"--disable-admission-plugins={DISABLED_ADMISSION}",
    ]  # fmt: skip
    logs = {"etcd": d / "etcd.log", "apiextensions-apiserver": d / "apiserver.log"}
    try:
        for cmd, log in zip((etcd_cmd, api_cmd), logs.values(), strict=True):
            with log.open("wb") as out:
                server.processes.append(
                    subprocess.Popen(
                        cmd,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                    )
                )
        _wait_ready(server, logs)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def run_apiserver(apiserver_bin: str, etcd_bin: str, attempts: int = 3) -> Iterator[ApiServer]:
    """A running etcd + API server in a temporary directory; stopped and removed on exit.

    A start that fails (typically a port taken between picking and binding it) is
    retried with fresh ports, up to ``attempts`` times.
    """
    root = Path(tempfile.mkdtemp(prefix="bobrapet-k8s-"))
    try:
        for attempt in range(1, attempts + 1):
            d = root / f"attempt-{attempt}"
            d.mkdir()
            try:
                server = _start(d, apiserver_bin, etcd_bin)
                break
            except RuntimeError:
                if attempt == attempts:
                    raise
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class K8s:
    """The running server with all Bobrapet CRDs installed and an admin HTTP client."""

    server: ApiServer
    http: httpx2.Client
    crds: dict[str, dict[str, Any]]  # CRD name -> the CRD object as the server returned it
    install_warnings: dict[str, list[str]]  # CRD name -> Warning headers of its creation

    @staticmethod
    def path(kind: Kind, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        """The REST path of a collection, an object, or an object's subresource."""
        p = f"/apis/{kind.group}/{kind.version}"
        if kind.namespaced and namespace is not None:
            p += f"/namespaces/{namespace}"
        p += f"/{kind.plural}"
        if name is not None:
            p += f"/{name}"
            if sub:
                p += f"/{sub}"
        return p


def _install_crds(http: httpx2.Client) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    warnings: dict[str, list[str]] = {}
    for crd in generate_crds():
        resp = http.post(base, json=crd)
        if resp.status_code != 201:
            raise RuntimeError(f"CRD {crd['metadata']['name']} rejected: {resp.status_code} {resp.text}")
        warnings[crd["metadata"]["name"]] = resp.headers.get_list("warning")
    wanted = {crd["metadata"]["name"] for crd in generate_crds()}
    deadline = time.monotonic() + ESTABLISH_TIMEOUT_S
    established: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for item in http.get(base).json()["items"]:
            conds = {c["type"]: c["status"] for c in item.get("status", {}).get("conditions", [])}
            if conds.get("Established") == "True" and item["metadata"]["name"] in wanted:
                established[item["metadata"]["name"]] = item
        if set(established) == wanted:
            return established, warnings
        time.sleep(0.1)
    raise RuntimeError(
        f"CRDs not Established after {ESTABLISH_TIMEOUT_S}s: {sorted(wanted - set(established))}"
    )


@pytest.fixture(scope="session")
def apiserver() -> Iterator[ApiServer]:
    """A fresh etcd + apiextensions-apiserver for the whole session (skips when absent)."""
    apiserver_bin, looked = _find_binary(APISERVER_ENV, DEFAULT_APISERVER)
    if apiserver_bin is None:
        pytest.skip(
            f"apiextensions-apiserver not found ({looked}): set {APISERVER_ENV} to the server "
            f"binary (default {DEFAULT_APISERVER})"
        )
    etcd_bin, looked = _find_binary(ETCD_ENV, "etcd")
    if etcd_bin is None:
        pytest.skip(f"etcd not found ({looked}): set {ETCD_ENV} to the etcd binary or put etcd on PATH")
    if shutil.which("openssl") is None:
        pytest.skip("openssl not found on PATH (needed to make the test certificates)")
    with run_apiserver(apiserver_bin, etcd_bin) as server:
        yield server


@pytest.fixture(scope="session")
def k8s(apiserver: ApiServer) -> Iterator[K8s]:
    """The API server with every Bobrapet CRD installed and Established."""
    with apiserver.client() as http:
        crds, warnings = _install_crds(http)
        yield K8s(server=apiserver, http=http, crds=crds, install_warnings=warnings)
