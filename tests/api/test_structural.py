"""Structural checks: error paths and messages, normalization, never raising."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bobrapet.api import kinds
from bobrapet.api.errors import Cause
from bobrapet.api.structural import check


def _story(*steps: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Story",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"steps": list(steps) or [{"name": "a", "ref": {"name": "e"}}], **spec},
    }


def _only(causes: list[Cause]) -> tuple[str, str]:
    assert len(causes) == 1, causes
    return causes[0].field, causes[0].message


def test_unknown_field_suggests_the_closest_name() -> None:
    doc = _story({"name": "a", "ref": {"name": "e"}}, {"name": "b", "ref": {"name": "e"}, "nedds": ["a"]})
    _, causes = check(kinds.STORY, doc)
    assert _only(causes) == ("spec.steps[1].nedds", 'unknown field "nedds"; did you mean "needs"?')
    assert causes[0].reason == "FieldValueInvalid"


def test_unknown_field_matches_other_spellings_of_a_field() -> None:
    doc = _story({"name": "a", "ref": {"name": "e"}, "execution": {"retry": {"max-retries": 2}}})
    _, causes = check(kinds.STORY, doc)
    assert _only(causes) == (
        "spec.steps[0].execution.retry.max-retries",
        'unknown field "max-retries"; did you mean "maxRetries"?',
    )


def test_python_attribute_names_are_not_wire_names() -> None:
    doc = _story({"name": "a", "ref": {"name": "e"}, "allow_failure": True, "with_": {}})
    _, causes = check(kinds.STORY, doc)
    assert {(c.field, c.message) for c in causes} == {
        ("spec.steps[0].allow_failure", 'unknown field "allow_failure"; did you mean "allowFailure"?'),
        ("spec.steps[0].with_", 'unknown field "with_"; did you mean "with"?'),
    }


def test_unknown_field_without_a_close_match_lists_the_valid_fields() -> None:
    doc = _story({"name": "a", "ref": {"name": "e", "zzzz": 1}})
    _, causes = check(kinds.STORY, doc)
    assert _only(causes) == (
        "spec.steps[0].ref.zzzz",
        'unknown field "zzzz"; valid fields are: name, namespace, version, uid',
    )


def test_unknown_top_level_field() -> None:
    doc = _story()
    doc["sepc"] = {}
    _, causes = check(kinds.STORY, doc)
    assert _only(causes) == ("sepc", 'unknown field "sepc"; did you mean "spec"?')


def test_wrong_types() -> None:
    doc = _story(
        {"name": 42, "ref": {"name": "e"}},
        {"name": "b", "type": "sleep", "allowFailure": "yes", "needs": "a", "with": ["x"]},
    )
    _, causes = check(kinds.STORY, doc)
    got = {(c.field, c.message) for c in causes}
    assert got == {
        ("spec.steps[0].name", "must be a string, got integer (42)"),
        ("spec.steps[1].allowFailure", 'must be a boolean (true or false), got string ("yes")'),
        ("spec.steps[1].needs", 'must be a list, got string ("a")'),
        ("spec.steps[1].with", "must be an object (a mapping of keys to values), got list"),
    }
    assert {c.reason for c in causes} == {"FieldValueTypeInvalid"}


def test_numbers_are_not_coerced_from_strings_or_booleans() -> None:
    doc = _story(
        {"name": "a", "ref": {"name": "e"}, "execution": {"retry": {"maxRetries": "3", "jitter": True}}}
    )
    _, causes = check(kinds.STORY, doc)
    assert {(c.field, c.message) for c in causes} == {
        ("spec.steps[0].execution.retry.maxRetries", 'must be an integer, got string ("3")'),
        ("spec.steps[0].execution.retry.jitter", "must be an integer, got boolean (true)"),
    }


def test_missing_required_fields() -> None:
    doc = _story({"ref": {"name": "e"}})
    _, causes = check(kinds.STORY, doc)
    assert _only(causes) == ("spec.steps[0].name", "required field is missing")
    assert causes[0].reason == "FieldValueRequired"
    no_spec = _story()
    del no_spec["spec"]
    assert _only(check(kinds.STORY, no_spec)[1]) == ("spec", "required field is missing")


def test_enum_violation_lists_the_allowed_values() -> None:
    _, causes = check(kinds.STORY, _story(pattern="streaming"))
    assert _only(causes) == ("spec.pattern", 'must be one of: batch, realtime (got "streaming")')
    assert causes[0].reason == "FieldValueNotSupported"
    _, causes = check(kinds.STORY, _story({"name": "a", "type": "loop"}))
    assert _only(causes) == (
        "spec.steps[0].type",
        'must be one of: condition, parallel, sleep, stop, wait, executeStory, gate (got "loop")',
    )
    _, causes = check(kinds.STORY, _story({"name": "a", "type": "exectueStory"}))
    assert _only(causes) == (
        "spec.steps[0].type",
        'must be one of: condition, parallel, sleep, stop, wait, executeStory, gate (got "exectueStory"); '
        'did you mean "executeStory"?',
    )


def test_pattern_length_and_range_violations() -> None:
    doc = _story(
        {"name": "Fetch_Data", "ref": {"name": "e"}},
        {"name": "b" * 64, "ref": {"name": "e"}},
        {"name": "c", "ref": {"name": ""}},
        {"name": "d", "ref": {"name": "e"}, "execution": {"retry": {"maxRetries": 11, "jitter": -1}}},
        {"name": "e", "ref": {"name": "e"}, "idempotencyKeyTemplate": "k" * 513},
    )
    _, causes = check(kinds.STORY, doc)
    got = {(c.field, c.message) for c in causes}
    assert got == {
        (
            "spec.steps[0].name",
            "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter "
            'or digit (got "Fetch_Data")',
        ),
        ("spec.steps[1].name", "must be at most 63 characters long (got 64)"),
        ("spec.steps[2].ref.name", "must not be empty"),
        ("spec.steps[3].execution.retry.maxRetries", "must be less than or equal to 10 (got 11)"),
        ("spec.steps[3].execution.retry.jitter", "must be greater than or equal to 0 (got -1)"),
        ("spec.steps[4].idempotencyKeyTemplate", "must be at most 512 characters long (got 513)"),
    }


def test_map_keys_appear_in_brackets() -> None:
    doc = _story({"name": "a", "ref": {"name": "e"}, "secrets": {"api.key": 7}})
    doc["metadata"]["labels"] = {"app.kubernetes.io/name": True}
    _, causes = check(kinds.STORY, doc)
    assert {(c.field, c.message) for c in causes} == {
        ("metadata.labels[app.kubernetes.io/name]", "must be a string, got boolean (true)"),
        ("spec.steps[0].secrets[api.key]", "must be a string, got integer (7)"),
    }


def test_non_string_map_keys() -> None:
    doc = _story()
    doc["metadata"]["labels"] = {1: "x"}
    _, causes = check(kinds.STORY, doc)
    assert _only(causes) == ("metadata.labels[1]", "map keys must be strings, got integer (1)")


def test_free_form_json_is_kept_verbatim() -> None:
    with_block: dict[str, Any] = {
        "z": None,
        "a": [],
        "m": {},
        "n": [None, {"k": None}],
        "f": 1.0,
        "i": 1,
        "b": False,
    }
    doc = _story({"name": "a", "ref": {"name": "e"}, "with": with_block})
    out, causes = check(kinds.STORY, doc)
    assert causes == []
    assert out["spec"]["steps"][0]["with"] == with_block
    assert list(out["spec"]["steps"][0]["with"]) == list(with_block)
    assert isinstance(out["spec"]["steps"][0]["with"]["i"], int)


def test_free_form_json_must_be_json() -> None:
    doc = _story({"name": "a", "ref": {"name": "e"}, "with": {"when": {"day": date(2024, 5, 1)}}})
    _, causes = check(kinds.STORY, doc)
    field, message = _only(causes)
    assert field == "spec.steps[0].with"
    assert "date value at .when.day is not JSON" in message
    assert "quote it" in message


def test_nulls_of_typed_fields_mean_absent() -> None:
    doc = _story(
        {"name": "a", "ref": {"name": "e"}, "if": None, "execution": None}, pattern=None, policy=None
    )
    out, causes = check(kinds.STORY, doc)
    assert causes == []
    assert out["spec"] == {"steps": [{"name": "a", "ref": {"name": "e"}}], "pattern": "batch"}


def test_input_key_order_is_kept() -> None:
    doc = {
        "spec": {"policy": {"priority": 1}, "steps": [{"ref": {"name": "e"}, "name": "a"}], "version": "v1"},
        "metadata": {"namespace": "default", "name": "s"},
        "kind": "Story",
        "apiVersion": "bubustack.io/v1alpha1",
    }
    out, causes = check(kinds.STORY, doc)
    assert causes == []
    assert list(out) == ["spec", "metadata", "kind", "apiVersion"]
    assert list(out["spec"]) == ["policy", "steps", "version", "pattern"]
    assert list(out["spec"]["steps"][0]) == ["ref", "name"]
    assert list(out["metadata"]) == ["namespace", "name"]


def test_status_is_ignored_unless_asked_for() -> None:
    doc = _story()
    doc["status"] = {"bogus": 1}
    out, causes = check(kinds.STORY, doc)
    assert causes == []
    assert "status" not in out
    assert "status" in doc  # the input is not modified
    _, causes = check(kinds.STORY, doc, include_status=True)
    assert _only(causes) == (
        "status.bogus",
        'unknown field "bogus"; valid fields are: ' + _STORY_STATUS_FIELDS,
    )
    doc["status"] = {"validationStatus": "valid", "stepsTotal": 1}
    out, causes = check(kinds.STORY, doc, include_status=True)
    assert causes == []
    assert out["status"] == {"validationStatus": "valid", "stepsTotal": 1}


_STORY_STATUS_FIELDS = (
    "observedGeneration, conditions, stepsTotal, transports, validationStatus, validationErrors, "
    "validationWarnings, usageCount, triggers"
)


def test_wrong_kind_and_api_version() -> None:
    doc = _story()
    doc["kind"] = "Engram"
    doc["apiVersion"] = "bubustack.io/v1"
    _, causes = check(kinds.STORY, doc)
    assert {(c.field, c.message) for c in causes} == {
        ("kind", 'must be one of: Story (got "Engram")'),
        ("apiVersion", 'must be one of: bubustack.io/v1alpha1 (got "bubustack.io/v1")'),
    }


def test_not_an_object() -> None:
    values: list[Any] = [[], "story", 3, None]
    for value in values:
        out, causes = check(kinds.STORY, value)
        assert out == value
        assert _only(causes)[0] == ""
        assert causes[0].message.startswith("must be an object, got ")


def test_failed_check_returns_the_input() -> None:
    doc = _story(pattern="nope")
    before = copy.deepcopy(doc)
    out, causes = check(kinds.STORY, doc)
    assert causes
    assert out == before
    assert doc == before


def test_deeply_nested_free_form_input_does_not_raise() -> None:
    deep: Any = None
    for _ in range(2000):
        deep = [deep]
    _, causes = check(kinds.STORY, _story({"name": "a", "ref": {"name": "e"}, "with": {"x": deep}}))
    assert causes


# --------------------------------------------------------------------------- fuzzing

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
_keys = st.sampled_from(
    ["apiVersion", "kind", "metadata", "spec", "status", "steps", "name", "ref", "type", "with", "needs"]
)
_doc = st.dictionaries(_keys | st.text(max_size=6), _json, max_size=6)


@settings(
    max_examples=500,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(kind=st.sampled_from(kinds.ALL_KINDS), obj=_doc | _json, include_status=st.booleans())
def test_random_json_never_raises(kind: kinds.Kind, obj: Any, include_status: bool) -> None:
    _, causes = check(kind, obj, include_status=include_status)
    assert isinstance(causes, list)
    assert all(isinstance(c, Cause) and isinstance(c.field, str) and c.message for c in causes)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


_BASE = _story(
    {"name": "a", "ref": {"name": "e"}, "with": {"x": 1}, "execution": {"retry": {"maxRetries": 1}}},
    {"name": "b", "type": "wait", "needs": ["a"], "secrets": {"k": "v"}},
    policy={"retries": {"continueOnStepFailure": True}, "timeouts": {"story": "1h"}},
)
_BASE_PATHS = _paths(_BASE)


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(path=st.sampled_from(_BASE_PATHS), value=_json, extra_key=st.none() | st.text(max_size=6))
def test_mutated_story_never_raises(path: tuple[Any, ...], value: Any, extra_key: str | None) -> None:
    doc = copy.deepcopy(_BASE)
    parent: Any = doc
    for seg in path[:-1]:
        parent = parent[seg]
    if not path:
        doc = value
    elif extra_key is not None and isinstance(parent, dict):
        parent[extra_key] = value
    else:
        parent[path[-1]] = value
    out, causes = check(kinds.STORY, doc)
    for cause in causes:
        assert cause.message
    if not causes:
        again, causes2 = check(kinds.STORY, out)
        assert causes2 == []
        assert again == out


def test_normalized_output_shares_nothing_with_the_input() -> None:
    with_block: dict[str, Any] = {"a": {"b": [1]}}
    doc = _story({"name": "a", "type": "sleep", "with": with_block})
    out, causes = check(kinds.STORY, doc)
    assert causes == []
    out["spec"]["steps"][0]["with"]["a"]["b"].append(2)
    out["metadata"]["name"] = "changed"
    assert with_block == {"a": {"b": [1]}}
    assert doc["metadata"]["name"] == "s"
