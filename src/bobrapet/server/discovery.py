"""API discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>``, ``/apis/<g>/<v>``.

The bodies are the API server's legacy (unaggregated) discovery documents; clients asking
for aggregated discovery (``as=APIGroupDiscoveryList``) get these and fall back, as they do
against older servers. Invariant: every kind of :mod:`bobrapet.api.kinds` is listed once,
in its group and version, with its verbs, short names, categories and scope, plus a
``<plural>/status`` entry for kinds with a status subresource.
"""

from __future__ import annotations

import platform
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from bobrapet import __version__
from bobrapet.api.kinds import Kind
from bobrapet.server.errors import not_found_path
from bobrapet.server.responses import json_response
from bobrapet.server.targets import group_versions, kinds_of

#: The Kubernetes API level these paths and shapes follow.
KUBERNETES_MAJOR, KUBERNETES_MINOR = "1", "32"

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]

router = APIRouter(tags=["discovery"])


def version_info() -> dict[str, str]:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return {
        "major": KUBERNETES_MAJOR,
        "minor": KUBERNETES_MINOR,
        "gitVersion": f"v{KUBERNETES_MAJOR}.{KUBERNETES_MINOR}.0+bobrapet-{__version__}",
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": "bobrapet",
        "platform": f"{platform.system().lower()}/{arch}",
    }


def resource_entry(kind: Kind) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": kind.plural,
        "singularName": kind.singular,
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": VERBS,
    }
    if kind.short_names:
        entry["shortNames"] = list(kind.short_names)
    if kind.categories:
        entry["categories"] = list(kind.categories)
    return entry


def resource_list(group: str, version: str) -> dict[str, Any]:
    """The ``APIResourceList`` of one group version (404 when nothing is served there)."""
    kinds = kinds_of(group, version)
    if not kinds:
        raise not_found_path()
    resources: list[dict[str, Any]] = []
    for kind in kinds:
        resources.append(resource_entry(kind))
        if kind.status_subresource:
            resources.append(
                {
                    "name": f"{kind.plural}/status",
                    "singularName": "",
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "verbs": STATUS_VERBS,
                }
            )
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def api_group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


@router.get("/version", summary="Server version")
async def get_version() -> Response:
    return json_response(version_info())


@router.get("/api", summary="Core API versions")
async def get_core_versions(request: Request) -> Response:
    server = request.url.netloc or "127.0.0.1"
    return json_response(
        {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
        }
    )


@router.get("/api/v1", summary="Core v1 resources")
async def get_core_resources() -> Response:
    return json_response(resource_list("", "v1"))


@router.get("/apis", summary="API groups")
async def get_groups() -> Response:
    groups = [api_group(name, versions) for name, versions in group_versions().items() if name]
    return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})


@router.get("/apis/{group}", summary="One API group")
async def get_group(group: str) -> Response:
    versions = group_versions().get(group)
    if not group or not versions:
        raise not_found_path()
    return json_response({"kind": "APIGroup", "apiVersion": "v1", **api_group(group, versions)})


@router.get("/apis/{group}/{version}", summary="Resources of one group version")
async def get_group_resources(group: str, version: str) -> Response:
    if not group:
        raise not_found_path()
    return json_response(resource_list(group, version))
