"""Engrams that report what secrets they received (env, files, ctx)."""

from __future__ import annotations

import os
import stat
from typing import Any

from bobrapet.sdk import Context


def report(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k.startswith(("API_", "BUBU_SECRET"))}
    files: dict[str, Any] = {}
    root = os.environ.get("BUBU_SECRETS_DIR")
    if root:
        for directory, _, names in os.walk(root):
            for name in names:
                path = os.path.join(directory, name)
                with open(path) as fh:
                    files[os.path.relpath(path, root)] = [fh.read(), oct(stat.S_IMODE(os.stat(path).st_mode))]
        files["<root mode>"] = oct(stat.S_IMODE(os.stat(root).st_mode))
    ctx.logger.debug("logging in as %s", ctx.secrets.get("api", {}).get("user"))
    return {"env": env, "files": files, "ctx": ctx.secrets, "root": root}


def leak(inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
    raise RuntimeError(f"auth failed with token {ctx.secrets['api']['token']}")
