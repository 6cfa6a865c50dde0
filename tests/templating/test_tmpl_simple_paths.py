"""Plain paths recognised without Jinja's parser give exactly what Jinja's parse gives."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2.parser import Parser

from bobrapet.templating.compiled import _plain_path, _simple_path
from bobrapet.templating.environment import environment


def _jinja_path(text: str) -> object:
    try:
        parser = Parser(environment(False), text, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            return "syntax"
    except Exception:
        return "syntax"
    return _plain_path(expr)


@pytest.mark.parametrize(
    "text",
    [
        "steps.a.output.n",
        " steps . a [ 'x-y' ] [0] ",
        'steps["b c"].output.items[12]',
        "inputs",
        "_x1.y_2",
        "steps.a.if.else",
    ],
)
def test_simple_paths_match_jinja(text: str) -> None:
    assert _simple_path(text) is not None
    assert _simple_path(text) == _jinja_path(text)


@pytest.mark.parametrize(
    "text",
    [
        "true.x", "none", "not x", "a.0", "a[01]", "a['x\\'y']", "a | length", "a.b()", "a[b]",
        "a[-1]", "a + 1", "é.x", "a.", "a[", "1", "a['x'",
    ],
)  # fmt: skip
def test_anything_else_is_left_to_jinja(text: str) -> None:
    assert _simple_path(text) is None


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
_segments = st.lists(
    st.one_of(
        _names.map(lambda n: f".{n}"),
        st.integers(min_value=0, max_value=99).map(lambda i: f"[{i}]"),
        st.text(alphabet="abc-_ .x", max_size=5).map(lambda k: f"['{k}']"),
        st.text(alphabet="abc-_ .x", max_size=5).map(lambda k: f'["{k}"]'),
    ),
    max_size=5,
)


@given(_names, _segments, st.sampled_from(["", " ", "  "]))
def test_generated_paths_agree_with_jinja(root: str, segments: list[str], pad: str) -> None:
    text = pad + root + pad.join(segments) + pad
    simple = _simple_path(text)
    if simple is not None:
        assert simple == _jinja_path(text)
