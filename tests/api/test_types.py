"""The resource models: compat manifests, limits, CRD defaults, schema annotations."""

from __future__ import annotations

import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from bobrapet.api import kinds
from bobrapet.api.structural import check
from bobrapet.api.types import enums
from bobrapet.api.types.story import Story

COMPAT = Path(__file__).resolve().parents[2].parent / "shared" / "compat"
CHECKED_KINDS = {
    "Story",
    "Engram",
    "Impulse",
    "EngramTemplate",
    "ImpulseTemplate",
    "StoryRun",
    "StoryTrigger",
    "EffectClaim",
}


def _compat_docs() -> Iterator[tuple[str, int, dict[str, Any]]]:
    for path in sorted(COMPAT.rglob("*.yaml")):
        with path.open() as fh:
            for index, doc in enumerate(yaml.safe_load_all(fh)):
                if isinstance(doc, dict) and doc.get("kind") in CHECKED_KINDS:
                    yield str(path.relative_to(COMPAT)), index, doc


ALL_DOCS = list(_compat_docs())
# kubebuilder scaffolds whose spec is only a comment (``spec: null``).
NULL_SPEC = [(p, i, d) for p, i, d in ALL_DOCS if d.get("spec") is None]
# Generated examples that put ``mcp`` directly under spec instead of under spec.with.
MISPLACED_MCP = [(p, i, d) for p, i, d in ALL_DOCS if isinstance(d.get("spec"), dict) and "mcp" in d["spec"]]
GOOD = [(p, i, d) for p, i, d in ALL_DOCS if (p, i, d) not in NULL_SPEC and (p, i, d) not in MISPLACED_MCP]


def _kind(doc: dict[str, Any]) -> kinds.Kind:
    kind = kinds.for_object(doc["apiVersion"], doc["kind"])
    assert kind is not None
    return kind


def test_compat_corpus_is_present() -> None:
    assert len(GOOD) >= 40
    assert {d["kind"] for _, _, d in GOOD} == CHECKED_KINDS


@pytest.mark.parametrize(("path", "index", "doc"), GOOD, ids=[f"{p}#{i}" for p, i, _ in GOOD])
def test_compat_manifest_parses(path: str, index: int, doc: dict[str, Any]) -> None:
    normalized, causes = check(_kind(doc), doc)
    assert causes == []
    # the normalized form is a fixed point
    again, causes2 = check(_kind(doc), normalized)
    assert causes2 == []
    assert again == normalized


@pytest.mark.parametrize(("path", "index", "doc"), NULL_SPEC, ids=[p for p, _, _ in NULL_SPEC])
def test_scaffold_samples_fail_on_the_required_spec(path: str, index: int, doc: dict[str, Any]) -> None:
    _, causes = check(_kind(doc), doc)
    assert [(c.field, c.message) for c in causes] == [("spec", "required field is missing")]


def test_misplaced_mcp_examples_report_the_unknown_field() -> None:
    assert MISPLACED_MCP
    for _, _, doc in MISPLACED_MCP:
        _, causes = check(_kind(doc), doc)
        assert [c.field for c in causes] == ["spec.mcp"]
        assert causes[0].message.startswith('unknown field "mcp"; valid fields are: version, templateRef')


def _story(steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Story",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"steps": steps, **spec},
    }


def _chain(n: int) -> list[dict[str, Any]]:
    return [
        {"name": f"s{i}", "ref": {"name": "worker"}, **({"needs": [f"s{i - 1}"]} if i else {})}
        for i in range(n)
    ]


def test_a_story_may_have_1000_steps_but_not_1001() -> None:
    _, causes = check(kinds.STORY, _story(_chain(1000)))
    assert causes == []
    _, causes = check(kinds.STORY, _story(_chain(1001)))
    assert [(c.field, c.message) for c in causes] == [
        ("spec.steps", "must have at most 1000 items (got 1001)")
    ]


def test_compensations_and_finally_are_limited_to_50() -> None:
    extra = [{"name": f"c{i}", "type": "sleep"} for i in range(51)]
    _, causes = check(kinds.STORY, _story(_chain(1), compensations=extra, **{"finally": extra[:50]}))
    assert [(c.field, c.message) for c in causes] == [
        ("spec.compensations", "must have at most 50 items (got 51)")
    ]


def test_steps_must_not_be_empty() -> None:
    _, causes = check(kinds.STORY, _story([]))
    assert [(c.field, c.message) for c in causes] == [
        ("spec.steps", "must not be empty: give at least one item")
    ]


def test_a_1000_step_story_checks_fast() -> None:
    doc = _story(_chain(1000))
    best = min(_timed(lambda: check(kinds.STORY, doc)) for _ in range(3))
    assert best < 1.0  # CPU time, ~60x the typical ~15 ms: catches a blow-up, not a busy machine


def _timed(fn: Any) -> float:
    start = time.process_time()  # CPU time: other processes on a loaded machine do not add to it
    fn()
    return time.process_time() - start


def test_step_must_set_exactly_one_of_ref_or_type() -> None:
    both = {"name": "a", "ref": {"name": "e"}, "type": "sleep"}
    neither = {"name": "b"}
    _, causes = check(kinds.STORY, _story([both, neither]))
    assert [(c.field, c.message) for c in causes] == [
        ("spec.steps[0]", "each step must set exactly one of ref or type"),
        ("spec.steps[1]", "each step must set exactly one of ref or type"),
    ]


def test_crd_defaults_are_applied_where_the_object_exists() -> None:
    doc = _story(
        [{"name": "a", "ref": {"name": "e"}, "execution": {"retry": {}, "cache": {}}}],
        policy={"retries": {"stepRetryPolicy": {"backoff": "linear"}}},
        concurrency={},
    )
    out, causes = check(kinds.STORY, doc)
    assert causes == []
    spec = out["spec"]
    assert spec["pattern"] == "batch"
    assert spec["concurrency"] == {"mode": "parallel", "scope": "storyrun"}
    assert spec["steps"][0]["execution"]["retry"] == {"maxRetries": 3, "delay": "1s"}
    assert spec["steps"][0]["execution"]["cache"] == {"enabled": True, "mode": "readWrite"}
    assert spec["policy"]["retries"] == {
        "stepRetryPolicy": {"backoff": "linear", "maxRetries": 3, "delay": "1s"},
        "continueOnStepFailure": False,
    }


def test_absent_optional_objects_stay_absent() -> None:
    out, causes = check(kinds.STORY, _story([{"name": "a", "ref": {"name": "e"}}]))
    assert causes == []
    assert out["spec"] == {"steps": [{"name": "a", "ref": {"name": "e"}}], "pattern": "batch"}
    assert "status" not in out


def test_workload_mode_defaults_to_job_and_no_automount_default() -> None:
    doc = {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Impulse",
        "metadata": {"name": "i"},
        "spec": {
            "templateRef": {"name": "cron"},
            "storyRef": {"name": "s"},
            "workload": {},
            "execution": {"probes": {}},
        },
    }
    out, causes = check(kinds.IMPULSE, doc)
    assert causes == []
    assert out["spec"]["workload"] == {"mode": "job"}
    assert out["spec"]["execution"] == {"probes": {}}


def test_steprun_status_always_has_retries() -> None:
    doc = {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StepRun",
        "metadata": {"name": "r-a"},
        "spec": {"storyRunRef": {"name": "r"}, "stepId": "a"},
        "status": {"phase": "Running"},
    }
    out, causes = check(kinds.STEP_RUN, doc, include_status=True)
    assert causes == []
    assert out["status"] == {"phase": "Running", "retries": 0}


def test_secret_bindings_accept_the_name_object_spelling() -> None:
    out, causes = check(
        kinds.STORY,
        _story([{"name": "a", "ref": {"name": "e"}, "secrets": {"k": {"name": "s1"}, "j": "s2"}}]),
    )
    assert causes == []
    assert out["spec"]["steps"][0]["secrets"] == {"k": "s1", "j": "s2"}


def _template(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "catalog.bubustack.io/v1alpha1",
        "kind": "EngramTemplate",
        "metadata": {"name": "t"},
        "spec": {"supportedModes": ["job"], **spec},
    }


def test_template_execution_fields() -> None:
    out, causes = check(
        kinds.ENGRAM_TEMPLATE, _template(entrypoint="pkg.mod:Engram.run", command=["python", "-V"])
    )
    assert causes == []
    assert out["spec"]["entrypoint"] == "pkg.mod:Engram.run"
    _, causes = check(kinds.ENGRAM_TEMPLATE, _template(entrypoint="pkg/mod.py"))
    assert [c.field for c in causes] == ["spec.entrypoint"]
    assert 'must look like "package.module:callable"' in causes[0].message
    _, causes = check(kinds.ENGRAM_TEMPLATE, _template(command=[]))
    assert [c.field for c in causes] == ["spec.command"]
    _, causes = check(kinds.ENGRAM_TEMPLATE, _template(supportedModes=["job", "job", "job", "job"]))
    assert [(c.field, c.message) for c in causes] == [
        ("spec.supportedModes", "must have at most 3 items (got 4)")
    ]
    _, causes = check(kinds.ENGRAM_TEMPLATE, _template(image="x" * 513))
    assert [(c.field, c.message) for c in causes] == [
        ("spec.image", "must be at most 512 characters long (got 513)")
    ]


def _steprun_with_error(error: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StepRun",
        "metadata": {"name": "r-a"},
        "spec": {"storyRunRef": {"name": "r"}, "stepId": "a"},
        "status": {"error": error},
    }


def test_structured_error_v1() -> None:
    good = {
        "version": "v1",
        "type": "timeout",
        "message": "took too long",
        "retryable": True,
        "exitCode": 0,
        "exitClass": "retry",
        "code": "T1",
        "details": {"x": None},
    }
    out, causes = check(kinds.STEP_RUN, _steprun_with_error(good), include_status=True)
    assert causes == []
    assert out["status"]["error"] == good
    bad = {"version": "v2", "type": "oops", "message": "", "exitCode": -1, "extra": 1}
    _, causes = check(kinds.STEP_RUN, _steprun_with_error(bad), include_status=True)
    assert {c.field for c in causes} == {
        "status.error.version",
        "status.error.type",
        "status.error.message",
        "status.error.exitCode",
        "status.error.extra",
    }


def _storyrun_status(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "runs.bubustack.io/v1alpha1",
        "kind": "StoryRun",
        "metadata": {"name": "r"},
        "spec": {"storyRef": {"name": "s"}},
        "status": status,
    }


def test_storyrun_status_condition_rules() -> None:
    ts = "2024-05-01T12:00:00Z"
    ok = {
        "conditions": [{"type": "Ready", "status": "True", "reason": "Completed", "lastTransitionTime": ts}]
    }
    assert check(kinds.STORY_RUN, _storyrun_status(ok), include_status=True)[1] == []
    no_ready = {"conditions": [{"type": "Progressing", "status": "True", "lastTransitionTime": ts}]}
    _, causes = check(kinds.STORY_RUN, _storyrun_status(no_ready), include_status=True)
    assert [(c.field, c.message) for c in causes] == [
        ("status", "status.conditions must include Ready when conditions are set")
    ]
    no_time = {"conditions": [{"type": "Ready", "status": "True"}]}
    _, causes = check(kinds.STORY_RUN, _storyrun_status(no_time), include_status=True)
    assert causes[0].message == "status.conditions entries must set lastTransitionTime"
    long_reason = {
        "conditions": [{"type": "Ready", "status": "True", "reason": "R" * 65, "lastTransitionTime": ts}]
    }
    _, causes = check(kinds.STORY_RUN, _storyrun_status(long_reason), include_status=True)
    assert causes[0].message == "status.conditions reason field must be <= 64 characters"


def test_timestamps() -> None:
    from datetime import UTC, datetime

    good = _storyrun_status({"startedAt": "2024-05-01T12:00:00.123456+02:00"})
    assert check(kinds.STORY_RUN, good, include_status=True)[1] == []
    as_datetime = _storyrun_status({"startedAt": datetime(2024, 5, 1, 12, 0, tzinfo=UTC)})
    out, causes = check(kinds.STORY_RUN, as_datetime, include_status=True)
    assert causes == []
    assert out["status"]["startedAt"] == "2024-05-01T12:00:00Z"
    _, causes = check(kinds.STORY_RUN, _storyrun_status({"startedAt": "yesterday"}), include_status=True)
    assert [c.field for c in causes] == ["status.startedAt"]
    assert "RFC 3339" in causes[0].message
    _, causes = check(
        kinds.STORY_RUN, _storyrun_status({"startedAt": "2024-13-01T00:00:00Z"}), include_status=True
    )
    assert [c.field for c in causes] == ["status.startedAt"]


def test_core_kinds() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    assert check(kinds.CONFIG_MAP, cm)[1] == []
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "type": "Opaque",
        "data": {"k": "aGVsbG8="},
        "stringData": {"plain": "text"},
    }
    out, causes = check(kinds.SECRET, secret)
    assert causes == []
    assert out == secret
    secret["data"] = {"k": "not base64!"}
    _, causes = check(kinds.SECRET, secret)
    assert [c.field for c in causes] == ["data[k]"]
    assert "base64" in causes[0].message


def test_enum_tuples_match_their_literals() -> None:
    assert get_args(enums.Phase) == enums.PHASES
    assert set(enums.TERMINAL_PHASES) <= set(enums.PHASES)
    assert enums.STEP_TYPES == ("condition", "parallel", "sleep", "stop", "wait", "executeStory", "gate")
    assert enums.EXIT_CLASSES == ("success", "retry", "terminal", "rateLimited", "unknown")


def test_models_construct_from_python_with_defaults() -> None:
    story = Story.model_validate(
        {"metadata": {"name": "x"}, "spec": {"steps": [{"name": "a", "type": "sleep"}]}}
    )
    wire = story.to_wire()
    assert wire["apiVersion"] == "bubustack.io/v1alpha1"
    assert wire["kind"] == "Story"
    assert wire["spec"]["pattern"] == "batch"


# --------------------------------------------------------------------------- schema annotations


def _models_of(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    stack = [model]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        yield current
        for field in current.model_fields.values():
            stack.extend(_nested_models(field.annotation))


def _nested_models(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    origin = get_origin(tp)
    if origin in (Annotated,):
        return _nested_models(get_args(tp)[0])
    if origin in (list, dict, tuple, Union, types.UnionType, Literal):
        found: list[type[BaseModel]] = []
        if origin is Literal:
            return found
        for arg in get_args(tp):
            found.extend(_nested_models(arg))
        return found
    return []


@pytest.mark.parametrize("kind", kinds.ALL_KINDS, ids=str)
def test_every_field_has_a_description(kind: kinds.Kind) -> None:
    missing = [
        f"{model.__name__}.{name}"
        for model in _models_of(kind.model)
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert missing == []


def _walk_schema(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk_schema(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_schema(value)


@pytest.mark.parametrize("kind", kinds.CRD_KINDS, ids=str)
def test_crd_annotations(kind: kinds.Kind) -> None:
    schema = kind.model.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    assert "spec" in schema["required"]
    for node in _walk_schema(schema):
        props = node.get("properties", {})
        conditions = props.get("conditions")
        if conditions is not None:
            assert conditions["x-kubernetes-list-type"] == "map"
            assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        for prop in props.values():
            if prop.get("x-kubernetes-list-type") == "map":
                items = next(p["items"] for p in prop.get("anyOf", [prop]) if "items" in p)
                item_schema = defs[items["$ref"].split("/")[-1]]
                for key in prop["x-kubernetes-list-map-keys"]:
                    assert key in item_schema["required"], (kind, key)
                assert any("maxItems" in p for p in prop.get("anyOf", [prop]))


def test_story_schema_annotations() -> None:
    schema = kinds.STORY.model.model_json_schema(by_alias=True)
    steps = schema["$defs"]["StorySpec"]["properties"]["steps"]
    assert steps["x-kubernetes-list-type"] == "map"
    assert steps["x-kubernetes-list-map-keys"] == ["name"]
    assert steps["maxItems"] == 1000
    assert schema["$defs"]["Step"]["x-kubernetes-validations"] == [
        {
            "rule": "has(self.ref) != has(self.type)",
            "message": "each step must set exactly one of ref or type",
        }
    ]
    with_schema = schema["$defs"]["Step"]["properties"]["with"]["anyOf"][0]
    assert with_schema == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def test_storyrun_and_steprun_status_rules() -> None:
    sr = kinds.STORY_RUN.model.model_json_schema(by_alias=True)["$defs"]["StoryRunStatus"]
    messages = [r["message"] for r in sr["x-kubernetes-validations"]]
    assert messages == [
        "status.conditions must include Ready when conditions are set",
        "status.conditions entries must set lastTransitionTime",
        "status.conditions reason field must be <= 64 characters",
        "status.conditions message field must be <= 2048 characters",
    ]
    st = kinds.STEP_RUN.model.model_json_schema(by_alias=True)["$defs"]["StepRunStatus"]
    for name in ("signalEvents", "effects"):
        prop = st["properties"][name]
        assert prop["x-kubernetes-list-map-keys"] == ["seq"]
        assert prop["anyOf"][0]["maxItems"] == 256
