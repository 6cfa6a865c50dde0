"""Selector parsing and matching, independent of any backend."""

from __future__ import annotations

import pytest

from bobrapet.api.errors import BadRequest
from bobrapet.store.selectors import (
    FieldRequirement,
    LabelRequirement,
    field_string,
    parse_field_selector,
    parse_label_selector,
)


def test_label_selector_parses_every_operator() -> None:
    sel = parse_label_selector("a=1, b==2,c!=3,d in (x, y),e notin (z),f,!g,h>4,i<5")
    assert sel.requirements == (
        LabelRequirement("a", "=", ("1",)),
        LabelRequirement("b", "=", ("2",)),
        LabelRequirement("c", "!=", ("3",)),
        LabelRequirement("d", "in", ("x", "y")),
        LabelRequirement("e", "notin", ("z",)),
        LabelRequirement("f", "exists"),
        LabelRequirement("g", "!"),
        LabelRequirement("h", ">", ("4",)),
        LabelRequirement("i", "<", ("5",)),
    )


def test_label_selector_accepts_prefixed_keys_and_empty_values() -> None:
    sel = parse_label_selector("bubustack.io/story-run=,app.kubernetes.io/name=x")
    assert sel.matches({"bubustack.io/story-run": "", "app.kubernetes.io/name": "x"})
    assert not sel.matches({"app.kubernetes.io/name": "x"})


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a!=1", {}, True),
        ("a notin (1)", {}, True),
        ("a in (1)", {}, False),
        ("a=1", {}, False),
        ("a>3", {"a": "4"}, True),
        ("a>3", {"a": "x"}, False),
        ("a<3", {}, False),
        ("a>3", {"a": "1_0"}, False),  # not an integer for Kubernetes (strconv.ParseInt)
        ("a<30", {"a": "1_0"}, False),
    ],
)
def test_label_matching_of_missing_and_numeric_labels(
    selector: str, labels: dict[str, str], expected: bool
) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


@pytest.mark.parametrize(
    "selector",
    ["a b", "a=b=c", "a in (b", "a in (b c)", "!", "a>b", "x/=1", "/x=1", "a=" + "v" * 64, "a,,b", "(a)"],
)
def test_invalid_label_selectors(selector: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_label_selector(selector)
    assert info.value.message.startswith("invalid label selector")


def test_field_selector_parsing_and_escapes() -> None:
    sel = parse_field_selector(r"spec.a=x\,y,spec.b!=1,spec.c==z\=w")
    assert sel.requirements == (
        FieldRequirement("spec.a", "=", "x,y"),
        FieldRequirement("spec.b", "!=", "1"),
        FieldRequirement("spec.c", "=", "z=w"),
    )
    assert sel.matches({"spec.a": "x,y", "spec.c": "z=w"})


@pytest.mark.parametrize("selector", ["novalue", "a=1,,b=2", r"a=\q", "=x"])
def test_invalid_field_selectors(selector: str) -> None:
    with pytest.raises(BadRequest, match="invalid field selector"):
        parse_field_selector(selector)


def test_field_selector_restricted_paths() -> None:
    with pytest.raises(BadRequest, match=r"field label not supported: 'spec\.x'"):
        parse_field_selector("spec.x=1", allowed=["metadata.name"])


def test_field_string_of_scalars() -> None:
    assert field_string(True) == "true"
    assert field_string(3) == "3"
    assert field_string({"a": 1}) is None
    assert field_string(None) is None
