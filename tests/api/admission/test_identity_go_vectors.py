"""Canonical input hash and deterministic names, against vectors written from Go's rules.

The expected texts below are what Go's ``json.Marshal`` writes for the value
``json.Unmarshal`` reads from the same JSON (reference §5.2): map keys sorted by their
bytes, no whitespace, ``<`` ``>`` ``&`` U+2028 U+2029 escaped as ``\\u003c`` ...,
control characters as ``\\n`` ``\\b`` ``\\f`` or ``\\u00XX``, invalid UTF-16 as U+FFFD,
every number a float64 printed by ``strconv.AppendFloat(f, 'f' or 'e', -1, 64)`` with
``e-07`` shortened to ``e-7``: fixed notation for ``1e-6 <= |x| < 1e21``, integers beyond
2**53 rounded to the nearest float64. They were derived by hand from those rules, not by
running this implementation.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from bobrapet.api.admission.identity import (
    canonical_input_hash,
    canonical_json,
    derive_story_run_name,
    sanitize_identity,
    story_trigger_name,
)

VECTORS: list[tuple[str, str]] = [
    # (JSON as a submitter sends it, what Go's json.Marshal writes back)
    ("null", "{}"),
    ("{}", "{}"),
    ('{"b": 1, "a": {"d": [3, 2, 1], "c": true}}', '{"a":{"c":true,"d":[3,2,1]},"b":1}'),
    ('{"html": "<b>Tom & Jerry</b>"}', '{"html":"\\u003cb\\u003eTom \\u0026 Jerry\\u003c/b\\u003e"}'),
    ('{"<k>": 1}', '{"\\u003ck\\u003e":1}'),
    ('{"sep": "a\\u2028b\\u2029c"}', '{"sep":"a\\u2028b\\u2029c"}'),
    ('{"ctl": "\\n\\r\\t\\b\\f\\u0001\\u001f"}', '{"ctl":"\\n\\r\\t\\b\\f\\u0001\\u001f"}'),
    ('{"q": "say \\"hi\\" \\\\ bye"}', '{"q":"say \\"hi\\" \\\\ bye"}'),
    ('{"u": "héllo ✓ 😀"}', '{"u":"héllo ✓ 😀"}'),
    ('{"del": "\\u007f"}', '{"del":"\x7f"}'),
    ('{"bad": "\\ud800x"}', '{"bad":"\ufffdx"}'),
    ('{"f": 1e21}', '{"f":1e+21}'),
    ('{"f": 1e20}', '{"f":100000000000000000000}'),
    ('{"f": 1e-7}', '{"f":1e-7}'),
    ('{"f": 0.000001}', '{"f":0.000001}'),
    ('{"f": 0.0000015}', '{"f":0.0000015}'),
    ('{"f": 0.1}', '{"f":0.1}'),
    ('{"f": 2.50}', '{"f":2.5}'),
    ('{"f": 3.0}', '{"f":3}'),
    ('{"f": -0.0}', '{"f":-0}'),
    ('{"f": 1.5e300}', '{"f":1.5e+300}'),
    ('{"f": -2.5e-9}', '{"f":-2.5e-9}'),
    ('{"f": 123456789012345678}', '{"f":123456789012345680}'),
    ('{"i": 9007199254740993}', '{"i":9007199254740992}'),
    ('{"i": -9007199254740993}', '{"i":-9007199254740992}'),
    ('{"i": 12345678901234567890123}', '{"i":1.2345678901234568e+22}'),
    ('{"n": [null, false, 0, "", [], {}]}', '{"n":[null,false,0,"",[],{}]}'),
    # keys sort by bytes: upper case before lower case, "a" before "a-b" before "a_b" before "ab"
    ('{"b": 0, "B": 1, "ab": 2, "a_b": 3, "a-b": 4, "a": 5, "é": 6, "z": 7}',
     '{"B":1,"a":5,"a-b":4,"a_b":3,"ab":2,"b":0,"z":7,"é":6}'),
    ('{"deep": {"z": {"y": [{"b": 1, "a": 2}]}}}', '{"deep":{"z":{"y":[{"a":2,"b":1}]}}}'),
]  # fmt: skip


@pytest.mark.parametrize(("sent", "go"), VECTORS)
def test_canonical_json_matches_go(sent: str, go: str) -> None:
    value = json.loads(sent)
    assert canonical_json(value) == go
    assert canonical_input_hash(value) == hashlib.sha256(go.encode()).hexdigest()


def test_python_values_hash_as_the_json_go_would_read() -> None:
    """Values built in Python (not parsed) hash like the JSON text they serialize to."""
    assert canonical_input_hash({"t": (1, 2)}) == canonical_input_hash({"t": [1, 2]})
    assert canonical_input_hash({"x": 2**60}) == canonical_input_hash({"x": float(2**60)})
    assert canonical_input_hash(None) == canonical_input_hash({}) == hashlib.sha256(b"{}").hexdigest()
    assert canonical_input_hash({"ratio": 1.5e-5}) == canonical_input_hash({"ratio": 0.000015})


def test_sanitized_identity_like_go() -> None:
    assert sanitize_identity("Evt 1") == "evt-1"
    assert sanitize_identity("--A__B..c--") == "a-b-c"
    assert sanitize_identity("üñí") == ""
    # Go lowercases rune by rune: U+0130 becomes "i" (Python's lower() adds a combining dot)
    assert sanitize_identity("İx") == "ix"
    assert sanitize_identity("\u212a") == "k"  # Kelvin sign lowercases to ASCII k in both


def test_names_like_go() -> None:
    seed = "default/example-story/sample-submission"
    digest = hashlib.sha1(seed.encode()).hexdigest()[:16]
    expected = f"example-story-trigger-{digest}"
    assert story_trigger_name("default", "example-story", "sample-submission") == expected
    # the StoryRun: sanitized identity plus the hash (the namespace is set)
    assert derive_story_run_name("default", "s", "Evt 1") == (
        "s-evt-1-" + hashlib.sha1(b"default/s/Evt 1").hexdigest()[:16]
    )
    # no namespace and an identity that is already clean: no hash
    assert derive_story_run_name("", "s", "evt-1") == "s-evt-1"
    # nothing left after sanitizing: the hash alone
    only_hash = "s-" + hashlib.sha1(b"default/s/%%").hexdigest()[:16]
    assert derive_story_run_name("default", "s", "%%") == only_hash
    long_story = "x" * 250
    name = story_trigger_name("default", long_story, "k")
    suffix = "-trigger-" + hashlib.sha1(f"default/{long_story}/k".encode()).hexdigest()[:16]
    assert len(name) == 253 and name == long_story[: 253 - len(suffix)] + suffix
