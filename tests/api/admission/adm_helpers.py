"""Plain helpers (documents and formatting) shared by the admission tests."""

from __future__ import annotations

from typing import Any

CORE = "bubustack.io/v1alpha1"
CATALOG = "catalog.bubustack.io/v1alpha1"
RUNS = "runs.bubustack.io/v1alpha1"

TEMPLATE = {
    "apiVersion": CATALOG,
    "kind": "EngramTemplate",
    "metadata": {"name": "http"},
    "spec": {
        "version": "1.0.0",
        "supportedModes": ["job", "deployment"],
        "image": "example/http:1",
        "inputSchema": {
            "type": "object",
            "properties": {
                "url": {"type": "string", "required": True},
                "retries": {"type": "integer", "minimum": 0},
            },
        },
        "configSchema": {"type": "object", "properties": {"timeout": {"type": "string"}}},
        "secretSchema": {"token": {"required": False}},
    },
}


PLAIN_TEMPLATE = {
    "apiVersion": CATALOG,
    "kind": "EngramTemplate",
    "metadata": {"name": "plain"},
    "spec": {"version": "1.0.0", "supportedModes": ["job"], "entrypoint": "demo.engrams:run"},
}


def engram(name: str, mode: str = "job", template: str = "plain", ns: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": CORE,
        "kind": "Engram",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"templateRef": {"name": template}, "mode": mode, "version": "2"},
    }


def story_doc(name: str = "demo", ns: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": CORE, "kind": "Story", "metadata": {"name": name, "namespace": ns}, "spec": spec}


Causes = list[tuple[str, str]]


def messages(causes: Causes) -> str:
    return "\n".join(f"{f}: {m}" for f, m in causes)
