"""Exit-code classification (reference §4.4 step 8)."""

from __future__ import annotations

import pytest

from bobrapet.engine.exit_class import classify_exit, is_exit_class, is_retryable


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0, "success"),
        (-1, "unknown"),
        (-2, "terminal"),
        (1, "terminal"),
        (2, "terminal"),
        (123, "terminal"),
        (124, "retry"),
        (125, "terminal"),
        (126, "terminal"),
        (127, "terminal"),
        (128, "retry"),
        (137, "retry"),
        (143, "retry"),
        (255, "retry"),
        (256, "terminal"),
        (429, "rateLimited"),
        (1000, "terminal"),
    ],
)
def test_classify_exit(code: int, expected: str) -> None:
    assert classify_exit(code) == expected


@pytest.mark.parametrize(
    ("exit_class", "expected"),
    [
        ("retry", True),
        ("rateLimited", True),
        ("unknown", True),
        ("terminal", False),
        ("success", False),
        ("bogus", False),
    ],
)
def test_is_retryable(exit_class: str, expected: bool) -> None:
    assert is_retryable(exit_class) is expected


@pytest.mark.parametrize(
    ("value", "expected"), [("retry", True), ("success", True), ("nope", False), (None, False), (3, False)]
)
def test_is_exit_class(value: object, expected: bool) -> None:
    assert is_exit_class(value) is expected
