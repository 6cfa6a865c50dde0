"""Who owns a blob, read from its key (storage layout of reference §7.2 and §7.6)."""

from __future__ import annotations

import pytest

from bobrapet.storage.layout import (
    Owner,
    cache_blob_dir,
    named_input_prefix,
    owner_of,
    parent,
    step_run_prefixes,
)


@pytest.mark.parametrize(
    ("key", "owner"),
    [
        ("outputs/default/r1-a/big.json", Owner("step-output", "default", "r1-a")),
        ("outputs/default/r1-a/output.json", Owner("step-output", "default", "r1-a")),
        ("inputs/r1-a/input.json", Owner("named-input", name="r1-a")),
        ("inputs/default/4f2a/doc.json", Owner("run-input", "default", "4f2a")),
        ("cache/default/count/latest/abc.json", Owner("cache-entry")),
        (
            "cache/default/count/latest/abc/0123-big.json",
            Owner("cache-blob", name="cache/default/count/latest/abc.json"),
        ),
        ("outputs/loose.json", None),  # placed by hand: another layout, never touched
        ("outputs/a/b/c/d.json", None),
        ("elsewhere/default/r/x.json", None),
        ("cache/default/count/abc.json", None),
    ],
)
def test_owner_of_reads_the_layout_backwards(key: str, owner: Owner | None) -> None:
    assert owner_of(key, "outputs", "inputs") == owner


def test_configured_prefixes_are_used() -> None:
    assert owner_of("o/ns/r/x.json", "o/", "i") == Owner("step-output", "ns", "r")
    assert owner_of("i/r/x.json", "o", "i") == Owner("named-input", name="r")
    assert owner_of("outputs/ns/r/x.json", "o", "i") is None


def test_one_prefix_for_both_leaves_ambiguous_keys_alone() -> None:
    assert owner_of("data/ns/r/x.json", "data", "data") is None
    assert owner_of("data/r/x.json", "data", "data") == Owner("named-input", name="r")


def test_prefixes_of_owners() -> None:
    assert step_run_prefixes("outputs", "inputs", "ns", "r-a") == ["outputs/ns/r-a", "inputs/r-a"]
    assert named_input_prefix("inputs/", "run") == "inputs/run"
    assert cache_blob_dir("cache/ns/e/v/k.json") == "cache/ns/e/v/k"
    assert parent("inputs/ns/id/doc.json") == "inputs/ns/id"
