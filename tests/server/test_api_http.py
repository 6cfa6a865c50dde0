"""The resource API of a real ``bobrapet serve`` over HTTP: paths, shapes and Status errors."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.server.serving import Serve, manifest, story

RUNS = "/apis/runs.bubustack.io/v1alpha1"
CORE = "/apis/bubustack.io/v1alpha1"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def cm_path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps" + (f"/{name}" if name else "")


def assert_status(reply: Any, code: int, reason: str) -> dict[str, Any]:
    assert reply.status == code, reply.body
    body: dict[str, Any] = reply.body
    assert body["kind"] == "Status" and body["apiVersion"] == "v1", body
    assert body["status"] == "Failure" and body["code"] == code and body["reason"] == reason, body
    assert reply.headers["Content-Type"].startswith("application/json")
    return body


# ----------------------------------------------------------------------------- discovery


def test_discovery_lists_every_kind_with_verbs_and_scope(serve: Serve) -> None:
    version = serve.request("GET", "/version").body
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")
    assert serve.request("GET", "/api").body["versions"] == ["v1"]
    core = {r["name"]: r for r in serve.request("GET", "/api/v1").body["resources"]}
    assert {"configmaps", "secrets", "events"} <= set(core)
    groups = {g["name"] for g in serve.request("GET", "/apis").body["groups"]}
    assert groups == {
        "bubustack.io",
        "catalog.bubustack.io",
        "runs.bubustack.io",
        "transport.bubustack.io",
        "policy.bubustack.io",
    }
    group = serve.request("GET", "/apis/runs.bubustack.io").body
    assert group["preferredVersion"]["groupVersion"] == "runs.bubustack.io/v1alpha1"
    listing = serve.request("GET", RUNS).body
    assert listing["kind"] == "APIResourceList" and listing["groupVersion"] == "runs.bubustack.io/v1alpha1"
    resources = {r["name"]: r for r in listing["resources"]}
    storyruns = resources["storyruns"]
    assert storyruns["namespaced"] is True and storyruns["kind"] == "StoryRun"
    assert storyruns["shortNames"] == ["srun"] and "runs" in storyruns["categories"]
    assert {"get", "list", "watch", "create", "update", "patch", "delete"} <= set(storyruns["verbs"])
    assert resources["storyruns/status"]["verbs"] == ["get", "patch", "update"]
    catalog = {
        r["name"]: r for r in serve.request("GET", "/apis/catalog.bubustack.io/v1alpha1").body["resources"]
    }
    assert catalog["engramtemplates"]["namespaced"] is False


def test_unknown_paths_are_not_found_statuses(serve: Serve) -> None:
    for path in ("/apis/nope.io/v1", "/apis/runs.bubustack.io/v9/storyruns", f"{RUNS}/widgets", "/nowhere"):
        body = assert_status(serve.request("GET", path), 404, "NotFound")
        assert body["message"] == "the server could not find the requested resource"
    # a cluster-scoped kind has no namespaced path, a core kind no status subresource
    assert_status(
        serve.request("GET", "/apis/catalog.bubustack.io/v1alpha1/namespaces/a/engramtemplates"),
        404,
        "NotFound",
    )
    assert_status(serve.request("GET", cm_path("default", "x") + "/status"), 404, "NotFound")


# ----------------------------------------------------------------------------- CRUD


def test_create_get_list_update_delete_a_core_object(serve: Serve) -> None:
    ns = "crud"
    created = serve.request("POST", cm_path(ns), manifest("ConfigMap", "settings", ns, data={"a": "1"}))
    assert created.status == 201
    assert created.body["metadata"]["uid"] and created.body["metadata"]["resourceVersion"]
    got = serve.request("GET", cm_path(ns, "settings")).body
    assert got["data"] == {"a": "1"}
    listed = serve.request("GET", cm_path(ns)).body
    assert listed["kind"] == "ConfigMapList" and listed["apiVersion"] == "v1"
    assert [o["metadata"]["name"] for o in listed["items"]] == ["settings"]
    assert int(listed["metadata"]["resourceVersion"]) >= int(got["metadata"]["resourceVersion"])
    # an update with the current resourceVersion works; the old one is then stale
    changed = serve.request("PUT", cm_path(ns, "settings"), {**got, "data": {"a": "2"}})
    assert changed.status == 200 and changed.body["data"] == {"a": "2"}
    stale = assert_status(
        serve.request("PUT", cm_path(ns, "settings"), {**got, "data": {"a": "3"}}), 409, "Conflict"
    )
    assert "the object has been modified" in stale["message"]
    gone = serve.request("DELETE", cm_path(ns, "settings"))
    assert gone.status == 200
    assert gone.body["status"] == "Success" and gone.body["details"]["name"] == "settings"
    missing = assert_status(serve.request("GET", cm_path(ns, "settings")), 404, "NotFound")
    assert missing["message"] == 'configmaps "settings" not found'
    assert missing["details"] == {"name": "settings", "kind": "configmaps"}


def test_already_exists_invalid_and_bad_bodies_are_statuses(serve: Serve) -> None:
    ns = "errors"
    path = f"{CORE}/namespaces/{ns}/stories"
    assert serve.request("POST", path, story("gated", ns)).status == 201
    exists = assert_status(serve.request("POST", path, story("gated", ns)), 409, "AlreadyExists")
    assert exists["message"] == 'stories.bubustack.io "gated" already exists'
    bad = story("bad", ns, steps=[{"name": "a", "type": "gate", "needs": ["missing"]}])
    invalid = assert_status(serve.request("POST", path, bad), 422, "Invalid")
    assert invalid["details"]["causes"] and all(c["field"] for c in invalid["details"]["causes"])
    assert any("missing" in c["message"] for c in invalid["details"]["causes"])
    not_json = assert_status(serve.request("POST", path, raw=b"{not json"), 400, "BadRequest")
    assert "not valid JSON" in not_json["message"]
    assert_status(serve.request("POST", path, raw=b"[1, 2]"), 400, "BadRequest")
    wrong_ns = assert_status(serve.request("POST", path, story("other", "elsewhere")), 400, "BadRequest")
    assert "does not match the namespace" in wrong_ns["message"]
    wrong_kind = manifest("StoryRun", "x", ns, spec={"storyRef": {"name": "gated"}})
    assert_status(serve.request("POST", path, wrong_kind), 400, "BadRequest")
    media = assert_status(
        serve.request("POST", path, raw=b"x", content_type="text/plain"), 415, "UnsupportedMediaType"
    )
    assert "application/json" in media["message"]
    # nothing half-written: the rejected objects do not exist
    names = [o["metadata"]["name"] for o in serve.request("GET", path).body["items"]]
    assert names == ["gated"]


def test_yaml_bodies_and_missing_type_fields_are_accepted(serve: Serve) -> None:
    ns = "yamlbody"
    text = b"metadata: {name: from-yaml}\ndata: {k: v}\n"
    created = serve.request("POST", cm_path(ns), raw=text, content_type="application/yaml")
    assert created.status == 201, created.body
    assert created.body["kind"] == "ConfigMap" and created.body["metadata"]["namespace"] == ns


def test_method_not_allowed_and_writes_without_namespace(serve: Serve) -> None:
    assert_status(serve.request("PUT", cm_path("default"), {}), 405, "MethodNotAllowed")
    assert_status(serve.request("POST", f"{RUNS}/storyruns", {}), 405, "MethodNotAllowed")


def test_dry_run_admits_without_storing(serve: Serve) -> None:
    ns = "dryrun"
    reply = serve.request("POST", cm_path(ns) + "?dryRun=All", manifest("ConfigMap", "ghost", ns))
    assert reply.status == 201 and reply.body["metadata"]["name"] == "ghost"
    assert_status(serve.request("GET", cm_path(ns, "ghost")), 404, "NotFound")
    assert_status(
        serve.request("POST", cm_path(ns) + "?dryRun=Some", manifest("ConfigMap", "g", ns)), 400, "BadRequest"
    )


def test_delete_held_by_a_finalizer_answers_the_object(serve: Serve) -> None:
    ns = "finalizers"
    body = manifest("ConfigMap", "held", ns)
    body["metadata"]["finalizers"] = ["example.com/hold"]
    serve.request("POST", cm_path(ns), body)
    reply = serve.request("DELETE", cm_path(ns, "held"), {"propagationPolicy": "Background"})
    assert reply.status == 200 and reply.body["kind"] == "ConfigMap"
    assert reply.body["metadata"]["deletionTimestamp"]
    released = serve.request(
        "PATCH",
        cm_path(ns, "held"),
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    assert released.status == 200, released.body
    assert_status(serve.request("GET", cm_path(ns, "held")), 404, "NotFound")
    orphan = assert_status(
        serve.request("DELETE", cm_path(ns, "x"), {"propagationPolicy": "Orphan"}), 400, "BadRequest"
    )
    assert "Orphan" in orphan["message"]


def test_delete_preconditions(serve: Serve) -> None:
    ns = "preconditions"
    created = serve.request("POST", cm_path(ns), manifest("ConfigMap", "c", ns)).body
    stale = {"preconditions": {"uid": "not-the-uid"}}
    body = assert_status(serve.request("DELETE", cm_path(ns, "c"), stale), 409, "Conflict")
    assert "Precondition failed" in body["message"]
    exact = {"preconditions": {"uid": created["metadata"]["uid"]}}
    assert serve.request("DELETE", cm_path(ns, "c"), exact).status == 200


# ----------------------------------------------------------------------------- list


def test_list_selectors_paging_and_all_namespaces(serve: Serve) -> None:
    ns = "listing"
    for index in range(5):
        obj = manifest("ConfigMap", f"item-{index}", ns)
        obj["metadata"]["labels"] = {"parity": "even" if index % 2 == 0 else "odd"}
        serve.request("POST", cm_path(ns), obj)
    even = serve.request("GET", cm_path(ns) + "?labelSelector=parity%3Deven").body["items"]
    assert [o["metadata"]["name"] for o in even] == ["item-0", "item-2", "item-4"]
    one = serve.request("GET", cm_path(ns) + "?fieldSelector=metadata.name%3Ditem-3").body["items"]
    assert [o["metadata"]["name"] for o in one] == ["item-3"]
    bad = assert_status(serve.request("GET", cm_path(ns) + "?labelSelector=%3D%3D%3D"), 400, "BadRequest")
    assert bad["message"]
    assert_status(serve.request("GET", cm_path(ns) + "?fieldSelector=spec.nope%3D1"), 400, "BadRequest")
    names: list[str] = []
    token = ""
    pages = 0
    while True:
        reply = serve.request("GET", cm_path(ns) + f"?limit=2&continue={token}").body
        names += [o["metadata"]["name"] for o in reply["items"]]
        pages += 1
        token = reply["metadata"].get("continue", "")
        if not token:
            break
    assert names == [f"item-{i}" for i in range(5)] and pages == 3
    everywhere = serve.request("GET", "/api/v1/configmaps?labelSelector=parity").body["items"]
    assert {o["metadata"]["namespace"] for o in everywhere} == {ns}


def test_table_output_uses_the_printer_columns(serve: Serve) -> None:
    ns = "tables"
    serve.request("POST", f"{CORE}/namespaces/{ns}/stories", story("gated", ns))
    run = manifest("StoryRun", "run-1", ns, spec={"storyRef": {"name": "gated"}})
    serve.request("POST", f"{RUNS}/namespaces/{ns}/storyruns", run)
    reply = serve.request("GET", f"{RUNS}/namespaces/{ns}/storyruns", headers={"Accept": TABLE})
    assert reply.status == 200
    body = reply.body
    assert body["kind"] == "Table" and body["apiVersion"] == "meta.k8s.io/v1"
    columns = [c["name"] for c in body["columnDefinitions"]]
    assert columns == ["Name", "Story", "Phase", "Duration", "Age"]
    assert body["columnDefinitions"][0]["format"] == "name"
    [row] = body["rows"]
    assert row["cells"][:2] == ["run-1", "gated"]
    assert row["object"]["kind"] == "PartialObjectMetadata" and row["object"]["metadata"]["namespace"] == ns
    single = serve.request("GET", f"{RUNS}/namespaces/{ns}/storyruns/run-1", headers={"Accept": TABLE}).body
    assert single["kind"] == "Table" and single["rows"][0]["cells"][0] == "run-1"


# ----------------------------------------------------------------------------- patch


def test_merge_and_json_patches(serve: Serve) -> None:
    ns = "patching"
    path = f"{CORE}/namespaces/{ns}/stories/gated"
    serve.request("POST", f"{CORE}/namespaces/{ns}/stories", story("gated", ns))
    merged = serve.request(
        "PATCH", path, {"metadata": {"labels": {"team": "a"}}}, content_type="application/merge-patch+json"
    )
    assert merged.status == 200 and merged.body["metadata"]["labels"] == {"team": "a"}
    ops = [
        {"op": "replace", "path": "/metadata/labels/team", "value": "b"},
        {"op": "add", "path": "/metadata/labels/x~1y", "value": "1"},
    ]
    patched = serve.request("PATCH", path, ops, content_type="application/json-patch+json")
    assert patched.status == 200 and patched.body["metadata"]["labels"] == {"team": "b", "x/y": "1"}
    failed = [{"op": "test", "path": "/metadata/labels/team", "value": "zzz"}]
    assert_status(
        serve.request("PATCH", path, failed, content_type="application/json-patch+json"), 422, "Invalid"
    )
    missing = [{"op": "remove", "path": "/spec/nothing"}]
    assert_status(
        serve.request("PATCH", path, missing, content_type="application/json-patch+json"), 422, "Invalid"
    )
    assert_status(
        serve.request("PATCH", path, raw=b"nope", content_type="application/merge-patch+json"),
        400,
        "BadRequest",
    )
    strategic = assert_status(
        serve.request("PATCH", path, {}, content_type="application/strategic-merge-patch+json"),
        415,
        "UnsupportedMediaType",
    )
    assert "--type merge" in strategic["message"]
    apply = assert_status(
        serve.request("PATCH", path, raw=b"{}", content_type="application/apply-patch+yaml"),
        415,
        "UnsupportedMediaType",
    )
    assert "server-side apply" in apply["message"]
    # a patch naming a stale resourceVersion is a Conflict; without one it applies to the latest
    stale = {"metadata": {"resourceVersion": "1", "labels": {"team": "c"}}}
    assert_status(
        serve.request("PATCH", path, stale, content_type="application/merge-patch+json"), 409, "Conflict"
    )
    assert_status(
        serve.request(
            "PATCH", f"{CORE}/namespaces/{ns}/stories/absent", {}, content_type="application/merge-patch+json"
        ),
        404,
        "NotFound",
    )


def test_strategic_merge_patch_of_a_core_kind(serve: Serve) -> None:
    ns = "strategic"
    serve.request("POST", cm_path(ns), manifest("ConfigMap", "c", ns, data={"a": "1", "b": "2"}))
    patch = {"data": {"a": None, "c": "3"}, "$setElementOrder/whatever": []}
    reply = serve.request(
        "PATCH", cm_path(ns, "c"), patch, content_type="application/strategic-merge-patch+json"
    )
    assert reply.status == 200 and reply.body["data"] == {"b": "2", "c": "3"}


# ----------------------------------------------------------------------------- status


def test_status_subresource_get_patch_put(serve: Serve) -> None:
    ns = "status"
    serve.request("POST", f"{CORE}/namespaces/{ns}/stories", story("gated", ns))
    run = manifest("StoryRun", "run-1", ns, spec={"storyRef": {"name": "gated"}})
    serve.request("POST", f"{RUNS}/namespaces/{ns}/storyruns", run)
    path = f"{RUNS}/namespaces/{ns}/storyruns/run-1"
    got = serve.request("GET", path + "/status")
    assert got.status == 200 and got.body["kind"] == "StoryRun"
    # a main-resource patch leaves status alone
    serve.request("PATCH", path, {"status": {"phase": "Failed"}}, content_type="application/merge-patch+json")
    assert serve.request("GET", path).body.get("status", {}).get("phase") != "Failed"
    decision = {"status": {"gates": {"approve": {"state": "Rejected", "message": "no"}}}}
    patched = serve.request("PATCH", path + "/status", decision, content_type="application/merge-patch+json")
    assert patched.status == 200, patched.body
    assert patched.body["status"]["gates"]["approve"]["state"] == "Rejected"
    deadline = time.monotonic() + 30
    while serve.request("GET", path).body["status"].get("phase") != "Failed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert serve.request("GET", path).body["status"]["phase"] == "Failed"  # the serve engine saw the decision
    # PUT status: stale resourceVersion → Conflict; an invalid status → Invalid (status writes are admitted)
    current = serve.request("GET", path).body
    stale = {**current, "metadata": {**current["metadata"], "resourceVersion": "1"}}
    assert_status(serve.request("PUT", path + "/status", stale), 409, "Conflict")
    broken = {**current, "status": {**current["status"], "phase": "Sideways"}}
    assert_status(serve.request("PUT", path + "/status", broken), 422, "Invalid")


# ----------------------------------------------------------------------------- watch


def watch_lines(
    serve: Serve, path: str, count: int, timeout: float = 20.0
) -> tuple[list[dict[str, Any]], Any]:
    conn = serve.connection(timeout=timeout)
    conn.request("GET", path)
    response = conn.getresponse()
    assert response.status == 200
    events = []
    for _ in range(count):
        line = response.readline()
        if not line:
            break
        events.append(json.loads(line))
    return events, conn


def test_watch_streams_events_from_a_resource_version(serve: Serve) -> None:
    ns = "watching"
    start = serve.request("GET", cm_path(ns)).body["metadata"]["resourceVersion"]
    serve.request("POST", cm_path(ns), manifest("ConfigMap", "w", ns, data={"n": "1"}))
    serve.request(
        "PATCH", cm_path(ns, "w"), {"data": {"n": "2"}}, content_type="application/merge-patch+json"
    )
    serve.request("DELETE", cm_path(ns, "w"))
    events, conn = watch_lines(
        serve, cm_path(ns) + f"?watch=true&resourceVersion={start}&allowWatchBookmarks=true", 3
    )
    conn.close()
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["data"] == {"n": "2"}


def test_watch_without_resource_version_starts_with_the_current_objects(serve: Serve) -> None:
    ns = "watchinitial"
    serve.request("POST", cm_path(ns), manifest("ConfigMap", "present", ns))
    conn = serve.connection()
    conn.request("GET", cm_path(ns) + "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan")
    response = conn.getresponse()
    first = json.loads(response.readline())
    bookmark = json.loads(response.readline())
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "present"
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    serve.request("POST", cm_path(ns), manifest("ConfigMap", "later", ns))
    later = json.loads(response.readline())
    conn.close()
    assert later["type"] == "ADDED" and later["object"]["metadata"]["name"] == "later"


def test_watch_with_a_selector_sends_deleted_when_an_object_stops_matching(serve: Serve) -> None:
    ns = "watchselect"
    obj = manifest("ConfigMap", "m", ns)
    obj["metadata"]["labels"] = {"keep": "yes"}
    conn = serve.connection()
    conn.request("GET", cm_path(ns) + "?watch=true&labelSelector=keep%3Dyes")
    response = conn.getresponse()
    serve.request("POST", cm_path(ns), obj)
    serve.request(
        "PATCH",
        cm_path(ns, "m"),
        {"metadata": {"labels": {"keep": "no"}}},
        content_type="application/merge-patch+json",
    )
    events = [json.loads(response.readline()) for _ in range(2)]
    conn.close()
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


def test_watch_ends_after_timeout_seconds(serve: Serve) -> None:
    conn = serve.connection(timeout=30)
    conn.request("GET", cm_path("quiet") + "?watch=true&timeoutSeconds=1")
    response = conn.getresponse()
    assert response.read() == b""  # nothing happened; the stream ended by itself
    conn.close()


def test_watch_from_an_expired_version_sends_an_error_event(serve: Serve) -> None:
    future = int(serve.request("GET", cm_path("x")).body["metadata"]["resourceVersion"]) + 1000
    events, conn = watch_lines(serve, cm_path("x") + f"?watch=true&resourceVersion={future}", 1)
    conn.close()
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410


# ----------------------------------------------------------------------------- probes


def test_health_metrics_and_openapi(serve: Serve) -> None:
    assert serve.request("GET", "/healthz").body == "ok"
    assert serve.request("GET", "/readyz").body == "ok"
    metrics = serve.request("GET", "/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert "bobrapet_controller_reconcile_total" in metrics.body
    assert "bobrapet_storyrun_queue_depth" in metrics.body
    root = serve.request("GET", "/openapi/v3").body["paths"]
    assert "apis/runs.bubustack.io/v1alpha1" in root and "api/v1" in root
    document = serve.request("GET", root["apis/runs.bubustack.io/v1alpha1"]["serverRelativeURL"]).body
    patch = document["paths"]["/apis/runs.bubustack.io/v1alpha1/namespaces/{namespace}/storyruns/{name}"][
        "patch"
    ]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "runs.bubustack.io",
        "version": "v1alpha1",
        "kind": "StoryRun",
    }
    assert any(p["name"] == "fieldValidation" for p in patch["parameters"])
    assert "io.bubustack.runs.v1alpha1.StoryRun" in document["components"]["schemas"]
    assert serve.request("GET", "/openapi.json").body["openapi"].startswith("3.")


def test_events_are_selected_by_their_involved_object_like_kubectl_describe(serve: Serve) -> None:
    ns = "described"
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "run-1.1", "namespace": ns},
        "involvedObject": {"kind": "StoryRun", "name": "run-1", "namespace": ns},
        "reason": "Tested",
        "message": "hello",
        "type": "Normal",
    }
    assert serve.request("POST", f"/api/v1/namespaces/{ns}/events", event).status == 201
    selector = (
        f"involvedObject.name%3Drun-1%2CinvolvedObject.namespace%3D{ns}%2CinvolvedObject.kind%3DStoryRun"
    )
    found = serve.request("GET", f"/api/v1/namespaces/{ns}/events?fieldSelector={selector}")
    assert found.status == 200, found.body
    assert [e["reason"] for e in found.body["items"]] == ["Tested"]


def test_watch_in_table_form_for_kubectl_get_watch(serve: Serve) -> None:
    ns = "watchtable"
    conn = serve.connection()
    conn.request("GET", cm_path(ns) + "?watch=true", headers={"Accept": TABLE})
    response = conn.getresponse()
    serve.request("POST", cm_path(ns), manifest("ConfigMap", "t", ns))
    event = json.loads(response.readline())
    conn.close()
    assert event["type"] == "ADDED" and event["object"]["kind"] == "Table"
    assert event["object"]["rows"][0]["cells"][0] == "t"
