"""Engrams for the CLI end-to-end tests (imported by the engine's workers from the repo root)."""

from __future__ import annotations

import os
import time
from typing import Any


def maybe_fail(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Fail when ``fail`` is true or the file ``marker`` exists; print one line either way."""
    print(f"trying with {len(str(inputs.get('token') or ''))} token characters", flush=True)
    marker = str(inputs.get("marker") or "")
    if inputs.get("fail") or (marker and os.path.exists(marker)):
        raise RuntimeError("asked to fail")
    return {"ok": True}


def chatty(inputs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Print ``count`` lines; then wait for the file ``wait_for``; fail the first attempt when
    the file ``fail_once`` does not exist yet (creating it)."""
    label = inputs.get("label") or "step"
    for i in range(1, int(inputs.get("count") or 0) + 1):
        print(f"{label}: line {i}", flush=True)
    wait_for = str(inputs.get("wait_for") or "")
    if wait_for:
        deadline = time.monotonic() + 60
        while not os.path.exists(wait_for) and time.monotonic() < deadline:
            time.sleep(0.05)
        print(f"{label}: released", flush=True)
    fail_once = str(inputs.get("fail_once") or "")
    if fail_once and not os.path.exists(fail_once):
        open(fail_once, "w").close()
        print(f"{label}: failing this attempt", flush=True)
        raise RuntimeError("first attempt fails")
    print(f"{label}: done", flush=True)
    return {"ok": True}
