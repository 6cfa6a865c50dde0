"""Suite-wide fixtures: paths to the repository, its examples and the compat fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SHARED = Path((REPO / ".." / "shared").resolve())
COMPAT = SHARED / "compat"


@pytest.fixture(scope="session")
def compat_dir() -> Path:
    if not COMPAT.is_dir():
        pytest.fail(f"compatibility fixtures not found at {COMPAT} (expected ../shared/compat)")
    return COMPAT


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (BOBRAPET_REQUIRE_K8S=1) a skipped Kubernetes test is a failure, not a skip."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and item.get_closest_marker("k8s") and os.environ.get("BOBRAPET_REQUIRE_K8S") == "1":
        report.outcome = "failed"
        report.longrepr = f"Kubernetes test skipped but BOBRAPET_REQUIRE_K8S=1: {report.longrepr}"
