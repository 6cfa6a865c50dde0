"""ConfigMap/Secret references (reference §7.4): forms, formats, namespaces."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bobrapet.storage.errors import InvalidReference
from bobrapet.storage.kube_refs import KubeRef, parse_kube_ref, resolver

OBJECTS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("ConfigMap", "ns", "cfg"): {"data": {"mode": "fast", "obj": '{"a": 1}', "num": "3"}},
    ("Secret", "ns", "creds"): {"data": {"token": base64.b64encode(b"t0ken-value").decode()}},
}


def resolve(value: dict[str, Any], namespace: str | None = "ns", seen: list[str] | None = None) -> Any:
    return resolver(
        namespace,
        lambda kind, ns, name: OBJECTS.get((kind, ns, name)),
        (seen if seen is not None else []).append,
    )(value)


def test_string_and_object_forms() -> None:
    assert parse_kube_ref({"$bubuConfigMapRef": "cfg:mode"}) == KubeRef("ConfigMap", "cfg", "mode")
    assert parse_kube_ref({"$bubuSecretRef": "ns/creds:token"}) == KubeRef("Secret", "creds", "token", "ns")
    ref = parse_kube_ref({"$bubuConfigMapRef": {"name": "cfg", "key": "obj", "format": "raw"}})
    assert ref.format == "raw"
    for bad in (
        {"$bubuConfigMapRef": "cfg"},
        {"$bubuConfigMapRef": "cfg:mode", "x": 1},
        {"$bubuSecretRef": {"name": "creds"}},
        {"$bubuSecretRef": {"name": "creds", "key": "k", "format": "yaml"}},
        {"$bubuSecretRef": 3},
    ):
        with pytest.raises(InvalidReference):
            parse_kube_ref(bad)


def test_formats_and_secret_texts() -> None:
    assert resolve({"$bubuConfigMapRef": "cfg:mode"}) == "fast"
    assert resolve({"$bubuConfigMapRef": "cfg:obj"}) == {"a": 1}  # auto parses JSON
    assert resolve({"$bubuConfigMapRef": "cfg:num"}) == 3
    assert resolve({"$bubuConfigMapRef": {"name": "cfg", "key": "obj", "format": "raw"}}) == '{"a": 1}'
    with pytest.raises(InvalidReference, match="not JSON"):
        resolve({"$bubuConfigMapRef": {"name": "cfg", "key": "mode", "format": "json"}})
    seen: list[str] = []
    assert resolve({"$bubuSecretRef": "creds:token"}, seen=seen) == "t0ken-value"
    assert seen == ["t0ken-value"]


def test_only_the_own_namespace_resolves() -> None:
    assert resolve({"$bubuConfigMapRef": "ns/cfg:mode"}) == "fast"
    with pytest.raises(InvalidReference, match="own namespace"):
        resolve({"$bubuConfigMapRef": "other/cfg:mode"})
    with pytest.raises(InvalidReference, match="without a workload namespace"):
        resolve({"$bubuConfigMapRef": "ns/cfg:mode"}, namespace=None)
    with pytest.raises(InvalidReference, match="does not exist"):
        resolve({"$bubuConfigMapRef": "missing:mode"})
    with pytest.raises(InvalidReference, match="has no key"):
        resolve({"$bubuConfigMapRef": "cfg:nope"})
