"""The resource API: the Kubernetes REST paths of every kind the store holds.

``/api/v1/...`` (core kinds) and ``/apis/<group>/<version>/...`` (our CRD kinds), each as a
collection (``GET`` list or ``?watch=true``, ``POST`` create, ``DELETE`` delete collection)
and an item (``GET``, ``PUT``, ``PATCH``, ``DELETE``), namespaced (``namespaces/<ns>/``) or
not, plus the ``/status`` subresource (``GET``, ``PUT``, ``PATCH``).

Invariants, as on the API server:

* the body's ``apiVersion``/``kind`` (filled in when missing), namespace and name must agree
  with the path (``400 BadRequest`` otherwise); bodies are JSON (or YAML), anything else is
  ``415``;
* create answers ``201`` with the stored object; update and status writes answer ``200``;
  a stale ``metadata.resourceVersion`` is ``409 Conflict``; admission errors are ``422
  Invalid`` with one cause per field; admission warnings are ``Warning`` headers;
* a patch is applied to the current object and written with its resourceVersion, retried
  when the object changed meanwhile unless the patch itself names a resourceVersion; a
  patch of the main resource leaves ``status`` alone, a ``/status`` patch changes nothing
  else;
* a delete that removed the object answers a ``Success`` Status; one held by finalizers
  answers the object with its ``deletionTimestamp``; deleting cascades to owned objects
  (``propagationPolicy: Orphan`` is refused);
* ``?dryRun=All`` admits and answers without storing anything;
* lists carry ``metadata.resourceVersion`` (a watch started from it misses nothing) and page
  with ``limit``/``continue``; ``Accept: ...;as=Table;g=meta.k8s.io`` answers a ``Table``
  (:mod:`bobrapet.server.table`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

import yaml
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from bobrapet.api.errors import BadRequest, Conflict, NotFound
from bobrapet.api.kinds import EVENT
from bobrapet.runtime.informer import bookmark
from bobrapet.server import patch, table
from bobrapet.server.context import ApiContext, api_context
from bobrapet.server.errors import method_not_allowed, unsupported_media_type
from bobrapet.server.responses import JSON, json_response, success_status
from bobrapet.server.targets import Target, resolve
from bobrapet.server.watch import WatchRequest, stream
from bobrapet.store.client import Resource
from bobrapet.store.selectors import parse_field_selector, parse_label_selector
from bobrapet.store.sqlite.indexing import selectable_paths

BODY_TYPES = ("application/json", "application/yaml")
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_PATCH_ATTEMPTS = 8

Handler = Callable[[Request, Target], Awaitable[Response]]

router = APIRouter(tags=["resources"])


# --------------------------------------------------------------------------- request parts


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _dry_run(request: Request, options: dict[str, Any] | None = None) -> bool:
    values = request.query_params.getlist("dryRun")
    from_body = (options or {}).get("dryRun")
    if isinstance(from_body, list):
        values += [str(v) for v in from_body]
    for value in values:
        if value != "All":
            raise BadRequest(f'dryRun: unsupported value "{value}" (the only value is "All")')
    return bool(values)


async def _read_json(request: Request) -> Any:
    """The request body as data (JSON, or YAML by Content-Type); 400/415 when it is not."""
    raw = await request.body()
    media = (request.headers.get("content-type") or "application/json").split(";", 1)[0].strip().lower()
    if media in _YAML_TYPES:
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise BadRequest(f"the request body is not valid YAML: {err}") from None
    if media not in ("application/json", "*/*", ""):
        raise unsupported_media_type(media, BODY_TYPES)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(f"the request body is not valid JSON: {err}") from None


async def _read_object(request: Request, target: Target) -> Resource:
    """The body as an object of ``target``'s kind, its identity checked against the path."""
    obj = await _read_json(request)
    if not isinstance(obj, dict):
        raise BadRequest(f"the request body must be a {target.kind.kind} object, got {type(obj).__name__}")
    kind = target.kind
    api_version, kind_name = obj.setdefault("apiVersion", kind.api_version), obj.setdefault("kind", kind.kind)
    if api_version != kind.api_version:
        raise BadRequest(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({kind.api_version})"
        )
    if kind_name != kind.kind:
        raise BadRequest(f"the kind in the data ({kind_name}) does not match the expected kind ({kind.kind})")
    metadata = obj.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise BadRequest("metadata must be an object")
    if kind.namespaced and target.namespace is not None:
        namespace = metadata.setdefault("namespace", target.namespace)
        if namespace != target.namespace:
            raise BadRequest(
                f"the namespace of the provided object ({namespace}) does not match the namespace sent "
                f"on the request ({target.namespace})"
            )
    if target.name is not None:
        name = metadata.setdefault("name", target.name)
        if name != target.name:
            raise BadRequest(
                f"the name of the object ({name}) does not match the name on the URL ({target.name})"
            )
    return obj


def _fields(request: Request, target: Target) -> str | None:
    """The request's field selector. Events are stored in the namespace of the object they
    are about, so ``involvedObject.namespace`` (what ``kubectl describe`` asks for) is read
    as ``metadata.namespace``."""
    text = request.query_params.get("fieldSelector")
    if text and target.kind is EVENT:
        return text.replace("involvedObject.namespace", "metadata.namespace")
    return text


def _render(request: Request, target: Target) -> Callable[[Resource], Any]:
    """How one object is sent: itself, or a one-row Table when the client asked for tables."""
    version = table.wants_table(request.headers.get("accept") or "")
    if version is None:
        return lambda obj: obj
    include = request.query_params.get("includeObject") or "Metadata"
    return lambda obj: table.table(target.kind, [obj], version=version, include=include)


# --------------------------------------------------------------------------- paging


def _continue_token(after: Resource, rv: str | None) -> str:
    metadata = after.get("metadata") or {}
    payload = {"rv": rv, "after": [metadata.get("namespace") or "", metadata.get("name") or ""]}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _continue_from(token: str) -> tuple[str, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
        return str(after[0]), str(after[1])
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
        raise BadRequest("continue: not a token returned by a previous list; list again without it") from None


def _page(items: list[Resource], request: Request, rv: str | None) -> tuple[list[Resource], dict[str, Any]]:
    query = request.query_params
    meta: dict[str, Any] = {"resourceVersion": rv or ""}
    token = query.get("continue")
    if token:
        after = _continue_from(token)
        items = [
            o
            for o in items
            if ((o["metadata"].get("namespace") or ""), o["metadata"].get("name") or "") > after
        ]
    limit_text = query.get("limit")
    if limit_text:
        if not limit_text.isdigit():
            raise BadRequest(f'limit: "{limit_text}" is not a non-negative integer')
        limit = int(limit_text)
        if 0 < limit < len(items):
            meta["continue"] = _continue_token(items[limit - 1], rv)
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
    return items, meta


# --------------------------------------------------------------------------- collection


async def list_or_watch(request: Request, target: Target) -> Response:
    ctx = api_context(request)
    query = request.query_params
    if _flag(query.get("watch")):
        return _watch(ctx, request, target)
    rv = await bookmark(ctx.client)
    items = await ctx.client.list(
        target.kind, target.namespace, labels=query.get("labelSelector"), fields=_fields(request, target)
    )
    items, meta = _page(items, request, rv)
    version = table.wants_table(request.headers.get("accept") or "")
    if version is not None:
        include = query.get("includeObject") or "Metadata"
        return json_response(
            table.table(target.kind, items, version=version, include=include, list_meta=meta)
        )
    kind = target.kind
    return json_response(
        {"apiVersion": kind.api_version, "kind": f"{kind.kind}List", "metadata": meta, "items": items}
    )


def _watch(ctx: ApiContext, request: Request, target: Target) -> Response:
    query = request.query_params
    allowed = ("metadata.name", "metadata.namespace", *selectable_paths(target.kind))
    timeout_text = query.get("timeoutSeconds")
    timeout = ctx.max_watch_seconds
    if timeout_text:
        if not timeout_text.isdigit():
            raise BadRequest(f'timeoutSeconds: "{timeout_text}" is not a non-negative integer')
        timeout = min(float(timeout_text), ctx.max_watch_seconds) or ctx.max_watch_seconds
    watch_request = WatchRequest(
        target=target,
        labels=parse_label_selector(query.get("labelSelector")),
        fields=parse_field_selector(_fields(request, target), allowed),
        resource_version=query.get("resourceVersion"),
        timeout=timeout,
        send_initial_events=_flag(query.get("sendInitialEvents")),
        render=_render(request, target),
    )
    return StreamingResponse(stream(ctx, watch_request), media_type=JSON)


async def create(request: Request, target: Target) -> Response:
    target.require_namespace_for_write()
    ctx = api_context(request)
    obj = await _read_object(request, target)
    warnings: list[str] = []
    created = await ctx.client.create(obj, dry_run=_dry_run(request), warnings=warnings)
    return json_response(created, status=201, warnings=warnings)


async def delete_collection(request: Request, target: Target) -> Response:
    target.require_namespace_for_write()
    ctx = api_context(request)
    query = request.query_params
    items = await ctx.client.list(
        target.kind, target.namespace, labels=query.get("labelSelector"), fields=_fields(request, target)
    )
    options = await _delete_options(request)
    deleted = []
    for obj in items:
        metadata = obj["metadata"]
        if not _dry_run(request, options):
            try:
                await ctx.client.delete(target.kind, metadata["name"], metadata.get("namespace"))
            except NotFound:
                continue
        deleted.append(obj)
    kind = target.kind
    return json_response(
        {"apiVersion": kind.api_version, "kind": f"{kind.kind}List", "metadata": {}, "items": deleted}
    )


# --------------------------------------------------------------------------- item


async def get(request: Request, target: Target) -> Response:
    ctx = api_context(request)
    assert target.name is not None
    obj = await ctx.client.get(target.kind, target.name, target.namespace)
    return json_response(_render(request, target)(obj))


async def replace(request: Request, target: Target) -> Response:
    ctx = api_context(request)
    obj = await _read_object(request, target)
    if target.subresource == "status":
        if _dry_run(request):
            raise BadRequest("dryRun is not supported for the status subresource")
        return json_response(await ctx.client.update_status(obj))
    warnings: list[str] = []
    updated = await ctx.client.update(obj, dry_run=_dry_run(request), warnings=warnings)
    return json_response(updated, warnings=warnings)


def _identity(obj: Resource) -> tuple[Any, Any]:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return (metadata or {}).get("name"), (metadata or {}).get("namespace")


async def modify(request: Request, target: Target) -> Response:
    """PATCH: apply the patch to the current object and write it (see the module docstring)."""
    ctx = api_context(request)
    assert target.name is not None
    media = patch.patch_type(request.headers.get("content-type") or "", target.kind)
    document = patch.parse(await request.body(), media)
    dry_run = _dry_run(request)
    if dry_run and target.subresource == "status":
        raise BadRequest("dryRun is not supported for the status subresource")
    for _ in range(_PATCH_ATTEMPTS):
        current = await ctx.client.get(target.kind, target.name, target.namespace)
        patched = patch.apply(media, current, document)
        if _identity(patched) != _identity(current):
            raise BadRequest("a patch cannot change metadata.name or metadata.namespace")
        patched.setdefault("apiVersion", current["apiVersion"])
        patched.setdefault("kind", current["kind"])
        rv = current["metadata"]["resourceVersion"]
        explicit = patched["metadata"].get("resourceVersion") not in (None, rv)
        if not explicit:
            patched["metadata"]["resourceVersion"] = rv
        warnings: list[str] = []
        try:
            if target.subresource == "status":
                written = await ctx.client.update_status(patched)
            else:
                written = await ctx.client.update(patched, dry_run=dry_run, warnings=warnings)
        except Conflict:
            if explicit:
                raise
            continue  # changed since it was read: apply the patch to the new state
        return json_response(written, warnings=warnings)
    raise Conflict(target.kind.plural, target.name, "the object keeps changing; try the patch again")


async def _delete_options(request: Request) -> dict[str, Any]:
    raw = await request.body()
    options: Any = {}
    if raw.strip():
        options = await _read_json(request)
        if not isinstance(options, dict):
            raise BadRequest("the body of a delete must be DeleteOptions (an object)")
    policy = request.query_params.get("propagationPolicy") or options.get("propagationPolicy")
    if policy == "Orphan" or options.get("orphanDependents") is True:
        raise BadRequest(
            "propagationPolicy Orphan is not supported: deleting an object deletes the objects it "
            "owns (use Background or Foreground)"
        )
    if policy not in (None, "Background", "Foreground"):
        raise BadRequest(f'propagationPolicy: unknown value "{policy}" (Background, Foreground)')
    result: dict[str, Any] = options
    return result


def _check_preconditions(target: Target, current: Resource, options: dict[str, Any]) -> None:
    preconditions = options.get("preconditions") or {}
    if not isinstance(preconditions, dict):
        raise BadRequest("preconditions must be an object with uid and/or resourceVersion")
    metadata = current["metadata"]
    assert target.name is not None
    uid, rv = preconditions.get("uid"), preconditions.get("resourceVersion")
    if uid and uid != metadata.get("uid"):
        detail = f"Precondition failed: UID in precondition: {uid}, UID in object meta: {metadata.get('uid')}"
        raise Conflict(target.kind.plural, target.name, detail, group=target.kind.group or None)
    if rv and rv != metadata.get("resourceVersion"):
        detail = (
            f"Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: "
            f"{metadata.get('resourceVersion')}"
        )
        raise Conflict(target.kind.plural, target.name, detail, group=target.kind.group or None)


async def remove(request: Request, target: Target) -> Response:
    ctx = api_context(request)
    assert target.name is not None
    options = await _delete_options(request)
    current = await ctx.client.get(target.kind, target.name, target.namespace)
    _check_preconditions(target, current, options)
    if _dry_run(request, options):
        return json_response(current)
    await ctx.client.delete(target.kind, target.name, target.namespace)
    try:
        remaining = await ctx.client.get(target.kind, target.name, target.namespace)
    except NotFound:
        details: dict[str, Any] = {
            "name": target.name,
            "kind": target.kind.plural,
            "uid": current["metadata"].get("uid"),
        }
        if target.kind.group:
            details["group"] = target.kind.group
        return json_response(success_status(details))
    if remaining["metadata"].get("uid") != current["metadata"].get("uid"):  # deleted, then created again
        return json_response(success_status({"name": target.name, "kind": target.kind.plural}))
    foreground = (
        request.query_params.get("propagationPolicy") or options.get("propagationPolicy")
    ) == "Foreground"
    return json_response(remaining, status=202 if foreground else 200)


# --------------------------------------------------------------------------- routes

COLLECTION: dict[str, Handler] = {"GET": list_or_watch, "POST": create, "DELETE": delete_collection}
ITEM: dict[str, Handler] = {"GET": get, "PUT": replace, "PATCH": modify, "DELETE": remove}
STATUS: dict[str, Handler] = {"GET": get, "PUT": replace, "PATCH": modify}


async def _dispatch(table_: dict[str, Handler], request: Request, target: Target) -> Response:
    handler = table_.get(request.method)
    if handler is None:
        raise method_not_allowed()
    return await handler(request, target)


def _core_routes() -> None:
    async def core_all(request: Request, plural: str) -> Response:
        target = resolve("", "v1", plural)
        if request.method != "GET" and target.kind.namespaced:
            raise method_not_allowed()
        return await _dispatch(COLLECTION, request, target)

    async def core_collection(request: Request, namespace: str, plural: str) -> Response:
        return await _dispatch(COLLECTION, request, resolve("", "v1", plural, namespace=namespace))

    async def core_item(request: Request, namespace: str, plural: str, name: str) -> Response:
        return await _dispatch(ITEM, request, resolve("", "v1", plural, namespace=namespace, name=name))

    router.add_api_route(
        "/api/v1/{plural}", core_all, methods=["GET"], summary="List core objects of all namespaces"
    )
    router.add_api_route(
        "/api/v1/namespaces/{namespace}/{plural}",
        core_collection,
        methods=list(COLLECTION),
        summary="List, watch, create or delete core objects of a namespace",
    )
    router.add_api_route(
        "/api/v1/namespaces/{namespace}/{plural}/{name}",
        core_item,
        methods=list(ITEM),
        summary="Read, replace, patch or delete one core object",
    )


def _group_routes() -> None:
    base = "/apis/{group}/{version}"

    async def namespaced_collection(
        request: Request, group: str, version: str, namespace: str, plural: str
    ) -> Response:
        return await _dispatch(COLLECTION, request, resolve(group, version, plural, namespace=namespace))

    async def namespaced_item(
        request: Request, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Response:
        return await _dispatch(ITEM, request, resolve(group, version, plural, namespace=namespace, name=name))

    async def namespaced_status(
        request: Request, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Response:
        target = resolve(group, version, plural, namespace=namespace, name=name, subresource="status")
        return await _dispatch(STATUS, request, target)

    async def cluster_collection(request: Request, group: str, version: str, plural: str) -> Response:
        target = resolve(group, version, plural)
        if request.method != "GET" and target.kind.namespaced:
            raise method_not_allowed()
        return await _dispatch(COLLECTION, request, target)

    async def cluster_item(request: Request, group: str, version: str, plural: str, name: str) -> Response:
        return await _dispatch(ITEM, request, resolve(group, version, plural, name=name))

    async def cluster_status(request: Request, group: str, version: str, plural: str, name: str) -> Response:
        return await _dispatch(
            STATUS, request, resolve(group, version, plural, name=name, subresource="status")
        )

    routes: list[tuple[str, Callable[..., Awaitable[Response]], dict[str, Handler], str]] = [
        ("/namespaces/{namespace}/{plural}", namespaced_collection, COLLECTION, "objects of a namespace"),
        ("/namespaces/{namespace}/{plural}/{name}", namespaced_item, ITEM, "one namespaced object"),
        (
            "/namespaces/{namespace}/{plural}/{name}/status",
            namespaced_status,
            STATUS,
            "the status of one object",
        ),
        ("/{plural}", cluster_collection, COLLECTION, "cluster-scoped objects (or every namespace's)"),
        ("/{plural}/{name}", cluster_item, ITEM, "one cluster-scoped object"),
        ("/{plural}/{name}/status", cluster_status, STATUS, "the status of one cluster-scoped object"),
    ]
    for path, endpoint, methods, what in routes:
        router.add_api_route(base + path, endpoint, methods=list(methods), summary=f"Resource API: {what}")


_core_routes()
_group_routes()
