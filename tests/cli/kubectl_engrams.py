"""Engrams for the CLI end-to-end tests (imported by the engine's workers from the repo root)."""

from __future__ import annotations

import os
from typing import Any


def maybe_fail(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Fail when ``fail`` is true or the file ``marker`` exists; print one line either way."""
    print(f"trying with {len(str(inputs.get('token') or ''))} token characters", flush=True)
    marker = str(inputs.get("marker") or "")
    if inputs.get("fail") or (marker and os.path.exists(marker)):
        raise RuntimeError("asked to fail")
    return {"ok": True}
