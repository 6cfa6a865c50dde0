"""Texts admission accepts (api.expressions.analyze) compile for evaluation too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bobrapet.api.expressions import analyze, iter_templates
from bobrapet.templating.compiled import compile_expression, compile_text

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_CONDITION_KEYS = {"if", "until", "condition"}


def _conditions(value: Any) -> list[str]:
    found: list[str] = []
    stack = [value]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for k, v in cur.items():
                if k in _CONDITION_KEYS and isinstance(v, str):
                    found.append(v)
                else:
                    stack.append(v)
        elif isinstance(cur, list):
            stack.extend(cur)
    return found


def _documents() -> list[Any]:
    docs: list[Any] = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


@pytest.mark.parametrize("nondeterministic", [True, False])
def test_example_templates_compile(nondeterministic: bool) -> None:
    docs = _documents()
    assert docs, "examples/ holds the Stories this test compiles"
    for doc in docs:
        for _, analysis in iter_templates(doc):
            if analysis.ok and not analysis.uses_now and not analysis.uses_random:
                compile_text(analysis.text, nondeterministic)
        for text in _conditions(doc):
            if "{{" not in text and text.strip() and analyze(text, condition=True).ok:
                compile_expression(text.strip(), nondeterministic)


@pytest.mark.parametrize(
    "text",
    [
        "{{ steps.fetch.output.items[0].id }} {{ steps['fetch-data'].output }} {{ inputs.x }}",
        "{% for item in steps.list.output.items %}{{ item.id | upper }}{% endfor %}",
        "{{ len(steps['b'].output) > 0 and steps.c.outputs.ok }}",
        "{{ inputs.repository | split('/') | first }} {{ inputs.status | tojson }}",
        "{{ steps.a.output.n - 1 }}",
        "{{ steps.a.output.n-1 }}",
        "{# note #}{{ inputs.a }}",
        "{{- inputs.a -}}",
    ],
)
def test_accepted_texts_compile(text: str) -> None:
    assert analyze(text).ok
    compile_text(text, False)
