"""OpenAPI v3 documents as Kubernetes clients read them: ``/openapi/v3``, ``/openapi/v3/apis/<g>/<v>``.

``kubectl apply`` asks ``/openapi/v3`` whether the server validates fields itself
(``fieldValidation`` on the kind's PATCH operation); when the answer is yes it sends
``fieldValidation=Strict`` and needs no schema of its own (without it, kubectl would fall
back to ``/openapi/v2`` in protobuf, which this server does not serve). ``kubectl explain``
reads the schemas in ``components``.

Invariants: the root lists one document per served group version; each document has, per
kind, its item path with ``get``/``put``/``patch``/``delete`` operations tagged with the
kind's ``x-kubernetes-group-version-kind`` (PATCH declares ``fieldValidation``, ``dryRun``
and ``fieldManager``), and the kind's schema (the CRD's ``openAPIV3Schema``) under
``components.schemas``. Documents are built once per process, on first request.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from bobrapet import __version__
from bobrapet.api.crds import structural_schema
from bobrapet.api.kinds import Kind
from bobrapet.server.errors import not_found_path
from bobrapet.server.responses import encode, json_response
from bobrapet.server.targets import group_versions, kinds_of

router = APIRouter(tags=["openapi"])

_QUERY_PARAMETERS = ("fieldValidation", "dryRun", "fieldManager")


def _api_path(group: str, version: str) -> str:
    """``apis/<group>/<version>`` (``api/v1`` for the core group), the root's key."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def schema_name(kind: Kind) -> str:
    """``io.bubustack.runs.v1alpha1.StoryRun`` (reversed group, as Kubernetes names its definitions)."""
    reversed_group = ".".join(reversed(kind.group.split("."))) if kind.group else "io.k8s.api.core"
    return f"{reversed_group}.{kind.version}.{kind.kind}"


def _gvk(kind: Kind) -> dict[str, str]:
    return {"group": kind.group, "version": kind.version, "kind": kind.kind}


def kind_schema(kind: Kind) -> dict[str, Any]:
    """The kind's structural schema, tagged with its group, version and kind."""
    model_schema = kind.model.model_json_schema(by_alias=True, mode="validation")
    schema = structural_schema(model_schema)
    properties = schema.setdefault("properties", {})
    properties.setdefault("apiVersion", {"type": "string", "description": "APIVersion of the object."})
    properties.setdefault("kind", {"type": "string", "description": "Kind of the object."})
    properties["metadata"] = {"type": "object", "description": "Standard object metadata."}
    schema["x-kubernetes-group-version-kind"] = [_gvk(kind)]
    return schema


def _operation(kind: Kind, action: str, ref: str) -> dict[str, Any]:
    body = {"content": {"application/json": {"schema": {"$ref": ref}}}}
    operation: dict[str, Any] = {
        "operationId": f"{action}{kind.kind}",
        "responses": {"200": {"description": "OK", **body}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(kind),
    }
    if action in ("patch", "put"):
        operation["parameters"] = [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in _QUERY_PARAMETERS
        ]
        media = (
            ("application/merge-patch+json", "application/json-patch+json")
            if action == "patch"
            else ("application/json",)
        )
        operation["requestBody"] = {"content": {m: {"schema": {"type": "object"}} for m in media}}
    return operation


def _item_path(kind: Kind) -> str:
    prefix = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
    scope = "/namespaces/{namespace}" if kind.namespaced else ""
    return f"{prefix}{scope}/{kind.plural}/{{name}}"


@cache
def group_version_document(group: str, version: str) -> bytes:
    """The encoded OpenAPI v3 document of one group version (404 when none is served)."""
    kinds = kinds_of(group, version)
    if not kinds:
        raise not_found_path()
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for kind in kinds:
        name = schema_name(kind)
        ref = f"#/components/schemas/{name}"
        schemas[name] = kind_schema(kind)
        paths[_item_path(kind)] = {
            "get": _operation(kind, "get", ref),
            "put": _operation(kind, "put", ref),
            "patch": _operation(kind, "patch", ref),
            "delete": _operation(kind, "delete", ref),
        }
    document = {
        "openapi": "3.0.0",
        "info": {"title": "Bobrapet", "version": __version__},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    return encode(document)


def _hash(group: str, version: str) -> str:
    return hashlib.sha256(json.dumps([group, version, __version__]).encode()).hexdigest()[:32].upper()


@router.get("/openapi/v3", summary="OpenAPI v3 discovery (the documents per group version)")
async def openapi_root() -> Response:
    paths = {
        _api_path(group, version): {
            "serverRelativeURL": f"/openapi/v3/{_api_path(group, version)}?hash={_hash(group, version)}"
        }
        for group, versions in group_versions().items()
        for version in versions
    }
    return json_response({"paths": paths})


@router.get("/openapi/v3/api/{version}", summary="OpenAPI v3 document of the core group")
async def openapi_core(version: str) -> Response:
    return Response(group_version_document("", version), media_type="application/json")


@router.get("/openapi/v3/apis/{group}/{version}", summary="OpenAPI v3 document of one group version")
async def openapi_group(group: str, version: str) -> Response:
    return Response(group_version_document(group, version), media_type="application/json")
