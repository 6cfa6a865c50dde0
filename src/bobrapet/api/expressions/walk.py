"""Find and analyse every template inside a JSON value.

``iter_templates(value, base)`` yields ``(path, Analysis)`` for every string containing
``{{`` and for every ``{"$bubuTemplate": ...}`` wrapper (whose ``$bubuTemplateVars`` keys
become extra roots for that template). Paths use wire syntax: ``with.items[0].url``,
``with["odd.key"]``. Invariant: the walk is iterative over nesting (no recursion limit)
and never raises for any JSON value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from bobrapet.api.expressions.analysis import Analysis, analyze

TEMPLATE_KEY = "$bubuTemplate"
TEMPLATE_VARS_KEY = "$bubuTemplateVars"
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_$-]+$")


def join_path(base: str, key: str | int) -> str:
    """``base`` + ``.key`` / ``[i]`` / ``["odd key"]``."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    if _PLAIN_KEY.match(key):
        return f"{base}.{key}" if base else key
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{base}["{escaped}"]'


def _no_path(base: str, key: str | int) -> str:
    return ""


def iter_templates(
    value: Any, base: str = "", *, condition: bool = False, paths: bool = True
) -> Iterator[tuple[str, Analysis]]:
    """Every template in ``value`` with its path; ``condition`` applies to a top-level string
    only. With ``paths=False`` every path is ``""`` (for callers that need only the analyses:
    building paths is most of the walk's cost)."""
    join = join_path if paths else _no_path
    if isinstance(value, str):
        a = analyze(value, condition=condition)
        if a.is_template:
            yield base, a
        return
    stack: list[tuple[str, Any]] = [(base, value)]
    while stack:
        path, cur = stack.pop()
        if isinstance(cur, str):
            if "{{" in cur:
                yield path, analyze(cur)
        elif isinstance(cur, dict):
            if TEMPLATE_KEY in cur and isinstance(cur[TEMPLATE_KEY], str):
                tvars = cur.get(TEMPLATE_VARS_KEY)
                extra = frozenset(tvars) if isinstance(tvars, dict) else frozenset()
                a = analyze(cur[TEMPLATE_KEY])
                if a.is_template:
                    yield join(path, TEMPLATE_KEY), replace(a, extra_roots=extra)
                if isinstance(tvars, dict | list):
                    stack.append((join(path, TEMPLATE_VARS_KEY), tvars))
                continue
            for k in reversed(list(cur)):
                stack.append((join(path, str(k)), cur[k]))
        elif isinstance(cur, list):
            for i in range(len(cur) - 1, -1, -1):
                stack.append((join(path, i), cur[i]))
