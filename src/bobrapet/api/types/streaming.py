"""Streaming settings of a transport (``TransportStreamingSettings``, §1.11).

Used by ``Story.spec.transports[].streaming`` and ``Transport.spec.streaming``.
Every field is optional; the streaming hub interprets them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bobrapet.api.types.base import DNSLabel, Duration, WireModel
from bobrapet.api.types.enums import MediaDirection


class TransportBufferSettings(WireModel):
    """Buffer limits and overflow behaviour."""

    max_messages: int | None = Field(None, description="Maximum buffered messages.", ge=0)
    max_bytes: int | None = Field(None, description="Maximum buffered bytes.", ge=0)
    max_age_seconds: int | None = Field(None, description="Maximum time a message stays buffered.", ge=0)
    drop_policy: Literal["drop_newest", "drop_oldest"] | None = Field(
        None, description="Which messages to drop when the buffer is full."
    )


class TransportBackpressureSettings(WireModel):
    """Backpressure configuration."""

    buffer: TransportBufferSettings | None = Field(None, description="Buffer limits and drop policy.")


class TransportFlowCredits(WireModel):
    """Message/byte credits."""

    messages: int | None = Field(None, description="Credit window in messages.", ge=0)
    bytes: int | None = Field(None, description="Credit window in bytes.", ge=0)


class TransportFlowAckSettings(WireModel):
    """Ack pacing."""

    messages: int | None = Field(None, description="Ack interval in messages.", ge=0)
    bytes: int | None = Field(None, description="Ack interval in bytes.", ge=0)
    max_delay: Duration | None = Field(
        None, description='Maximum time between acks (duration, e.g. "250ms").'
    )


class TransportFlowThreshold(WireModel):
    """A buffer utilisation threshold."""

    buffer_pct: int | None = Field(None, description="Buffer utilisation in percent (0-100).", ge=0, le=100)


class TransportFlowControlSettings(WireModel):
    """Credit/window flow control."""

    mode: Literal["none", "credits", "window"] | None = Field(None, description="Flow-control strategy.")
    initial_credits: TransportFlowCredits | None = Field(None, description="Initial credit window.")
    ack_every: TransportFlowAckSettings | None = Field(None, description="How often acks/credits are sent.")
    pause_threshold: TransportFlowThreshold | None = Field(
        None, description="Utilisation that pauses upstream."
    )
    resume_threshold: TransportFlowThreshold | None = Field(
        None, description="Utilisation that resumes upstream."
    )


class TransportReplaySettings(WireModel):
    """Replay storage and retention."""

    mode: Literal["none", "memory", "durable"] | None = Field(None, description="Replay storage mode.")
    retention_seconds: int | None = Field(None, description="How long replay data is kept.", ge=0)
    checkpoint_interval: Duration | None = Field(None, description="How often checkpoints are persisted.")


class TransportDeliverySettings(WireModel):
    """Ordering, delivery semantics and replay."""

    ordering: Literal["none", "per_stream", "per_partition"] | None = Field(
        None, description="Ordering guarantee."
    )
    semantics: Literal["best_effort", "at_least_once"] | None = Field(None, description="Delivery guarantee.")
    replay: TransportReplaySettings | None = Field(None, description="Replay configuration.")


class TransportRoutingRuleTarget(WireModel):
    """Downstream steps a routing rule applies to."""

    steps: list[str] | None = Field(
        None, description="Downstream step names; empty means all downstream steps.", max_length=1000
    )


class TransportRoutingRule(WireModel):
    """A conditional routing filter evaluated per packet."""

    name: str | None = Field(None, description="Identifier for observability.", max_length=63)
    when: str | None = Field(
        None, description="Condition expression (realtime runtime scope).", max_length=4096
    )
    action: Literal["allow", "deny"] | None = Field(None, description="Allow or deny matching targets.")
    target: TransportRoutingRuleTarget | None = Field(None, description="Targets of the rule.")


class TransportRoutingSettings(WireModel):
    """Topology and fan-out policy."""

    mode: Literal["auto", "hub", "p2p"] | None = Field(None, description="Routing topology.")
    fan_out: Literal["sequential", "parallel"] | None = Field(
        None, description="Dispatch to several downstreams."
    )
    max_downstreams: int | None = Field(None, description="Maximum downstream targets per step.", ge=1)
    rules: list[TransportRoutingRule] | None = Field(
        None, description="Conditional routing rules.", max_length=128
    )


class TransportLane(WireModel):
    """A named lane with optional caps."""

    name: DNSLabel = Field(description="Lane name (a DNS label).")
    kind: Literal["audio", "video", "binary", "payload", "control"] = Field(description="Lane media type.")
    direction: MediaDirection | None = Field(None, description="publish, subscribe or bidirectional.")
    description: str | None = Field(None, description="Human-readable context.", max_length=1024)
    max_messages: int | None = Field(None, description="Buffered message cap per downstream.", ge=0)
    max_bytes: int | None = Field(None, description="Buffered byte cap per downstream.", ge=0)


class TransportFanInSettings(WireModel):
    """How several upstreams are joined."""

    mode: Literal["all", "any", "quorum"] | None = Field(None, description="Join policy.")
    quorum: int | None = Field(None, description="Upstreams required in quorum mode.", ge=1)
    timeout_seconds: int | None = Field(None, description="How long a join waits.", ge=0)
    max_entries: int | None = Field(None, description="Concurrent joins kept in memory.", ge=1)


class TransportPartitioningSettings(WireModel):
    """Partition assignment of stream envelopes."""

    mode: Literal["none", "preserve", "hash"] | None = Field(None, description="How partitions are assigned.")
    key: str | None = Field(
        None, description='Value hashed in hash mode, e.g. "metadata.user_id".', max_length=256
    )
    partitions: int | None = Field(None, description="Number of partitions in hash mode.", ge=1)
    sticky: bool | None = Field(None, description="Keep an existing partition assignment.")


class TransportLifecycleSettings(WireModel):
    """Drain/cutover behaviour of streaming steps."""

    strategy: Literal["rolling", "drain_cutover", "blue_green"] | None = Field(
        None, description="Upgrade strategy."
    )
    drain_timeout_seconds: int | None = Field(None, description="Maximum drain time before cutover.", ge=0)
    max_in_flight: int | None = Field(None, description="In-flight messages allowed during upgrades.", ge=0)


class TransportMetricsSettings(WireModel):
    """Metric emission."""

    enabled: bool | None = Field(None, description="Emit metrics (default true).")


class TransportTracingSettings(WireModel):
    """Distributed tracing."""

    enabled: bool | None = Field(None, description="Emit traces (default true).")
    sample_rate: int | None = Field(None, description="Sampling percentage (0-100).", ge=0, le=100)
    sample_policy: str | None = Field(
        None, description='Sampling policy, e.g. "rate" or "rules".', max_length=64
    )


class TransportWatermarkSettings(WireModel):
    """Event-time watermark tracking."""

    enabled: bool | None = Field(None, description="Track watermarks and lag.")
    timestamp_source: str | None = Field(
        None, description='Where event time comes from, e.g. "metadata.event_time_ms".', max_length=256
    )


class TransportObservabilitySettings(WireModel):
    """Metrics, tracing and watermarks."""

    metrics: TransportMetricsSettings | None = Field(None, description="Metric emission.")
    tracing: TransportTracingSettings | None = Field(None, description="Tracing options.")
    watermark: TransportWatermarkSettings | None = Field(None, description="Watermark tracking.")


class TransportRecordingSettings(WireModel):
    """Stream recording."""

    mode: Literal["off", "metadata", "payload"] | None = Field(None, description="What is recorded.")
    sample_rate: int | None = Field(None, description="Recording sampling percentage (0-100).", ge=0, le=100)
    retention_seconds: int | None = Field(None, description="How long recordings are kept.", ge=0)
    redact_fields: list[str] | None = Field(
        None, description='JSON paths to redact, e.g. "payload.api_key".', max_length=128
    )


class TransportStreamingSettings(WireModel):
    """Streaming policies of a transport."""

    backpressure: TransportBackpressureSettings | None = Field(None, description="Buffer limits.")
    flow_control: TransportFlowControlSettings | None = Field(None, description="Flow control.")
    delivery: TransportDeliverySettings | None = Field(None, description="Ordering, semantics, replay.")
    routing: TransportRoutingSettings | None = Field(None, description="Topology and fan-out.")
    lanes: list[TransportLane] | None = Field(
        None, description="Named lanes and per-lane caps.", max_length=64
    )
    fan_in: TransportFanInSettings | None = Field(None, description="Join behaviour at fan-in points.")
    partitioning: TransportPartitioningSettings | None = Field(None, description="Partition assignment.")
    lifecycle: TransportLifecycleSettings | None = Field(None, description="Drain/cutover behaviour.")
    observability: TransportObservabilitySettings | None = Field(None, description="Metrics and tracing.")
    recording: TransportRecordingSettings | None = Field(None, description="Stream recording.")
