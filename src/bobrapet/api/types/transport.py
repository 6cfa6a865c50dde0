"""Transport (cluster-scoped) and TransportBinding (namespaced) (§1.11)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bobrapet.api.types.base import (
    Condition,
    JSONObject,
    JSONValue,
    Resource,
    Timestamp,
    WireModel,
    conditions_field,
)
from bobrapet.api.types.enums import AudioCodecName, MediaDirection, ValidationStatus, VideoCodecName
from bobrapet.api.types.shared import StoryRunReference
from bobrapet.api.types.streaming import TransportStreamingSettings


class AudioCodec(WireModel):
    """An audio codec."""

    name: AudioCodecName = Field(description="Codec name, e.g. pcm16, opus, g711-mu.")
    sample_rate_hz: int | None = Field(None, description="Sampling rate in Hz.", ge=0)
    channels: int | None = Field(None, description="Number of channels.", ge=0)


class VideoCodec(WireModel):
    """A video codec or raw pixel format."""

    name: VideoCodecName = Field(description="Codec name, e.g. h264, vp8, raw-yuv420.")
    profile: str | None = Field(None, description="Profile or format hint, e.g. baseline.", max_length=64)


class TransportSpec(WireModel):
    """A streaming transport provider and its capabilities."""

    provider: str = Field(description="Provider name, e.g. livekit.", min_length=1, max_length=253)
    driver: str = Field(description="Connector driver name.", min_length=1, max_length=253)
    connector_image: str | None = Field(None, description="Connector sidecar image.", max_length=512)
    supported_audio: list[AudioCodec] | None = Field(
        None, description="Audio codecs supported.", max_length=32
    )
    supported_video: list[VideoCodec] | None = Field(
        None, description="Video codecs supported.", max_length=32
    )
    supported_binary: list[str] | None = Field(
        None, description="MIME types supported for binary payloads.", max_length=64
    )
    streaming: TransportStreamingSettings | None = Field(None, description="Default streaming settings.")
    config_schema: JSONObject | None = Field(None, description="JSON Schema of provider settings.")
    default_settings: JSONObject | None = Field(None, description="Default provider settings (free-form).")


class TransportStatus(WireModel):
    """Observed state of a Transport."""

    observed_generation: int | None = Field(None, description="Generation the status reflects.", ge=0)
    validation_status: ValidationStatus | None = Field(
        None, description="valid, invalid, unknown or pending."
    )
    validation_errors: list[str] | None = Field(None, description="Validation errors.", max_length=256)
    usage_count: int | None = Field(None, description="Stories using this Transport.", ge=0)
    available_audio: list[AudioCodec] | None = Field(
        None, description="Audio codecs available.", max_length=32
    )
    available_video: list[VideoCodec] | None = Field(
        None, description="Video codecs available.", max_length=32
    )
    available_binary: list[str] | None = Field(None, description="MIME types available.", max_length=64)
    conditions: list[Condition] | None = conditions_field()
    pending_bindings: int | None = Field(None, description="TransportBindings not yet ready.", ge=0)
    last_heartbeat_time: Timestamp | None = Field(None, description="Last heartbeat of the connector.")


class Transport(Resource):
    """A streaming transport provider (cluster-scoped)."""

    api_version: Literal["transport.bubustack.io/v1alpha1"] = Field(
        "transport.bubustack.io/v1alpha1",
        description="API version of this object: transport.bubustack.io/v1alpha1.",
    )
    kind: Literal["Transport"] = Field("Transport", description="Kind of this object: Transport.")
    spec: TransportSpec = Field(description="Provider, driver and capabilities.")
    status: TransportStatus | None = Field(None, description="Observed state (written by the controller).")


class AudioBinding(WireModel):
    """How audio flows across the connector."""

    direction: MediaDirection = Field(description="publish, subscribe or bidirectional.")
    codecs: list[AudioCodec] | None = Field(None, description="Preferred codecs, by priority.", max_length=32)


class VideoBinding(WireModel):
    """How video flows across the connector."""

    direction: MediaDirection = Field(description="publish, subscribe or bidirectional.")
    codecs: list[VideoCodec] | None = Field(None, description="Supported codecs.", max_length=32)
    raw: bool | None = Field(None, description="Raw frames are required (e.g. for vision tasks).")


class BinaryBinding(WireModel):
    """How binary payloads flow across the connector."""

    direction: MediaDirection = Field(description="publish, subscribe or bidirectional.")
    mime_types: list[str] | None = Field(None, description="Supported MIME types.", max_length=64)


class TransportBindingSpec(WireModel):
    """Binding of one step's engram to a Transport."""

    transport_ref: str = Field(description="Name of the Transport.", min_length=1, max_length=253)
    story_run_ref: StoryRunReference | None = Field(None, description="The StoryRun the binding belongs to.")
    step_name: str = Field(description="The Story step owning the binding.", min_length=1, max_length=63)
    engram_name: str = Field(description="The engram backing the step.", min_length=1, max_length=253)
    driver: str = Field(
        description="Connector driver (must equal the Transport's).", min_length=1, max_length=253
    )
    audio: AudioBinding | None = Field(None, description="Audio flow.")
    video: VideoBinding | None = Field(None, description="Video flow.")
    binary: BinaryBinding | None = Field(None, description="Binary flow.")
    connector_endpoint: str | None = Field(
        None, description="Endpoint engrams dial to reach the connector.", max_length=1024
    )
    raw_settings: JSONValue | None = Field(None, description="Provider-specific settings (free-form JSON).")


class TransportBindingStatus(WireModel):
    """Negotiated state of a binding (written by the connector)."""

    observed_generation: int | None = Field(None, description="Generation the status reflects.", ge=0)
    negotiated_audio: AudioCodec | None = Field(None, description="Audio codec selected.")
    negotiated_video: VideoCodec | None = Field(None, description="Video codec selected.")
    negotiated_binary: str | None = Field(None, description="MIME type selected.", max_length=256)
    endpoint: str | None = Field(None, description="Connector endpoint for this binding.", max_length=1024)
    downstream_host: str | None = Field(
        None, description="Downstream host:port for direct connections.", max_length=1024
    )
    upstream_host: str | None = Field(None, description="Upstream host:port to connect to.", max_length=1024)
    conditions: list[Condition] | None = conditions_field()


class TransportBinding(Resource):
    """Binding of a step's engram to a streaming Transport."""

    api_version: Literal["transport.bubustack.io/v1alpha1"] = Field(
        "transport.bubustack.io/v1alpha1",
        description="API version of this object: transport.bubustack.io/v1alpha1.",
    )
    kind: Literal["TransportBinding"] = Field(
        "TransportBinding", description="Kind of this object: TransportBinding."
    )
    spec: TransportBindingSpec = Field(description="Transport, step, driver and media flows.")
    status: TransportBindingStatus | None = Field(None, description="Negotiated state.")
