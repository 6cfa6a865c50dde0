"""Core v1 ConfigMap, Secret and Event, as held by the embedded store.

They have no ``spec``/``status``. Secret ``data`` values must be base64;
``stringData`` is the write-only plain-text convenience (the store folds it into
``data``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from bobrapet.api.types.base import Resource, Timestamp, WireModel


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PydanticCustomError(
            "base64", "must be base64-encoded (use stringData for plain text)"
        ) from None
    return value


Base64 = Annotated[str, AfterValidator(_base64)]


class ConfigMap(Resource):
    """Non-secret configuration data (core/v1)."""

    api_version: Literal["v1"] = Field("v1", description="API version of this object: v1.")
    kind: Literal["ConfigMap"] = Field("ConfigMap", description="Kind of this object: ConfigMap.")
    data: dict[str, str] | None = Field(None, description="UTF-8 string values by key.")
    binary_data: dict[str, Base64] | None = Field(None, description="Binary values by key (base64).")
    immutable: bool | None = Field(None, description="If true, data cannot be changed.")


class Secret(Resource):
    """Secret data (core/v1)."""

    api_version: Literal["v1"] = Field("v1", description="API version of this object: v1.")
    kind: Literal["Secret"] = Field("Secret", description="Kind of this object: Secret.")
    data: dict[str, Base64] | None = Field(None, description="Secret values by key (base64).")
    string_data: dict[str, str] | None = Field(
        None, description="Plain-text values, merged into data on write."
    )
    type: str | None = Field(None, description="Secret type, e.g. Opaque.", max_length=253)
    immutable: bool | None = Field(None, description="If true, data cannot be changed.")


class ObjectReference(WireModel):
    """The object an Event is about (core/v1 ObjectReference)."""

    api_version: str | None = Field(None, description="API version of the referent.")
    kind: str | None = Field(None, description="Kind of the referent.")
    namespace: str | None = Field(None, description="Namespace of the referent.")
    name: str | None = Field(None, description="Name of the referent.")
    uid: str | None = Field(None, description="UID of the referent.")
    resource_version: str | None = Field(None, description="resourceVersion of the referent when reported.")
    field_path: str | None = Field(None, description="A field of the referent, if the event is about one.")


class EventSource(WireModel):
    """Who reported an Event (core/v1 EventSource)."""

    component: str | None = Field(None, description="Component reporting the event.")
    host: str | None = Field(None, description="Host of the reporting component.")


class Event(Resource):
    """Something that happened to an object (core/v1 Event).

    Repeated identical events (same object, type, reason and message) are one Event
    whose ``count`` and ``lastTimestamp`` grow.
    """

    api_version: Literal["v1"] = Field("v1", description="API version of this object: v1.")
    kind: Literal["Event"] = Field("Event", description="Kind of this object: Event.")
    involved_object: ObjectReference = Field(description="The object this event is about.")
    reason: str | None = Field(
        None, description="Short, machine-readable reason (UpperCamelCase).", max_length=128
    )
    message: str | None = Field(None, description="Human-readable description.", max_length=4096)
    source: EventSource | None = Field(None, description="Component that reported the event.")
    first_timestamp: Timestamp | None = Field(None, description="When the event was first recorded.")
    last_timestamp: Timestamp | None = Field(None, description="When the event last recurred.")
    count: int | None = Field(None, description="How many times the event occurred.", ge=0)
    type: Literal["Normal", "Warning"] | None = Field(None, description="Normal or Warning.")
    reporting_component: str | None = Field(None, description="Controller that emitted the event.")
    reporting_instance: str | None = Field(None, description="Instance of the reporting controller.")
