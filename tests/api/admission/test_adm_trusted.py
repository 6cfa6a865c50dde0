"""The short admission path for StepRuns the engine built (``admit_trusted``).

The invariant that makes it safe: for every StepRun the engine builds, full admission of
the short path's result changes nothing and finds nothing (so skipping it loses no check
and stores the same object).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.engine.harness import World

from bobrapet.api.admission import AdmissionConfig, MemoryLookup, admit, admit_trusted
from bobrapet.api.errors import Invalid
from bobrapet.controllers.storyrun import _child, _owner_reference

ENGRAM = {
    "apiVersion": "bubustack.io/v1alpha1",
    "kind": "Engram",
    "metadata": {"name": "e", "namespace": "default"},
    "spec": {"templateRef": {"name": "tpl"}, "with": {"fixed": 1}},
}
STORY_RUN = {
    "apiVersion": "runs.bubustack.io/v1alpha1",
    "kind": "StoryRun",
    "metadata": {"name": "run1", "namespace": "default"},
    "spec": {"storyRef": {"name": "story"}},
}


def _engine_step_runs() -> list[dict[str, Any]]:
    """StepRun bodies exactly as the StoryRun controller creates them for a varied Story."""
    steps = [
        {"name": "a", "ref": {"name": "e"}, "with": {"x": "{{ inputs.x }}", "n": 3}},
        {"name": "b", "ref": {"name": "e"}, "execution": {"timeout": "30s", "retry": {"maxRetries": 5}}},
        {
            "name": "c",
            "ref": {"name": "e"},
            "execution": {"debug": True},
            "idempotencyKeyTemplate": "k-{{ inputs.x }}",
        },
        {"name": "d", "ref": {"name": "e", "version": "v1"}},
    ]
    engram = copy.deepcopy(ENGRAM)
    engram["spec"]["version"] = "v1"
    world = World({"steps": steps}, inputs={"x": "hi"}, engrams={"e": engram})
    plan = world.reconcile()
    assert {n.step_id for n in plan.create_step_runs} == {"a", "b", "c", "d"}
    owner = _owner_reference(world.run)
    bodies = []
    for new in plan.create_step_runs:
        body = _child("StepRun", new.name, "default", dict(new.labels), new.annotations, owner, new.spec)
        body["metadata"].update(uid=f"uid-{new.name}", creationTimestamp="2026-01-01T00:00:00Z", generation=1)
        bodies.append(body)
    return bodies


async def test_full_admission_of_an_engine_built_step_run_changes_nothing() -> None:
    engram = copy.deepcopy(ENGRAM)
    engram["spec"]["version"] = "v1"
    lookup = MemoryLookup([engram, STORY_RUN])
    for body in _engine_step_runs():
        short = admit_trusted(copy.deepcopy(body))
        assert short is not None
        full = await admit(copy.deepcopy(short.object), None, lookup)
        assert full.object == short.object, body["metadata"]["name"]
        assert full.warnings == short.warnings == []


async def test_the_short_path_defaults_like_full_admission() -> None:
    body = _engine_step_runs()[0]
    del body["spec"]["retry"], body["spec"]["idempotencyKey"], body["metadata"]["annotations"]
    short = admit_trusted(copy.deepcopy(body))
    full = await admit(copy.deepcopy(body), None, MemoryLookup([ENGRAM, STORY_RUN]))
    assert short is not None and short.object == full.object
    assert short.object["spec"]["retry"] == {"maxRetries": 3, "delay": "1s", "backoff": "exponential"}


async def test_a_story_copy_config_map_takes_the_short_path_with_the_same_result() -> None:
    from bobrapet.controllers.story_snapshots import config_map
    from bobrapet.engine import pin_for

    story = {"apiVersion": "bubustack.io/v1alpha1", "kind": "Story", "metadata": {"name": "s"}, "spec": {}}
    run = {"metadata": {"name": "r", "namespace": "default", "uid": "u"}}
    owner = {"apiVersion": "runs.bubustack.io/v1alpha1", "kind": "StoryRun", "name": "r", "uid": "u"}
    pin, copy_body = pin_for("r", story)
    body = config_map(pin, copy_body, run, owner)
    short = admit_trusted(copy.deepcopy(body))
    full = await admit(copy.deepcopy(body), None, MemoryLookup([]))
    assert short is not None and short.object == full.object
    with pytest.raises(Invalid):
        admit_trusted(copy.deepcopy(body), AdmissionConfig(max_object_size=100))


def test_other_kinds_take_the_full_path() -> None:
    assert admit_trusted(copy.deepcopy(STORY_RUN)) is None  # a child run's inputs meet a schema
    assert admit_trusted(copy.deepcopy(ENGRAM)) is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["metadata"].update(name="Not_A_Name"), "metadata.name"),
        (lambda b: b["spec"].update(input={"blob": "x" * 200}), "spec.input"),
    ],
)
def test_the_short_path_still_rejects_bad_identity_and_sizes(change: Any, field: str) -> None:
    body = _engine_step_runs()[0]
    change(body)
    with pytest.raises(Invalid) as caught:
        admit_trusted(body, AdmissionConfig(max_with_block_size=100))
    assert [c.field for c in caught.value.causes] == [field]


def test_an_oversized_step_run_is_rejected() -> None:
    body = _engine_step_runs()[0]
    with pytest.raises(Invalid) as caught:
        admit_trusted(body, AdmissionConfig(max_object_size=200))
    assert caught.value.causes[0].field == ""


def _built_trigger(**request: Any) -> dict[str, Any]:
    """A StoryTrigger exactly as ``trigger_story`` builds it (``trigger_object``)."""
    from bobrapet.triggers.request import TriggerRequest, trigger_object

    inputs = {"who": "Ada", "n": [1, 2.5, {"deep": None}]}
    spec = TriggerRequest(story="story", namespace="default", inputs=inputs, **request)
    return trigger_object(spec, mode="key", key="delivery-7", submission_id="sub", inputs=inputs)


async def test_a_built_story_trigger_takes_the_short_path_with_the_same_result() -> None:
    story = {"apiVersion": "bubustack.io/v1alpha1", "kind": "Story", "metadata": {"name": "story",
             "namespace": "default"}, "spec": {"steps": []}}  # fmt: skip
    body = _built_trigger()
    short = admit_trusted(copy.deepcopy(body))
    full = await admit(copy.deepcopy(body), None, MemoryLookup([story]))
    assert short is not None and short.object == full.object


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["metadata"].update(name="st-other"), "metadata.name"),
        (lambda b: b["spec"]["inputs"].update(who="Grace"), "spec.deliveryIdentity.inputHash"),
        (lambda b: b["spec"]["deliveryIdentity"].update(mode="none"), "spec.deliveryIdentity.key"),
    ],
)
def test_the_short_path_still_checks_a_story_triggers_identity(change: Any, field: str) -> None:
    body = _built_trigger()
    change(body)
    with pytest.raises(Invalid) as caught:
        admit_trusted(body)
    assert [c.field for c in caught.value.causes] == [field]


def test_a_story_trigger_for_another_namespace_takes_the_full_path() -> None:
    body = _built_trigger(story_namespace="other")  # the cross-namespace policy needs lookups
    assert admit_trusted(body) is None
