"""The Story a run executes is fixed when it starts: the pure parts (pins, hashes, plans)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from tests.engine.harness import World, make_story

from bobrapet.api import runmeta
from bobrapet.engine import Snapshot
from bobrapet.engine.story_pin import (
    STATUS_KEY,
    StoryPin,
    content_hash,
    pin_for,
    snapshot_name,
    story_body,
    version_mismatch,
)

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def e(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "ref": {"name": "eng"}, **extra}


def stored(spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "bubustack.io/v1alpha1",
        "kind": "Story",
        "metadata": {"name": "story", "namespace": "default", **metadata},
        "spec": spec,
        "status": {"stepsTotal": 1},
    }


class PinnedWorld(World):
    """The harness world with the controller's part of pinning: a pin (or a lost copy)."""

    def __init__(self, *args: Any, pin: StoryPin | None = None, problem: str | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.pin = pin
        self.problem = problem

    def snapshot(self) -> Snapshot:
        recorded = StoryPin.from_status(self.run["status"])
        pin = recorded or self.pin
        story = None if self.problem else self.story
        return replace(super().snapshot(), story=story, story_pin=pin, story_problem=self.problem)


PIN = StoryPin(
    name="run1-story-0123456789ab", hash="sha256:" + "0123456789ab" * 5, generation=3, version="v1"
)


# ------------------------------------------------------------------------------ pure helpers


def test_the_hash_depends_on_content_only() -> None:
    spec = {"steps": [e("a"), e("b", needs=["a"])], "output": {"x": 1, "y": 2}}
    one = stored(spec, generation=1, uid="u1", resourceVersion="5")
    two = stored({"output": {"y": 2, "x": 1}, "steps": [e("a"), e("b", needs=["a"])]}, generation=7, uid="u2")
    assert story_body(one) == story_body(two)
    assert "status" not in story_body(one) and set(story_body(one)["metadata"]) == {"name", "namespace"}
    assert content_hash(story_body(one)) == content_hash(story_body(two))
    assert content_hash(story_body(one)).startswith("sha256:")
    renamed = stored({"steps": [e("a"), e("c", needs=["a"])], "output": {"x": 1, "y": 2}})
    assert content_hash(story_body(renamed)) != content_hash(story_body(one))
    elsewhere = stored(spec, namespace="other")
    assert content_hash(story_body(elsewhere)) != content_hash(story_body(one))


def test_the_copy_name_is_deterministic_and_valid() -> None:
    digest = content_hash(story_body(stored({"steps": [e("a")]})))
    assert snapshot_name("run1", digest) == snapshot_name("run1", digest)
    assert snapshot_name("run1", digest) == f"run1-story-{digest[7:19]}"
    assert snapshot_name("run2", digest) != snapshot_name("run1", digest)
    long = snapshot_name("r" * 80, digest)
    assert DNS1123.match(long) and len(long) <= 63


def test_pin_for_records_generation_and_version() -> None:
    pin, body = pin_for("run1", stored({"version": "v2", "steps": [e("a")]}, generation=4))
    assert (pin.generation, pin.version, pin.hash) == (4, "v2", content_hash(body))
    assert pin.name == snapshot_name("run1", pin.hash)
    assert StoryPin.from_status({STATUS_KEY: pin.to_status()}) == pin
    assert StoryPin.from_status({}) is None and StoryPin.from_status({STATUS_KEY: {"name": "x"}}) is None
    unversioned, _ = pin_for("run1", stored({"steps": [e("a")]}))
    assert "version" not in unversioned.to_status() and unversioned.version is None


def test_version_mismatch() -> None:
    run = {"metadata": {"namespace": "ns"}, "spec": {"storyRef": {"name": "s", "version": "1"}}}
    assert version_mismatch(run, "1") is None
    assert version_mismatch({"spec": {"storyRef": {"name": "s"}}}, "2") is None
    problem = version_mismatch(run, "2")
    assert problem is not None and "'ns/s' has version '2', expected '1'" in problem


# ------------------------------------------------------------------------------ plans


def test_the_pin_is_recorded_once_when_the_run_starts() -> None:
    world = PinnedWorld({"steps": [e("a"), e("b", needs=["a"])]}, pin=PIN)
    first = world.reconcile()
    assert first.store_story == PIN
    assert world.status[STATUS_KEY] == PIN.to_status()
    assert [n.annotations.get(runmeta.STORY_SNAPSHOT) for n in first.create_step_runs] == [PIN.hash]
    world.succeed("a")
    second = world.reconcile()
    assert second.store_story is None  # recorded already
    assert second.create_step_runs[0].annotations.get(runmeta.STORY_SNAPSHOT) == PIN.hash
    assert world.drive() == "Succeeded"
    assert world.status[STATUS_KEY] == PIN.to_status()


def test_a_run_started_without_a_pin_records_one_on_its_next_plan() -> None:
    """A run started by an engine without pins is pinned to the Story it sees next."""
    world = PinnedWorld({"steps": [e("a"), e("b", needs=["a"])]})
    world.reconcile()
    assert STATUS_KEY not in world.status
    world.pin = PIN
    p = world.reconcile()
    assert p.store_story == PIN and world.status[STATUS_KEY] == PIN.to_status()


def test_a_failed_input_check_records_no_pin() -> None:
    spec = {"inputsSchema": {"type": "object", "required": ["x"]}, "steps": [e("a")]}
    world = PinnedWorld(spec, pin=PIN)
    p = world.reconcile()
    assert world.phase == "Failed" and p.store_story is None and STATUS_KEY not in world.status


def test_a_pinned_version_that_does_not_match_is_refused_at_start() -> None:
    world = PinnedWorld({"version": "2", "steps": [e("a")]}, pin=replace(PIN, version="2"))
    world.run["spec"]["storyRef"]["version"] = "1"
    p = world.reconcile()
    assert world.phase == "Failed"
    assert "has version '2', expected '1'" in world.status["message"]
    assert p.create_step_runs == [] and p.store_story is None
    ready = next(c for c in world.status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "StoryReferenceInvalid"


def test_a_matching_version_pin_starts() -> None:
    world = PinnedWorld({"version": "1", "steps": [e("a")]}, pin=PIN)
    world.run["spec"]["storyRef"]["version"] = "1"
    assert world.drive() == "Succeeded"


def test_a_lost_copy_fails_a_started_run() -> None:
    world = PinnedWorld({"steps": [e("a"), e("b", needs=["a"])]}, pin=PIN)
    world.reconcile()
    world.problem = "the copy is gone; redrive the run with --latest"
    p = world.reconcile()
    assert world.phase == "Failed" and p.create_step_runs == []
    assert world.status["message"] == world.problem


def _redriven(latest: bool) -> PinnedWorld:
    world = PinnedWorld({"steps": [e("a")]}, pin=PIN)
    assert world.drive() == "Succeeded"
    annotations = world.run["metadata"]["annotations"]
    annotations[runmeta.REDRIVE_TOKEN] = "t2"
    if latest:
        annotations[runmeta.REDRIVE_LATEST] = "t2"
    else:
        annotations[runmeta.REDRIVE_LATEST] = "t1"  # an older --latest redrive: not this one
    world.reconcile()
    return world


def test_a_full_redrive_keeps_the_runs_own_story() -> None:
    world = _redriven(latest=False)
    assert world.status[STATUS_KEY] == PIN.to_status()
    assert world.last is not None and "its own Story" in world.last.events[0].message
    world.pin = replace(PIN, name="run1-story-ffffffffffff", hash="sha256:" + "f" * 64, generation=9)
    assert world.drive() == "Succeeded"
    assert world.status[STATUS_KEY] == PIN.to_status()


def test_a_latest_redrive_drops_the_copy_and_pins_the_current_story() -> None:
    world = _redriven(latest=True)
    assert STATUS_KEY not in world.status
    assert world.last is not None and "the current Story" in world.last.events[0].message
    newer = replace(PIN, name="run1-story-ffffffffffff", hash="sha256:" + "f" * 64, generation=9)
    world.pin = newer
    world.story = make_story({"steps": [e("c")]})
    p = world.reconcile()
    assert p.store_story == newer and world.status[STATUS_KEY] == newer.to_status()
    assert [n.step_id for n in p.create_step_runs] == ["c"]
