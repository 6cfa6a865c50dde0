"""Reference maps, storage keys (traversal rejected) and ``$bubuStoragePath`` selectors."""

from __future__ import annotations

import pytest

from bobrapet.storage.errors import InvalidReference, SelectorError
from bobrapet.storage.refs import STORAGE_REF, check_key, contains_refs, parse_ref
from bobrapet.storage.selector import WILDCARD, parse_selector, select


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "outputs/../../etc/passwd",
        "outputs/ns/..",
        "/etc/passwd",
        "\\\\server\\share",
        "outputs\\..\\..\\x",
        "C:\\secrets",
        "",
        "   ",
        "a//b",
        "./a",
        "a\x00b",
        None,
        42,
    ],
)
def test_unsafe_keys_are_rejected(key: object) -> None:
    with pytest.raises(InvalidReference):
        check_key(key)


def test_safe_keys_pass() -> None:
    assert check_key("outputs/default/run-a/big.json") == "outputs/default/run-a/big.json"
    assert check_key("outputs/x/..json") == "outputs/x/..json"  # '..json' is a name, not '..'


def test_parse_ref_is_strict() -> None:
    ref = parse_ref({STORAGE_REF: "outputs/a.json", "$bubuStoragePath": " items[0] "})
    assert (ref.key, ref.path) == ("outputs/a.json", "items[0]")
    with pytest.raises(InvalidReference, match="unknown keys: extra"):
        parse_ref({STORAGE_REF: "outputs/a.json", "extra": 1})
    with pytest.raises(InvalidReference, match="traversal"):
        parse_ref({STORAGE_REF: "../../etc/passwd"})
    with pytest.raises(InvalidReference, match="must be a string"):
        parse_ref({STORAGE_REF: "a.json", "$bubuStoragePath": 3})


def test_contains_refs() -> None:
    assert contains_refs({"a": [{"b": {STORAGE_REF: "x.json"}}]})
    assert not contains_refs({"a": [{"b": "$bubuStorageRef"}]})


def test_selector_grammar() -> None:
    assert parse_selector("items[0].id") == ("items", 0, "id")
    assert parse_selector(".a.b") == ("a", "b")
    assert parse_selector("items[*].id") == ("items", WILDCARD, "id")
    assert parse_selector("['fetch-data'].x[\"a.b\"]") == ("fetch-data", "x", "a.b")
    for bad in ("a[", "a[x]", "a..b", "a[-1]", "a['x"):
        with pytest.raises(SelectorError):
            parse_selector(bad)


def test_select_fields_indexes_and_wildcards() -> None:
    value = {"items": [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": ["c"]}], "a.b": {"c": True}}
    assert select(value, "") is value
    assert select(value, "items[1].id") == 2
    assert select(value, "items[*].id") == [1, 2]
    assert select(value, "items[*].tags[*]") == [["a", "b"], ["c"]]
    assert select(value, "items[*].tags[0]") == ["a", "c"]
    assert select(value, "['a.b'].c") is True
    with pytest.raises(SelectorError, match="no field 'nope'"):
        select(value, "items[0].nope")
    with pytest.raises(SelectorError, match="out of range"):
        select(value, "items[5]")
    with pytest.raises(SelectorError, match=r"\[\*\] needs an array"):
        select(value, "items[0].id[*]")
