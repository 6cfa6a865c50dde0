"""Fixtures for admission tests: a dict-backed Lookup with a small catalog, and helpers
that admit a document and return either the Admitted result or the list of causes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.api.admission.adm_helpers import PLAIN_TEMPLATE, TEMPLATE, Causes, engram, story_doc

from bobrapet.api.admission import AdmissionConfig, Admitted, MemoryLookup, admit
from bobrapet.api.errors import Invalid


@pytest.fixture
def lookup() -> MemoryLookup:
    target = story_doc("target", version="v1", steps=[{"name": "only", "type": "condition"}])
    target["spec"]["inputsSchema"] = {
        "type": "object",
        "properties": {"user": {"type": "string"}, "count": {"type": "integer", "default": 1}},
        "required": ["user"],
    }
    return MemoryLookup(
        [
            TEMPLATE,
            PLAIN_TEMPLATE,
            engram("worker"),
            engram("typed", template="http"),
            engram("streamer", mode="deployment", template="http"),
            engram("orphan", template="missing-template"),
            engram("remote", ns="other"),
            target,
        ]
    )


@pytest.fixture
def run_admit(lookup: MemoryLookup) -> Callable[..., Awaitable[Admitted]]:
    async def _run(
        obj: Any,
        old: dict[str, Any] | None = None,
        config: AdmissionConfig | None = None,
        subresource: str | None = None,
    ) -> Admitted:
        return await admit(obj, old, lookup, config, subresource=subresource)

    return _run


@pytest.fixture
def causes_of(lookup: MemoryLookup) -> Callable[..., Awaitable[Causes]]:
    """Admit and return the causes; fails the test if the object is admitted."""

    async def _causes(
        obj: Any,
        old: dict[str, Any] | None = None,
        config: AdmissionConfig | None = None,
        subresource: str | None = None,
    ) -> Causes:
        try:
            result = await admit(obj, old, lookup, config, subresource=subresource)
        except Invalid as exc:
            return [(c.field, c.message) for c in exc.causes]
        pytest.fail(f"expected Invalid, admitted with warnings {result.warnings}")

    return _causes
