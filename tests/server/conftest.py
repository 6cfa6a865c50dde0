"""Fixtures of the serve tests: one ``bobrapet serve`` per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.server.serving import Serve, start_serve


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One serve per test module; tests keep to their own namespace or names."""
    running = start_serve(tmp_path_factory.mktemp("serve") / "home")
    try:
        yield running
    finally:
        running.stop()
