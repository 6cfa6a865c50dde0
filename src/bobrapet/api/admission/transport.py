"""Transport and TransportBinding validation (reference §1.11, §1.15).

Invariants: a Transport names a driver and at least one media capability with valid codec
names/MIME types; only ``tls`` is accepted as transport security mode. A TransportBinding
references an existing Transport with the same driver and only codecs/MIME types the
Transport supports; ``transportRef`` and ``driver`` are immutable.
"""

from __future__ import annotations

import re
from typing import Any

from bobrapet.api.admission.context import Context, as_dict, as_list
from bobrapet.api.kinds import TRANSPORT_KIND

AUDIO_CODECS = ("pcm16", "pcm24", "opus", "g711-mu", "g711-a", "g722", "aac", "mp3", "flac", "raw")
VIDEO_CODECS = ("h264", "vp8", "vp9", "av1", "raw-yuv420", "raw-rgb", "raw-bgr")
MIME = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9*][\w.+*-]*$")
DIRECTIONS = ("publish", "subscribe", "bidirectional")


def _int_ge0(ctx: Context, path: str, v: Any) -> None:
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
        ctx.error(path, f"must be a non-negative integer, got {v!r}")


async def validate_transport(ctx: Context) -> None:
    if ctx.status_only:
        return
    spec = ctx.spec
    for key in ("provider", "driver"):
        if not isinstance(spec.get(key), str) or not spec.get(key):
            ctx.required(f"spec.{key}", f"{key} is required")
    audio, video, binary = (
        as_list(spec.get(k)) for k in ("supportedAudio", "supportedVideo", "supportedBinary")
    )
    if not (audio or video or binary):
        ctx.required("spec", "at least one of supportedAudio, supportedVideo or supportedBinary is required")
    seen: set[str] = set()
    for i, a in enumerate(audio):
        a = as_dict(a)
        name = a.get("name")
        if name not in AUDIO_CODECS:
            ctx.error(
                f"spec.supportedAudio[{i}].name",
                f"unknown audio codec '{name}' (valid: {', '.join(AUDIO_CODECS)})",
            )
        elif name in seen:
            ctx.error(f"spec.supportedAudio[{i}].name", f"duplicate codec '{name}'", "FieldValueDuplicate")
        seen.add(str(name))
        _int_ge0(ctx, f"spec.supportedAudio[{i}].sampleRateHz", a.get("sampleRateHz"))
        _int_ge0(ctx, f"spec.supportedAudio[{i}].channels", a.get("channels"))
    for i, v in enumerate(video):
        name = as_dict(v).get("name")
        if name not in VIDEO_CODECS:
            ctx.error(
                f"spec.supportedVideo[{i}].name",
                f"unknown video codec '{name}' (valid: {', '.join(VIDEO_CODECS)})",
            )
    for i, m in enumerate(binary):
        if not isinstance(m, str) or not MIME.match(m):
            ctx.error(f"spec.supportedBinary[{i}]", f"MIME type must look like 'type/subtype', got {m!r}")
    env = as_dict(as_dict(spec.get("defaultSettings")).get("env"))
    mode = env.get("BUBU_TRANSPORT_SECURITY_MODE")
    if mode is not None and mode != "tls":
        ctx.error(
            "spec.defaultSettings.env.BUBU_TRANSPORT_SECURITY_MODE", f"only 'tls' is accepted, got {mode!r}"
        )


async def validate_binding(ctx: Context) -> None:
    if ctx.status_only or (ctx.is_update and ctx.spec == ctx.old_spec):
        # unchanged spec (labels, finalizers): never blocked by a Transport that is gone
        return
    spec = ctx.spec
    for key in ("transportRef", "driver", "stepName", "engramName"):
        if not isinstance(spec.get(key), str) or not spec.get(key):
            ctx.required(f"spec.{key}", f"{key} is required")
    if ctx.is_update:
        for key in ("transportRef", "driver"):
            if ctx.old_spec.get(key) != spec.get(key):
                ctx.forbidden(f"spec.{key}", f"{key} is immutable")
    media = [k for k in ("audio", "video", "binary") if spec.get(k) is not None]
    if not media:
        ctx.required("spec", "at least one of audio, video or binary is required")
    for k in media:
        direction = as_dict(spec.get(k)).get("direction")
        if direction is not None and direction not in DIRECTIONS:
            ctx.error(f"spec.{k}.direction", f"direction must be one of {', '.join(DIRECTIONS)}")
    ref = spec.get("transportRef")
    if not isinstance(ref, str) or not ref:
        return
    transport = await ctx.get(TRANSPORT_KIND, ref, None)
    if transport is None:
        ctx.error("spec.transportRef", f"Transport '{ref}' not found", "FieldValueNotFound")
        return
    tspec = as_dict(transport.get("spec"))
    if spec.get("driver") and spec.get("driver") != tspec.get("driver"):
        ctx.error(
            "spec.driver",
            f"driver '{spec.get('driver')}' does not match Transport driver '{tspec.get('driver')}'",
        )
    supported = {
        "audio": {as_dict(a).get("name") for a in as_list(tspec.get("supportedAudio"))},
        "video": {as_dict(v).get("name") for v in as_list(tspec.get("supportedVideo"))},
    }
    for k in ("audio", "video"):
        codecs = as_list(as_dict(spec.get(k)).get("codecs"))
        seen: set[Any] = set()
        for i, c in enumerate(codecs):
            name = as_dict(c).get("name") if isinstance(c, dict) else c
            if name in seen:
                ctx.error(f"spec.{k}.codecs[{i}]", f"duplicate codec '{name}'", "FieldValueDuplicate")
            elif name not in supported[k]:
                ctx.error(f"spec.{k}.codecs[{i}]", f"codec '{name}' is not supported by Transport '{ref}'")
            seen.add(name)
    mimes = set(as_list(tspec.get("supportedBinary")))
    for i, m in enumerate(as_list(as_dict(spec.get("binary")).get("mimeTypes"))):
        if m not in mimes:
            ctx.error(f"spec.binary.mimeTypes[{i}]", f"MIME type '{m}' is not supported by Transport '{ref}'")
