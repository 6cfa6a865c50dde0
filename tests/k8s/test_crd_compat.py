"""Manifests users will apply, against our CRDs on a real server.

Every manifest of a custom kind with a real ``spec`` in the original project's
fixtures (``../shared/compat``) and in our own ``examples/`` is admitted by the
API server (``dryRun=All``: validated, defaulted, not stored), and what the
server admits the Python models accept. The kubebuilder scaffolds in
``samples/`` (``spec: null``) are rejected for the missing spec, as the original
CRDs (``spec`` is ``+required``) reject them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import COMPAT, EXAMPLES

from bobrapet.api import kinds

from .conftest import K8s

pytestmark = pytest.mark.k8s


# Manifests the original CRDs reject too: field -> message fragment of the server.
KNOWN_INVALID = {
    # The README puts an object under `secrets`; Impulse.spec.secrets maps a logical
    # name to a Secret *name* (a string), in the original CRD as in ours.
    "readme-examples/github-webhook-impulse/impulse-my-github-webhook.yaml": (
        "spec.secrets.webhookSecret",
        'must be of type string: "object"',
    ),
}


def manifests(root: Path) -> list[tuple[str, int, dict[str, Any]]]:
    """(path relative to ``root``, document index, document) of every custom-kind document."""
    found: list[tuple[str, int, dict[str, Any]]] = []
    for path in sorted(root.glob("**/*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if not isinstance(doc, dict):
                continue
            kind = kinds.for_object(doc.get("apiVersion", ""), doc.get("kind", ""))
            if kind is not None and kind.crd:
                found.append((str(path.relative_to(root)), index, doc))
    return found


MANIFESTS = manifests(COMPAT) if COMPAT.is_dir() else []
EXAMPLE_MANIFESTS = manifests(EXAMPLES)


def dry_run_create(k8s: K8s, doc: dict[str, Any]) -> Any:
    kind = kinds.for_object(doc["apiVersion"], doc["kind"])
    assert kind is not None
    namespace = doc["metadata"].get("namespace", "default")
    return k8s.http.post(K8s.path(kind, namespace), params={"dryRun": "All"}, json=doc)


def test_the_compat_fixtures_are_there(compat_dir: Path) -> None:
    assert len([m for m in MANIFESTS if m[2].get("spec") is not None]) >= 60
    assert EXAMPLE_MANIFESTS, f"no custom-kind manifests under {EXAMPLES}"


def params(spec_present: bool) -> list[Any]:
    return [
        pytest.param(name, doc, id=f"{name}#{index}" if index else name)
        for name, index, doc in MANIFESTS
        if (doc.get("spec") is not None) == spec_present and name not in KNOWN_INVALID
    ]


@pytest.mark.parametrize(
    ("name", "doc"),
    [
        *params(spec_present=True),
        *(pytest.param(n, d, id=f"examples/{n}#{i}") for n, i, d in EXAMPLE_MANIFESTS),
    ],
)
def test_a_manifest_is_admitted(k8s: K8s, name: str, doc: dict[str, Any]) -> None:
    resp = dry_run_create(k8s, doc)
    assert resp.status_code == 201, f"{name}: {resp.text[:2000]}"
    admitted = resp.json()  # validated and defaulted by the server, not stored
    # What the server admits (with its defaults) the Python models accept too.
    kind = kinds.for_object(doc["apiVersion"], doc["kind"])
    assert kind is not None
    kind.model.model_validate(admitted)


@pytest.mark.parametrize("name", sorted(KNOWN_INVALID))
def test_a_known_invalid_compat_manifest_is_rejected_by_the_server(k8s: K8s, name: str) -> None:
    field, message = KNOWN_INVALID[name]
    (doc,) = [m[2] for m in MANIFESTS if m[0] == name]
    resp = dry_run_create(k8s, doc)
    assert resp.status_code == 422, resp.text
    causes = [(c.get("field"), c.get("message", "")) for c in resp.json()["details"]["causes"]]
    assert any(f == field and message in m for f, m in causes), causes


@pytest.mark.parametrize(("name", "doc"), params(spec_present=False))
def test_a_scaffold_without_spec_is_rejected(k8s: K8s, name: str, doc: dict[str, Any]) -> None:
    resp = dry_run_create(k8s, doc)
    assert resp.status_code == 422, resp.text
    causes = [(c.get("field"), c.get("message", "")) for c in resp.json()["details"]["causes"]]
    assert ("spec", "Required value") in causes
