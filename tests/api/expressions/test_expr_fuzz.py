"""Analysis never crashes: random text, template-shaped text, and every string in the compat fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bobrapet.api.expressions import analyze, iter_templates

FRAGMENTS = st.sampled_from(
    [
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        ".",
        "steps",
        "inputs",
        "[",
        "]",
        "(",
        ")",
        "'",
        '"',
        "|",
        " ",
        "\n",
        "eq",
        "index",
        "-",
        "$",
        ":=",
        "0",
        "a",
        "if",
        "end",
        "for",
        "in",
        "x.y",
        "__class__",
        "now()",
        "env",
        "`",
        "\\",
        "{{-",
        "-}}",
        "not",
        "and",
        ",",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_random_text_never_crashes(text: str) -> None:
    for condition in (False, True):
        a = analyze(text, condition=condition)
        assert isinstance(a.errors, tuple)


@settings(max_examples=600, deadline=None)
@given(st.lists(FRAGMENTS, max_size=40).map("".join))
def test_template_shaped_text_never_crashes(text: str) -> None:
    for condition in (False, True):
        a = analyze(text, condition=condition)
        for err in a.errors:
            assert err.line >= 1 and err.column >= 1
            assert err.message


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    a = analyze("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")
    assert a.errors


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_every_string_in_the_compat_fixtures(compat_dir: Path) -> None:
    files = sorted(compat_dir.rglob("*.yaml"))
    assert len(files) > 50
    analysed = 0
    go_errors = 0
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            for text in _strings(doc):
                for condition in (False, True):
                    a = analyze(text, condition=condition)
                    analysed += 1
                    go_errors += sum("Go-template syntax" in e.message for e in a.errors)
            for _path, a in iter_templates(doc):
                assert a.is_template
    assert analysed > 1000
    assert go_errors > 0  # the fixtures do contain Go-template expressions, and we say so
