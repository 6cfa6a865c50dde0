"""Core v1 ConfigMap and Secret, as held by the embedded store.

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

from bobrapet.api.types.base import Resource


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
