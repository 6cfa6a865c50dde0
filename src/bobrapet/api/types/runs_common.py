"""Small status types shared by StoryRun and StepRun."""

from __future__ import annotations

from pydantic import Field

from bobrapet.api.types.base import WireModel


class TraceInfo(WireModel):
    """Trace identifiers of a run, for distributed tracing."""

    trace_id: str | None = Field(None, description="Trace ID (hex).", max_length=64)
    span_id: str | None = Field(None, description="Span ID (hex).", max_length=32)
    sampled: bool | None = Field(None, description="Whether the trace is sampled.")


class SchemaReference(WireModel):
    """Identifies the schema a payload was validated against, e.g. bubu://story/<ns>/<story>/inputs."""

    ref: str | None = Field(None, description="Schema URI.", max_length=1024)
    version: str | None = Field(None, description="Schema version.", max_length=64)
