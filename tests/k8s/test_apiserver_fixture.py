"""The test API server machinery itself: failures are reported and cleaned up."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from .conftest import run_apiserver


def test_a_server_that_cannot_start_is_reported_with_its_log_and_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates")
    false = shutil.which("false")
    assert false is not None
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RuntimeError, match="etcd exited with 1 during start-up"), run_apiserver(false, false):
        pytest.fail("must not start")
    assert list(tmp_path.iterdir()) == []  # every attempt's directory is gone
