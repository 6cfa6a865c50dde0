"""The generated CRDs on a real API server: install, admit valid objects, reject invalid ones.

Every rejection asserted here is made by the API server itself (OpenAPI schema,
list-map keys, CEL ``x-kubernetes-validations``); no Bobrapet admission code runs.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx2
import pytest

from bobrapet.api import kinds
from bobrapet.api.crds import generate_crds
from bobrapet.api.kinds import CRD_KINDS, Kind

from .conftest import K8s

pytestmark = pytest.mark.k8s

NOW = "2026-01-01T00:00:00Z"


def obj(kind: Kind, name: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": name},
        "spec": spec,
        **extra,
    }


def step(name: str, **fields: Any) -> dict[str, Any]:
    """A step; an Engram step (``ref: worker``) unless ``ref`` or ``type`` is given."""
    default = {} if "ref" in fields or "type" in fields else {"ref": {"name": "worker"}}
    return {"name": name, **default, **fields}


# A minimal valid object of every kind (the required fields of the reference, §1.3-1.12).
VALID: dict[str, dict[str, Any]] = {
    "Story": {
        "steps": [step("fetch"), step("wait", type="sleep", needs=["fetch"], **{"with": {"duration": "1s"}})]
    },
    "Engram": {"templateRef": {"name": "http-request"}},
    "Impulse": {"templateRef": {"name": "cron"}, "storyRef": {"name": "daily"}},
    "EngramTemplate": {"version": "1.0.0", "supportedModes": ["job"], "image": "ghcr.io/x/engram:1"},
    "ImpulseTemplate": {"version": "1.0.0", "supportedModes": ["deployment"], "image": "ghcr.io/x/impulse:1"},
    "StoryRun": {"storyRef": {"name": "daily"}, "inputs": {"n": 1}},
    "StepRun": {"storyRunRef": {"name": "daily-run"}, "stepId": "fetch"},
    "StoryTrigger": {
        "storyRef": {"name": "daily"},
        "deliveryIdentity": {"mode": "none", "submissionId": "sample-submission"},
        "inputs": {"event": {"type": "sample"}},
    },
    "EffectClaim": {
        "stepRunRef": {"name": "daily-run-fetch"},
        "effectKey": "deliver-webhook",
        "idempotencyKey": "storyrun-a/deliver",
        "holderIdentity": "worker-a",
        "leaseDurationSeconds": 30,
    },
    "Transport": {"provider": "livekit", "driver": "livekit"},
    "TransportBinding": {
        "transportRef": "livekit",
        "stepName": "talk",
        "engramName": "voice",
        "driver": "livekit",
    },
    "ReferenceGrant": {
        "from": [{"group": "bubustack.io", "kind": "Story", "namespace": "team-a"}],
        "to": [{"group": "bubustack.io", "kind": "Engram"}],
    },
}


@pytest.fixture
def ns() -> str:
    """A fresh namespace name per test (the server needs no Namespace object)."""
    return f"t-{uuid.uuid4().hex[:10]}"


def create(k8s: K8s, kind: Kind, ns: str, body: dict[str, Any]) -> httpx2.Response:
    return k8s.http.post(K8s.path(kind, ns), json=body)


def created(k8s: K8s, kind: Kind, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = create(k8s, kind, ns, body)
    assert resp.status_code == 201, resp.text[:3000]
    result: dict[str, Any] = resp.json()
    return result


def rejected(resp: httpx2.Response, field: str, message: str) -> str:
    """Assert a 422 from the server with a cause on ``field`` containing ``message``."""
    assert resp.status_code == 422, resp.text[:3000]
    body = resp.json()
    assert body["reason"] == "Invalid"
    causes = [(c.get("field"), c.get("message", "")) for c in body["details"]["causes"]]
    assert any(f == field and message in m for f, m in causes), causes[:20]
    text: str = body["message"]
    return text


# --------------------------------------------------------------------------- installation


def test_every_crd_is_established(k8s: K8s) -> None:
    assert set(k8s.crds) == {c["metadata"]["name"] for c in generate_crds()}
    for name, crd in k8s.crds.items():
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["Established"] == "True", name
        assert conditions["NamesAccepted"] == "True", name
        assert crd["status"]["acceptedNames"]["kind"] == crd["spec"]["names"]["kind"]
    # No "unrecognized format", no ignored keys: the server took the schemas as they are.
    assert k8s.install_warnings == {name: [] for name in k8s.crds}


@pytest.mark.parametrize("kind", CRD_KINDS, ids=str)
def test_short_names_and_categories_are_served_by_discovery(k8s: K8s, kind: Kind) -> None:
    crd = k8s.crds[kind.qualified_plural]
    assert crd["spec"]["names"]["shortNames"] == list(kind.short_names)
    assert crd["status"]["acceptedNames"]["shortNames"] == list(kind.short_names)
    resources = k8s.http.get(f"/apis/{kind.group}/{kind.version}").json()["resources"]
    (resource,) = [r for r in resources if r["name"] == kind.plural]
    assert resource["kind"] == kind.kind
    assert resource["namespaced"] is kind.namespaced
    assert resource["shortNames"] == list(kind.short_names)
    assert resource["categories"] == list(kind.categories)
    assert any(r["name"] == f"{kind.plural}/status" for r in resources)


@pytest.mark.parametrize("kind", CRD_KINDS, ids=str)
def test_printer_columns_are_served_as_a_table(k8s: K8s, kind: Kind, ns: str) -> None:
    crd = k8s.crds[kind.qualified_plural]
    installed = [
        (c["name"], c["type"], c["jsonPath"], c.get("priority", 0))
        for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
    ]
    assert installed == list(kind.columns)
    table = k8s.http.get(
        K8s.path(kind, ns), headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
    ).json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", *(c[0] for c in kind.columns)]


# --------------------------------------------------------------------------- valid objects


@pytest.mark.parametrize("kind", CRD_KINDS, ids=str)
def test_a_minimal_valid_object_is_accepted(k8s: K8s, kind: Kind, ns: str) -> None:
    name = f"min-{kind.singular}-{ns}"
    resp = create(k8s, kind, ns, obj(kind, name, copy.deepcopy(VALID[kind.kind])))
    assert resp.status_code == 201, resp.text[:3000]
    assert resp.headers.get_list("warning") == []  # nothing pruned as unknown
    assert resp.json()["metadata"]["generation"] == 1
    stored = k8s.http.get(K8s.path(kind, ns, name)).json()
    for key, value in VALID[kind.kind].items():
        assert stored["spec"][key] == value
    # What the server stores (with its defaults) is also a valid object for the Python models.
    kind.model.model_validate(stored)


def story_with_steps(count: int) -> dict[str, Any]:
    steps = [step(f"s{i}", needs=[f"s{i - 1}"] if i else []) for i in range(count)]
    return {"steps": steps}


@pytest.mark.parametrize("count", [202, 1000])
def test_large_stories_are_accepted(k8s: K8s, ns: str, count: int) -> None:
    story = created(k8s, kinds.STORY, ns, obj(kinds.STORY, f"big-{count}", story_with_steps(count)))
    assert len(story["spec"]["steps"]) == count
    assert story["spec"]["steps"][-1]["needs"] == [f"s{count - 2}"]
    kinds.STORY.model.model_validate(story)


def test_a_story_over_1000_steps_is_rejected(k8s: K8s, ns: str) -> None:
    resp = create(k8s, kinds.STORY, ns, obj(kinds.STORY, "too-big", story_with_steps(1001)))
    rejected(resp, "spec.steps", "must have at most 1000 items")


# --------------------------------------------------------------------------- invalid objects


def test_duplicate_step_names_are_rejected(k8s: K8s, ns: str) -> None:
    resp = create(k8s, kinds.STORY, ns, obj(kinds.STORY, "dup", {"steps": [step("a"), step("b"), step("a")]}))
    message = rejected(resp, "spec.steps[2]", "Duplicate value")
    assert '{"name":"a"}' in message


def test_a_step_with_both_ref_and_type_is_rejected(k8s: K8s, ns: str) -> None:
    both = step("a", ref={"name": "worker"}, type="sleep")
    resp = create(k8s, kinds.STORY, ns, obj(kinds.STORY, "both", {"steps": [both]}))
    rejected(resp, "spec.steps[0]", "each step must set exactly one of ref or type")


def test_a_step_with_neither_ref_nor_type_is_rejected(k8s: K8s, ns: str) -> None:
    resp = create(k8s, kinds.STORY, ns, obj(kinds.STORY, "neither", {"steps": [{"name": "a"}]}))
    rejected(resp, "spec.steps[0]", "each step must set exactly one of ref or type")


def test_a_wrong_enum_value_is_rejected(k8s: K8s, ns: str) -> None:
    resp = create(k8s, kinds.STORY, ns, obj(kinds.STORY, "weird", {"pattern": "weird", "steps": [step("a")]}))
    message = rejected(resp, "spec.pattern", 'Unsupported value: "weird"')
    assert '"batch", "realtime"' in message


def test_a_bad_step_name_is_rejected(k8s: K8s, ns: str) -> None:
    resp = create(k8s, kinds.STORY, ns, obj(kinds.STORY, "bad-name", {"steps": [step("Not_A_Label")]}))
    rejected(resp, "spec.steps[0].name", "should match")


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        (kinds.STORY_RUN, {"inputs": {}}, "spec.storyRef"),
        (kinds.STEP_RUN, {"storyRunRef": {"name": "r"}}, "spec.stepId"),
        (kinds.ENGRAM, {"mode": "job"}, "spec.templateRef"),
        (kinds.STORY, {}, "spec.steps"),
    ],
    ids=["StoryRun.storyRef", "StepRun.stepId", "Engram.templateRef", "Story.steps"],
)
def test_a_missing_required_field_is_rejected(
    k8s: K8s, ns: str, kind: Kind, spec: dict[str, Any], field: str
) -> None:
    rejected(create(k8s, kind, ns, obj(kind, "missing", spec)), field, "Required value")


def test_unknown_fields_are_pruned_with_a_warning_or_rejected_when_strict(k8s: K8s, ns: str) -> None:
    body = obj(kinds.STORY_RUN, "unknown", {**VALID["StoryRun"], "bogus": 1})
    resp = create(k8s, kinds.STORY_RUN, ns, body)
    assert resp.status_code == 201, resp.text
    assert resp.headers.get_list("warning") == ['299 - "unknown field \\"spec.bogus\\""']
    assert "bogus" not in resp.json()["spec"]
    strict = k8s.http.post(
        K8s.path(kinds.STORY_RUN, ns),
        params={"fieldValidation": "Strict"},
        json={**body, "metadata": {"name": "u2"}},
    )
    assert strict.status_code == 400, strict.text
    assert (
        strict.json()["message"] == 'StoryRun in version "v1alpha1" cannot be handled as a StoryRun: '
        'strict decoding error: unknown field "spec.bogus"'
    )


def test_a_missing_spec_is_rejected(k8s: K8s, ns: str) -> None:
    body = {"apiVersion": kinds.STORY_RUN.api_version, "kind": "StoryRun", "metadata": {"name": "nospec"}}
    rejected(create(k8s, kinds.STORY_RUN, ns, body), "spec", "Required value")


def condition(type_: str, reason: str = "Running", **extra: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": "",
        "lastTransitionTime": NOW,
        **extra,
    }


def put_status(
    k8s: K8s, kind: Kind, ns: str, current: dict[str, Any], status: dict[str, Any]
) -> httpx2.Response:
    body = {**current, "status": status}
    return k8s.http.put(K8s.path(kind, ns, current["metadata"]["name"], "status"), json=body)


def test_storyrun_conditions_without_ready_are_rejected(k8s: K8s, ns: str) -> None:
    run = created(k8s, kinds.STORY_RUN, ns, obj(kinds.STORY_RUN, "run", VALID["StoryRun"]))
    resp = put_status(
        k8s, kinds.STORY_RUN, ns, run, {"phase": "Running", "conditions": [condition("Progressing")]}
    )
    rejected(resp, "status", "status.conditions must include Ready when conditions are set")
    ok = put_status(k8s, kinds.STORY_RUN, ns, run, {"phase": "Running", "conditions": [condition("Ready")]})
    assert ok.status_code == 200, ok.text


def test_storyrun_conditions_without_transition_time_are_rejected(k8s: K8s, ns: str) -> None:
    run = created(k8s, kinds.STORY_RUN, ns, obj(kinds.STORY_RUN, "run", VALID["StoryRun"]))
    ready = condition("Ready")
    del ready["lastTransitionTime"]
    resp = put_status(k8s, kinds.STORY_RUN, ns, run, {"conditions": [ready]})
    assert resp.status_code == 422, resp.text[:3000]
    assert "status.conditions entries must set lastTransitionTime" in resp.text


@pytest.mark.parametrize("kind", [kinds.STORY_RUN, kinds.STEP_RUN], ids=str)
def test_a_condition_reason_over_64_characters_is_rejected(k8s: K8s, ns: str, kind: Kind) -> None:
    current = created(k8s, kind, ns, obj(kind, "long-reason", VALID[kind.kind]))
    resp = put_status(k8s, kind, ns, current, {"conditions": [condition("Ready", reason="R" * 65)]})
    rejected(resp, "status", "status.conditions reason field must be <= 64 characters")
    ok = put_status(k8s, kind, ns, current, {"conditions": [condition("Ready", reason="R" * 64)]})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("kind", [kinds.STORY_RUN, kinds.STEP_RUN], ids=str)
def test_a_condition_message_over_2048_characters_is_rejected(k8s: K8s, ns: str, kind: Kind) -> None:
    current = created(k8s, kind, ns, obj(kind, "long-message", VALID[kind.kind]))
    resp = put_status(k8s, kind, ns, current, {"conditions": [condition("Ready", message="m" * 2049)]})
    rejected(resp, "status", "status.conditions message field must be <= 2048 characters")


def test_duplicate_condition_types_are_rejected(k8s: K8s, ns: str) -> None:
    run = created(k8s, kinds.STORY_RUN, ns, obj(kinds.STORY_RUN, "dup-cond", VALID["StoryRun"]))
    resp = put_status(k8s, kinds.STORY_RUN, ns, run, {"conditions": [condition("Ready"), condition("Ready")]})
    rejected(resp, "status.conditions[1]", "Duplicate value")


# --------------------------------------------------------------------------- status subresource


def test_status_subresource_semantics(k8s: K8s, ns: str) -> None:
    kind = kinds.STORY_RUN
    path = K8s.path(kind, ns, "semantics")
    # Status sent on create is dropped: only /status writes it.
    run = created(k8s, kind, ns, obj(kind, "semantics", VALID["StoryRun"], status={"phase": "Running"}))
    assert run["metadata"]["generation"] == 1
    assert run.get("status", {}).get("phase") is None

    # A spec change through the main resource bumps the generation.
    run["spec"]["inputs"] = {"n": 2}
    run = k8s.http.put(path, json=run).json()
    assert run["metadata"]["generation"] == 2
    assert run["spec"]["inputs"] == {"n": 2}

    # A status write through the main resource is ignored (and does not bump the generation).
    run["status"] = {"phase": "Running"}
    run = k8s.http.put(path, json=run).json()
    assert run.get("status", {}).get("phase") is None
    assert run["metadata"]["generation"] == 2

    # /status writes status only: the generation stays, spec changes sent along are ignored.
    body = copy.deepcopy(run)
    body["status"] = {"phase": "Running", "conditions": [condition("Ready")]}
    body["spec"]["inputs"] = {"n": 3}
    resp = k8s.http.put(f"{path}/status", json=body)
    assert resp.status_code == 200, resp.text
    run = resp.json()
    assert run["status"]["phase"] == "Running"
    assert run["spec"]["inputs"] == {"n": 2}
    assert run["metadata"]["generation"] == 2

    # A stale resourceVersion is a Conflict.
    stale = copy.deepcopy(body)
    resp = k8s.http.put(path, json=stale)
    assert resp.status_code == 409, resp.text


def test_selectable_fields_filter_lists(k8s: K8s, ns: str) -> None:
    kind = kinds.STORY_RUN
    for name, story in (("a1", "alpha"), ("a2", "alpha"), ("b1", "beta")):
        created(k8s, kind, ns, obj(kind, name, {"storyRef": {"name": story}}))
    resp = k8s.http.get(K8s.path(kind, ns), params={"fieldSelector": "spec.storyRef.name=alpha"})
    assert resp.status_code == 200, resp.text
    assert sorted(i["metadata"]["name"] for i in resp.json()["items"]) == ["a1", "a2"]


def test_lightkube_reaches_the_server_through_the_kubeconfig(k8s: K8s, ns: str) -> None:
    from lightkube import Client, KubeConfig
    from lightkube.generic_resource import create_namespaced_resource
    from lightkube.models.meta_v1 import ObjectMeta

    kind = kinds.STORY
    story_resource = create_namespaced_resource(kind.group, kind.version, kind.kind, kind.plural)
    client = Client(config=KubeConfig.from_file(k8s.server.kubeconfig))
    made = client.create(
        story_resource(metadata=ObjectMeta(name="via-lightkube"), spec=VALID["Story"]), namespace=ns
    )
    assert made.spec["pattern"] == "batch"  # the CRD default, applied by the server
    assert [s.metadata and s.metadata.name for s in client.list(story_resource, namespace=ns)] == [
        "via-lightkube"
    ]
