"""Object factories for controller tests (plain wire-form dicts)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bobrapet.store.client import Resource

Settle = Callable[[], Awaitable[None]]


def meta(name: str, namespace: str | None = "default", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, **extra}
    if namespace is not None:
        out["namespace"] = namespace
    return out


def engram_template(name: str = "tpl", **spec: Any) -> Resource:
    body: dict[str, Any] = {"version": "1.0.0", "image": "example/engram:1", "supportedModes": ["job"]}
    body.update(spec)
    return {
        "apiVersion": "catalog.bubustack.io/v1alpha1",
        "kind": "EngramTemplate",
        "metadata": meta(name, None),
        "spec": {k: v for k, v in body.items() if v is not None},
    }


def impulse_template(name: str = "itpl", **spec: Any) -> Resource:
    body: dict[str, Any] = {
        "version": "1.0.0",
        "image": "example/impulse:1",
        "supportedModes": ["deployment"],
    }
    body.update(spec)
    return {
        "apiVersion": "catalog.bubustack.io/v1alpha1",
        "kind": "ImpulseTemplate",
        "metadata": meta(name, None),
        "spec": {k: v for k, v in body.items() if v is not None},
    }


def engram(name: str, template: str = "tpl", namespace: str = "default", **spec: Any) -> Resource:
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Engram",
        "metadata": meta(name, namespace),
        "spec": {"templateRef": {"name": template}, **spec},
    }


def step(
    name: str, engram_name: str | None = None, *, with_: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, **extra}
    if with_ is not None:
        out["with"] = with_
    if engram_name is not None:
        out["ref"] = {"name": engram_name}
    return out


def story(
    name: str,
    steps: list[dict[str, Any]],
    namespace: str = "default",
    *,
    finally_: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> Resource:
    body: dict[str, Any] = {"steps": steps, **spec}
    if finally_ is not None:
        body["finally"] = finally_
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Story",
        "metadata": meta(name, namespace),
        "spec": body,
    }


def impulse(name: str, story_name: str, template: str = "itpl", namespace: str = "default") -> Resource:
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Impulse",
        "metadata": meta(name, namespace),
        "spec": {"templateRef": {"name": template}, "storyRef": {"name": story_name}},
    }


def story_run(
    name: str, story_name: str, impulse_name: str | None = None, namespace: str = "default"
) -> Resource:
    spec: dict[str, Any] = {"storyRef": {"name": story_name}}
    if impulse_name:
        spec["impulseRef"] = {"name": impulse_name}
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StoryRun",
        "metadata": meta(name, namespace),
        "spec": spec,
    }


def step_run(name: str, engram_name: str, namespace: str = "default") -> Resource:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StepRun",
        "metadata": meta(name, namespace),
        "spec": {"storyRunRef": {"name": "run"}, "stepId": "s", "engramRef": {"name": engram_name}},
    }


def transport(name: str) -> Resource:
    return {
        "apiVersion": "transport.bubustack.io/v1alpha1",
        "kind": "Transport",
        "metadata": meta(name, None),
        "spec": {"provider": "livekit", "driver": "grpc"},
    }


def ready(obj: Resource) -> dict[str, Any]:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition["type"] == "Ready":
            return dict(condition)
    raise AssertionError(f"no Ready condition in {obj.get('status')}")
