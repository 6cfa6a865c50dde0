"""Frames exchanged between the engine and a warm worker over two dedicated pipes.

Invariants: one frame = one compact JSON object terminated by ``\\n`` (JSON never contains a
raw newline), so frames are read with ``readline``. Parent -> worker: ``{"op": "run", ...}``.
Parent -> worker also ``{"op": "cancel", "key": ...}`` (stop that step if it can be stopped).
Worker -> parent: ``{"op": "ready"}`` once after start, ``{"op": "signal", "key": ..., "event":
{...}}`` while a step runs (emission order per step), then exactly one ``{"op": "result", "key":
..., ...}`` per run request. Several steps may be in flight on one worker; frames of different
steps interleave, each carries its step's ``key``.
Effect claims (``ctx.effect_once``, :mod:`bobrapet.sdk.effects`): while a step runs, the worker
sends ``{"op": "effect", "key": ..., "id": N, "action": "claim"|"renew"|"complete"|"release",
...payload}`` and the engine answers every such frame with exactly one ``{"op":
"effect-reply", "key": ..., "id": N, "reply": {...}}`` (``id`` is unique per worker).
Triggers (``ctx.trigger_story``, :mod:`bobrapet.sdk.triggers`) work the same way: ``{"op":
"trigger", "key": ..., "id": N, ...payload}`` answered by exactly one ``{"op":
"trigger-reply", "key": ..., "id": N, "reply": {...}}``; effect and trigger calls share the
worker's ``id`` sequence.
Standard library only (imported by warm workers).
"""

from __future__ import annotations

import json
from typing import Any

READY = "ready"
RUN = "run"
CANCEL = "cancel"
SIGNAL = "signal"
RESULT = "result"
EFFECT = "effect"
EFFECT_REPLY = "effect-reply"
TRIGGER = "trigger"
TRIGGER_REPLY = "trigger-reply"
#: The reply op of each call op.
REPLY_OF = {EFFECT: EFFECT_REPLY, TRIGGER: TRIGGER_REPLY}

_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def encode(frame: dict[str, Any]) -> bytes:
    """Serialize one frame; raises TypeError/ValueError for non-JSON values."""
    return _ENCODER.encode(frame).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """Parse one frame (a JSON object)."""
    frame = json.loads(line)
    if not isinstance(frame, dict):
        raise ValueError("frame is not a JSON object")
    return frame
