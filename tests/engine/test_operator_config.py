"""Operator configuration keys (§9.1): offered keys set the engine/admission config; others are refused."""

from __future__ import annotations

import pytest

from bobrapet.engine.config import EngineConfig
from bobrapet.engine.operator_config import DEFAULT, FILE, KEYS, ConfigError, inert_reason, parse_settings


def test_no_file_means_the_defaults() -> None:
    settings = parse_settings(None)
    assert settings.engine == EngineConfig()
    assert {s.source for s in settings.effective} == {DEFAULT}
    assert {s.key for s in settings.effective} >= set(KEYS)


def test_every_offered_key_changes_the_configuration() -> None:
    values = {
        "timeout.default-step": "10m",
        "timeout.approval-default": "1h",
        "retry.max-retries": "5",
        "storyrun.retention-seconds": 120,
        "job.ttl-seconds-after-finished": "30",
        "storyrun.global-concurrency": 4,
        "storyrun.max-inline-inputs-size": 2048,
        "controller.max-story-with-block-size-bytes": 4096,
        "controller.requeue-base-delay": "2s",
        "engram.default-graceful-shutdown-timeout-seconds": 7,
        "engram.default-max-recursion-depth": 3,
        "references.cross-namespace-policy": "allow",
        "templating.deterministic": "true",
        "storyrun.queue.batch.concurrency": 2,
        "storyrun.queue.batch.default-priority": "5",
        "storyrun.queue.batch.priority-aging-seconds": 10,
        "storyrun.queue.default.priority-aging-seconds": 0,
    }
    settings = parse_settings(values)
    engine, admission = settings.engine, settings.admission
    assert engine.default_step_timeout == 600
    assert engine.approval_default_timeout == 3600
    assert engine.default_max_retries == 5 and admission.default_max_retries == 5
    assert engine.retention_seconds == 120
    assert engine.child_ttl_seconds == 30
    assert engine.global_concurrency == 4
    assert engine.max_inline_inputs_size == 2048 and admission.storyrun_max_inline_inputs == 2048
    assert admission.max_with_block_size == 4096
    assert engine.requeue_base_delay == 2
    assert engine.graceful_cancel_timeout == 7
    assert engine.max_sub_story_depth == 3
    assert admission.cross_namespace_policy == "allow"
    assert engine.deterministic_templates is True
    batch = engine.queue("batch")
    assert (batch.concurrency, batch.default_priority, batch.priority_aging_seconds) == (2, 5, 10)
    assert engine.queue("default").priority_aging_seconds == 0
    sources = {s.key: s.source for s in settings.effective}
    assert all(sources[k] == FILE for k in values)
    assert sources["storyrun.queue.batch.concurrency"] == FILE


def test_zero_retention_keeps_forever_and_zero_approval_waits_forever() -> None:
    engine = parse_settings({"storyrun.retention-seconds": 0, "timeout.approval-default": "0"}).engine
    assert engine.retention_seconds is None
    assert engine.approval_default_timeout is None
    assert parse_settings({"storyrun.retention-seconds": -1}).engine.retention_seconds == -1


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("resources.default.cpu-request", "only on Kubernetes"),
        ("security.run-as-user", "only on Kubernetes"),
        ("images.pull-policy", "only on Kubernetes"),
        ("job.backoff-limit", "only on Kubernetes"),
        ("controller.storage.file.volume-claim-name", "only on Kubernetes"),
        ("templating.materialize-engram", "exists only on Kubernetes"),
        ("streaming.ttl-seconds-after-finished", "planned with the realtime issue"),
        ("engram.default-grpc-port", "planned with the realtime issue"),
        ("storyrun.max-concurrent-reconciles", "sizes and paces its controllers itself"),
        ("loop.max-iterations", "not used"),
    ],
)
def test_inert_keys_are_refused_with_the_reason(key: str, words: str) -> None:
    assert inert_reason(key) is not None
    with pytest.raises(ConfigError) as caught:
        parse_settings({key: "1"})
    assert caught.value.key == key
    assert words in str(caught.value)


def test_unknown_keys_list_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"timeout.defualt-step": "5m"})
    message = str(caught.value)
    assert message.startswith("timeout.defualt-step: unknown key")
    assert "timeout.default-step" in message and "storyrun.queue.<name>.concurrency" in message


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("retry.max-retries", "51", "at most 50"),
        ("retry.max-retries", "many", "expected an integer"),
        ("storyrun.global-concurrency", -1, "at least 0"),
        ("timeout.default-step", "0", "positive duration"),
        ("timeout.default-step", "soon", "expected a duration"),
        ("templating.deterministic", "maybe", "true or false"),
        ("references.cross-namespace-policy", "open", "one of deny, grant, allow"),
        ("storyrun.queue.Big.concurrency", 1, "DNS label"),
        ("storyrun.queue.big.size", 1, "unknown queue setting"),
        ("timeout", {"default-step": "5m"}, "flat dotted keys"),
    ],
)
def test_bad_values_name_the_key(key: str, value: object, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({key: value})
    assert caught.value.key == key
    assert words in str(caught.value)


def test_storage_keys_set_the_engine_storage_and_inject_is_refused() -> None:
    engine = parse_settings(
        {
            "controller.storage.provider": "s3",
            "controller.storage.s3.bucket": "blobs",
            "controller.storage.s3.endpoint": "http://127.0.0.1:9000",
            "engram.default-max-inline-size": "100",
            "engram.default-storage-timeout-seconds": 7,
            "templating.offloaded-data-policy": "error",
        }
    ).engine
    assert (engine.storage.provider, engine.storage.bucket, engine.storage.timeout) == ("s3", "blobs", 7.0)
    assert engine.storage.endpoint == "http://127.0.0.1:9000" and engine.storage.force_path_style
    assert engine.max_inline_size == 100 and engine.offloaded_data_policy == "error"
    assert not parse_settings({"controller.storage.provider": "none"}).engine.storage.enabled
    with pytest.raises(ConfigError) as caught:
        parse_settings({"templating.offloaded-data-policy": "inject"})
    assert "only on Kubernetes" in str(caught.value) and "controller" in str(caught.value)
