"""TTL and retention (§4.8) with a fake clock: 0 keeps forever, and the finishing plan schedules them."""

from __future__ import annotations

from typing import Any

from tests.engine.harness import World

from bobrapet.engine.config import EngineConfig


def e(name: str) -> dict[str, Any]:
    return {"name": name, "ref": {"name": "eng"}}


def _job(**job: int) -> dict[str, object]:
    return {"steps": [e("a")], "policy": {"execution": {"job": job}}}


def test_story_retention_zero_keeps_the_run_forever() -> None:
    """storyRunRetentionSeconds: 0 used to fall back to the configured 24 h."""
    world = World(_job(storyRunRetentionSeconds=0, ttlSecondsAfterFinished=5), config=EngineConfig())
    assert world.drive() == "Succeeded"
    world.advance(5)
    plan = world.reconcile()
    assert plan.delete_step_runs  # the child TTL still applies
    world.advance(10 * 86400)
    plan = world.reconcile()
    assert not plan.delete_run and plan.requeue_after is None


def test_unset_story_retention_uses_the_configuration() -> None:
    world = World(_job(ttlSecondsAfterFinished=5), config=EngineConfig(retention_seconds=50))
    world.drive()
    world.advance(50)
    assert world.reconcile().delete_run


def test_configured_retention_zero_keeps_forever() -> None:
    world = World({"steps": [e("a")]}, config=EngineConfig(retention_seconds=0, child_ttl_seconds=1))
    world.drive()
    world.advance(10**7)
    assert not world.reconcile().delete_run


def test_the_plan_that_finishes_a_run_schedules_its_ttl() -> None:
    """No later event is needed: the finishing reconcile already asks to be woken at the TTL."""
    world = World({"steps": [e("a")]}, config=EngineConfig(child_ttl_seconds=30, retention_seconds=90))
    world.reconcile()
    world.succeed("a", {"ok": 1})
    plan = world.reconcile()
    assert world.phase == "Succeeded"
    assert plan.requeue_after == 30


def test_zero_child_ttl_cleans_children_in_the_finishing_plan() -> None:
    world = World({"steps": [e("a")]}, config=EngineConfig(child_ttl_seconds=0, retention_seconds=0))
    world.reconcile()
    world.succeed("a", {"ok": 1})
    plan = world.reconcile()
    assert world.phase == "Succeeded"
    assert plan.delete_step_runs == ["run1-a"] and world.status["childrenCleanedAt"]
    assert plan.requeue_after is None
