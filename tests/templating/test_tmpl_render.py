"""render/evaluate: typed results, mixed text, wrappers, paths, limits."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bobrapet.templating import (
    Blocked,
    TemplateError,
    build_variables,
    evaluate,
    render,
    step_entry,
)


@pytest.fixture
def variables() -> dict[str, Any]:
    return build_variables(
        inputs={"x": 2, "name": "bob", "flag": True, "obj": {"a": 1}, "json": '{"a": 1}'},
        steps={
            "s1": step_entry({"n": 5, "items": [{"id": "a"}, {"id": "b"}], "keys": "k"}),
            "fetch-data": step_entry({"body": "hi"}),
        },
        story={"name": "demo"},
        run={"name": "demo-1"},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ steps.s1.output.n + 1 }}", 6),
        ("{{ steps.s1.output.n }}", 5),
        ("  {{ steps.s1.output.n }}  ", 5),
        ("{{- steps.s1.output.n -}}", 5),
        ("{{ inputs.x / 4 }}", 0.5),
        ("{{ inputs.flag }}", True),
        ("{{ none }}", None),
        ("{{ inputs.obj }}", {"a": 1}),
        ("{{ steps.s1.output.items[1].id }}", "b"),
        ("{{ steps.s1.output['items'][0] }}", {"id": "a"}),
        ("{{ steps.s1.outputs.n }}", 5),
        ('{{ "x" }}', "x"),
        ("{{ inputs.json }}", '{"a": 1}'),  # a JSON-looking string stays a string
        ("{{ [1, 2] }}", [1, 2]),
        ("{{ (1, 2) }}", [1, 2]),
        ("{{ {'a': [inputs.x]} }}", {"a": [2]}),
        ("{{ steps.s1.output['items'] | map(attribute='id') }}", ["a", "b"]),
        ("{{ story.name }}-{{ run.name }}", "demo-demo-1"),
        ("{{ steps.s1.output.keys }}", "k"),  # keys win over dict methods
    ],
)
def test_single_expression_is_typed(variables: dict[str, Any], text: str, expected: Any) -> None:
    assert evaluate(text, variables) == expected
    assert type(evaluate(text, variables)) is type(expected if not isinstance(expected, tuple) else [])


def test_typed_value_is_the_variable_itself(variables: dict[str, Any]) -> None:
    assert evaluate("{{ inputs }}", variables) is variables["inputs"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n={{ steps.s1.output.n }}", "n=5"),
        ("{{ inputs.x }}{{ inputs.x }}", "22"),
        ("{{ inputs.flag }} and {{ none }}.", "true and ."),
        ("o={{ inputs.obj }}", 'o={"a":1}'),
        ("{% if inputs.flag %}yes{% endif %} {{ 1 }}", "yes 1"),
        ("{% for i in steps.s1.output['items'] %}{{ i.id }},{% endfor %}{{ '' }}", "a,b,"),
    ],
)
def test_mixed_text_renders_to_string(variables: dict[str, Any], text: str, expected: str) -> None:
    assert evaluate(text, variables) == expected


def test_hyphenated_step_names(variables: dict[str, Any]) -> None:
    assert evaluate("{{ steps['fetch-data'].output.body }}", variables) == "hi"
    assert evaluate('{{ steps["fetch-data"].output.body | upper }}', variables) == "HI"


def test_strings_without_braces_are_literals(variables: dict[str, Any]) -> None:
    value = {"a": "inputs.x", "b": "{% if true %}x{% endif %}", "c": 3, "d": None, "e": [True, 1.5]}
    assert render(value, variables) == value


def test_render_recurses_and_keeps_keys(variables: dict[str, Any]) -> None:
    value = {"{{ inputs.x }}": ["{{ inputs.x }}", {"deep": "v{{ inputs.x }}"}], "n": 1}
    assert render(value, variables) == {"{{ inputs.x }}": [2, {"deep": "v2"}], "n": 1}


def test_render_never_mutates_input(variables: dict[str, Any]) -> None:
    value = {"a": ["{{ inputs.x }}"], "b": {"c": "{{ inputs.obj }}"}}
    before = copy.deepcopy(value)
    out = render(value, variables)
    assert value == before
    assert out is not value and out["a"] is not value["a"]


def test_wrapper_with_vars(variables: dict[str, Any]) -> None:
    wrapper = {"$bubuTemplate": "{{ item * 2 + inputs.x }}", "$bubuTemplateVars": {"item": "{{ inputs.x }}"}}
    assert render({"v": wrapper}, variables) == {"v": 6}


def test_wrapper_without_vars_and_literal(variables: dict[str, Any]) -> None:
    assert render({"$bubuTemplate": "{{ inputs.obj }}"}, variables) == {"a": 1}
    assert render({"$bubuTemplate": "plain"}, variables) == "plain"


def test_wrapper_vars_must_be_object(variables: dict[str, Any]) -> None:
    wrapper = {"$bubuTemplate": "{{ item }}", "$bubuTemplateVars": ["x"]}
    with pytest.raises(TemplateError, match=r"must be an object, got array") as err:
        render({"w": wrapper}, variables, path="with")
    assert err.value.path == "with.w.$bubuTemplateVars"


def test_wrapper_vars_can_block(variables: dict[str, Any]) -> None:
    wrapper = {"$bubuTemplate": "{{ item }}", "$bubuTemplateVars": {"item": "{{ steps.later.output }}"}}
    with pytest.raises(Blocked) as err:
        render(wrapper, variables)
    assert err.value.step == "later"


def test_non_string_wrapper_is_a_plain_object(variables: dict[str, Any]) -> None:
    value = {"$bubuTemplate": 3, "x": "{{ inputs.x }}"}
    assert render(value, variables) == {"$bubuTemplate": 3, "x": 2}


def test_error_path_names_the_field(variables: dict[str, Any]) -> None:
    value = {"items": ["ok", "{{ inputs.x }}", {"url": "{{ inputs.missing }}"}]}
    with pytest.raises(TemplateError) as err:
        render(value, variables, path="with")
    assert err.value.path == "with.items[2].url"
    assert str(err.value).startswith("with.items[2].url: inputs.missing is undefined")
    assert "{{ inputs.missing }}" in str(err.value)


def test_error_path_without_base(variables: dict[str, Any]) -> None:
    with pytest.raises(TemplateError) as err:
        render({"a": {"odd key": "{{ 1 / 0 }}"}}, variables)
    assert err.value.path == 'a["odd key"]'
    assert "division by zero" in str(err.value)


def test_output_size_limit(variables: dict[str, Any]) -> None:
    assert len(render("{{ 'x' * 100 }}", variables, max_output_bytes=100)) == 100
    with pytest.raises(TemplateError, match="larger than the limit of 100 bytes"):
        render("{{ 'x' * 101 }}", variables, max_output_bytes=100)
    with pytest.raises(TemplateError, match="larger than the limit"):
        render("a{{ 'é' * 60 }}", variables, max_output_bytes=100)  # 121 bytes in UTF-8
    with pytest.raises(TemplateError, match="larger than the limit"):
        render("{% for i in range(100000) %}{{ 'xxxxxxxx' }}{% endfor %}", variables)


def test_size_limit_does_not_apply_to_plain_data() -> None:
    variables = build_variables(inputs={"big": "x" * 1000}, steps={})
    assert render("{{ inputs.big }}", variables, max_output_bytes=100) == "x" * 1000
    with pytest.raises(TemplateError, match="larger than the limit"):
        render("{{ inputs.big | upper }}", variables, max_output_bytes=100)


def test_nesting_limit(variables: dict[str, Any]) -> None:
    ok: Any = "{{ inputs.x }}"
    for _ in range(128):  # 128 levels of containers are allowed
        ok = [ok]
    out = render(ok, variables)
    for _ in range(128):
        out = out[0]
    assert out == 2
    with pytest.raises(TemplateError, match="nested deeper than 128"):
        render([ok], variables)


def test_cycles_are_stopped_by_the_depth_limit(variables: dict[str, Any]) -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(TemplateError, match="nested deeper"):
        render(cyclic, variables)


def test_loops_cannot_hang(variables: dict[str, Any]) -> None:
    text = "{{ 1 }}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateError, match="iterations"):
        render(text, variables)


def test_recursive_loops_are_refused(variables: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="recursive loops"):
        render("{% for i in [1] recursive %}{{ loop([i]) }}{% endfor %}", variables)


def test_runaway_macro_recursion_is_an_error(variables: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="nested too deeply"):
        render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", variables)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{{ inputs.x + 'a' }}", "unsupported operand"),
        ("{{ inputs.__class__ }}", "inputs.__class__"),
        ("{{ inputs.name.__class__ }}", "not allowed"),
        ("{{ inputs.update({}) }}", "not allowed"),
        ("{{ inputs.x ** 1000000 }}", "not allowed"),
        ("{{ x. }}", "invalid expression"),
        ("{{ inputs.x }} {% if %}", "invalid expression"),
        ("{{ 'nope' | fromJson }}", "invalid JSON"),
        ("{{ undefined_fn(1) }}", "'undefined_fn' is undefined"),
        ("{{ inputs.x | no_such_filter }}", "no_such_filter"),
        ("{{ steps.s1.output.n.upper }}", "number value has no key or attribute 'upper'"),
    ],
)
def test_jinja_errors_become_template_errors(variables: dict[str, Any], text: str, needle: str) -> None:
    with pytest.raises(TemplateError) as err:
        evaluate(text, variables)
    assert not isinstance(err.value, Blocked)
    assert needle in str(err.value)
    assert "Traceback" not in str(err.value)


def test_non_data_result_is_an_error(variables: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="not data"):
        evaluate("{{ inputs.name.upper }}", variables)


def test_evaluate_literal_returns_text(variables: dict[str, Any]) -> None:
    assert evaluate("plain", variables) == "plain"
