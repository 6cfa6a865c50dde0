"""compose_dns1123 / compose_dns1123_with_suffix (reference §4.1)."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bobrapet.engine.naming import compose_dns1123, compose_dns1123_with_suffix

LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LONG = "this-is-a-very-long-name-component-that-will-force-truncation"


def _hash(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() + b"\0")
    return h.hexdigest()[:12]


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("story", "step"), "story-step"),
        (("  Story Name  ", "%%%"), "story-name"),
        (("My_Run.1", "Step__A"), "my-run-1-step-a"),
        (("--a--", "", "b"), "a-b"),
        (("",), "resource"),
        (("!!!", "@@"), "resource"),
        ((), "resource"),
        (("a" * 63,), "a" * 63),
        (("UPPER",), "upper"),
        (("café",), "caf"),
    ],
)
def test_compose_dns1123_table(parts: tuple[str, ...], expected: str) -> None:
    assert compose_dns1123(*parts) == expected


def test_compose_dns1123_truncates_with_hash_of_original_parts() -> None:
    name = compose_dns1123(LONG, LONG, LONG)
    assert len(name) == 63
    base = f"{LONG}-{LONG}-{LONG}"
    assert name == base[:50].rstrip("-") + "-" + _hash(LONG, LONG, LONG)


def test_compose_dns1123_hash_uses_original_not_sanitized_parts() -> None:
    a = compose_dns1123("A" * 70)
    b = compose_dns1123("a" * 70)
    assert a != b
    assert a.endswith(_hash("A" * 70))


def test_compose_dns1123_trailing_dash_trimmed_before_hash() -> None:
    part = "a" * 49 + "-" + "b" * 20
    name = compose_dns1123(part)
    assert name == "a" * 49 + "-" + _hash(part)


def test_compose_dns1123_64_chars_truncates() -> None:
    name = compose_dns1123("a" * 64)
    assert name == "a" * 50 + "-" + _hash("a" * 64)


@pytest.mark.parametrize(
    ("base", "suffix", "expected"),
    [
        ("run", "engram-runner", "run-engram-runner"),
        ("!!!", "stdio", "resource-stdio"),
        ("My Run", "", "my-run"),
        ("", "", "resource"),
    ],
)
def test_with_suffix_table(base: str, suffix: str, expected: str) -> None:
    assert compose_dns1123_with_suffix(base, suffix) == expected


def test_with_suffix_keeps_suffix_and_inserts_hash() -> None:
    name = compose_dns1123_with_suffix(LONG, "engram-runner")
    assert len(name) <= 63
    assert name.endswith("-engram-runner")
    digest = _hash(LONG, "engram-runner")
    room = 63 - len("engram-runner") - 1 - 12 - 1
    assert name == f"{LONG[:room].rstrip('-')}-{digest}-engram-runner"


def test_with_suffix_huge_suffix_still_valid() -> None:
    name = compose_dns1123_with_suffix("run", "s" * 80)
    assert len(name) <= 63
    assert LABEL.match(name)


texts = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Z", "S")), max_size=90)


@settings(max_examples=200, deadline=None)
@given(st.lists(texts, max_size=5))
def test_compose_dns1123_always_valid_and_deterministic(parts: list[str]) -> None:
    name = compose_dns1123(*parts)
    assert len(name) <= 63
    assert LABEL.match(name), name
    assert compose_dns1123(*parts) == name


@settings(max_examples=200, deadline=None)
@given(texts, texts)
def test_with_suffix_always_valid(base: str, suffix: str) -> None:
    name = compose_dns1123_with_suffix(base, suffix)
    assert len(name) <= 63
    assert LABEL.match(name), name
    assert compose_dns1123_with_suffix(base, suffix) == name


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet="abcdefghij", min_size=64, max_size=120),
    st.text(alphabet="xyz", min_size=1, max_size=10),
)
def test_with_suffix_suffix_preserved_when_truncating(base: str, suffix: str) -> None:
    assert compose_dns1123_with_suffix(base, suffix).endswith("-" + suffix)
