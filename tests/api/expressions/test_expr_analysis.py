"""Static analysis of Jinja expressions: dependencies, functions, errors with positions, Go syntax."""

from __future__ import annotations

import pytest

from bobrapet.api.expressions import analyze


def test_literal_string_is_not_a_template() -> None:
    a = analyze("just text with steps.a.output in it")
    assert not a.is_template and a.ok and a.step_refs == ()


def test_condition_without_braces_is_an_expression() -> None:
    a = analyze("inputs.ready == true", condition=True)
    assert a.is_template and a.ok and a.roots == {"inputs"}


def test_roots_and_step_references() -> None:
    a = analyze("{{ steps.fetch.output.items[0].id }} {{ steps['fetch-data'].output }} {{ inputs.x }}")
    assert a.roots == {"steps", "inputs"}
    assert [(r.name, r.how, r.path) for r in a.step_refs] == [
        ("fetch", "attribute", ("output", "items", 0, "id")),
        ("fetch-data", "subscript", ("output",)),
    ]
    assert a.step_names == {"fetch", "fetch-data"}


def test_references_inside_filters_calls_and_statements() -> None:
    a = analyze(
        "{% for item in steps.list.output.items %}{{ item.id | upper }}{% endfor %}"
        "{{ len(steps['b'].output) > 0 and steps.c.outputs.ok }}"
    )
    assert a.step_names == {"list", "b", "c"}
    assert "item" not in a.roots  # loop variables are local
    assert a.functions == {"len"} and a.filters == {"upper"}


def test_dynamic_step_access_is_flagged() -> None:
    assert analyze("{{ steps[inputs.which].output }}").dynamic_steps
    assert analyze("{{ steps | toJson }}").dynamic_steps
    assert not analyze("{{ steps.a.output }}").dynamic_steps


def test_now_and_random_are_detected() -> None:
    a = analyze("{{ now() }} {{ [1, 2] | random }}")
    assert a.uses_now and a.uses_random
    assert not analyze("{{ inputs.a }}").uses_now


def test_malformed_expression_has_line_column_and_snippet() -> None:
    a = analyze("first line\nsecond {{ inputs.a + }}")
    (err,) = a.errors
    assert (err.line, err.column) == (2, 22)
    assert err.snippet.startswith("}}")
    assert "invalid expression" in err.message


def test_unterminated_block() -> None:
    (err,) = analyze("{{ inputs.a").errors
    assert "invalid expression" in err.message


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("{{ env('HOME') }}", "env"),
        ("{{ 'x' | expandenv }}", "expandenv"),
        ("{{ getHostByName('a') }}", "getHostByName"),
    ],
)
def test_denied_functions(text: str, name: str) -> None:
    (err,) = analyze(text).errors
    assert err.message == f"function '{name}' is not allowed in templates"
    assert err.snippet == name


def test_unknown_filter_suggests_close_name() -> None:
    (err,) = analyze("{{ inputs.a | uper }}").errors
    assert err.message == "unknown filter 'uper'; did you mean 'upper'?"
    assert (err.line, err.column) == (1, 15)


def test_unknown_function() -> None:
    (err,) = analyze("{{ frobnicate(inputs.a) }}").errors
    assert err.message.startswith("unknown function 'frobnicate'")


def test_private_attributes_rejected() -> None:
    (err,) = analyze("{{ inputs.__class__ }}").errors
    assert "private attribute '__class__'" in err.message


def test_template_inclusion_rejected() -> None:
    (err,) = analyze("{% include 'other' %}{{ inputs.a }}").errors
    assert err.message == "template inclusion is not supported (include)"


GO_CASES = [
    ('{{ eq .inputs.a "x" }}', "{{ inputs.a == 'x' }}"),
    ("{{ .inputs.a }}", "{{ inputs.a }}"),
    ('{{ index .steps "fetch-data" }}', "{{ steps['fetch-data'] }}"),
    ('{{ (index .steps "x").output.body }}', "{{ steps['x'].output.body }}"),
    ('{{ printf "%s-%d" .inputs.a 3 }}', "{{ '%s-%d' | format(inputs.a, 3) }}"),
    ("{{ len .steps.a.output.items }}", "{{ steps.a.output.items | length }}"),
    ('{{ ne .inputs.mode "slow" }}', "{{ inputs.mode != 'slow' }}"),
    ('{{ default "n/a" .inputs.name }}', "{{ inputs.name | default('n/a') }}"),
    ('{{ .inputs.name | default "n/a" }}', "{{ inputs.name | default('n/a') }}"),
    ("{{ not .inputs.done }}", "{{ not inputs.done }}"),
]


@pytest.mark.parametrize(("go", "jinja"), GO_CASES)
def test_go_template_syntax_gets_specific_rewrite(go: str, jinja: str) -> None:
    a = analyze(go)
    (err,) = a.errors
    assert err.message == f'Go-template syntax is not supported: "{go}" — write Jinja instead, e.g. "{jinja}"'
    assert (err.line, err.column) == (1, 1)
    assert err.snippet == go


def test_go_template_in_bare_condition() -> None:
    text = 'and (eq .eventType "Modified") (eq .object.status.phase "Failed")'
    (err,) = analyze(text, condition=True).errors
    assert err.message == (
        f'Go-template syntax is not supported: "{text}" — write Jinja instead, '
        "e.g. \"(eventType == 'Modified') and (object.status.phase == 'Failed')\""
    )


def test_go_template_block_inside_text_has_its_position() -> None:
    a = analyze('Hello\n  name: {{ eq .inputs.a "x" }}')
    (err,) = a.errors
    assert (err.line, err.column) == (2, 9)


def test_go_control_structures() -> None:
    errs = analyze("{{ if .inputs.x }}yes{{ end }}").errors
    assert len(errs) == 2
    assert all("write Jinja statements instead" in e.message for e in errs)


def test_go_variables_get_generic_advice() -> None:
    (err,) = analyze("{{ $x := .inputs }}").errors
    assert err.message.startswith('Go-template syntax is not supported: "{{ $x := .inputs }}"')
    assert "e.g." in err.message


def test_jinja_filters_with_call_syntax_are_fine() -> None:
    a = analyze("{{ inputs.repository | split('/') | first }} {{ inputs.status | tojson }}")
    assert a.ok, a.errors


def test_results_are_cached_and_immutable() -> None:
    assert analyze("{{ inputs.z }}") is analyze("{{ inputs.z }}")


def test_non_string_input() -> None:
    assert not analyze(42).is_template


@pytest.mark.parametrize(
    ("go", "jinja"),
    [
        ("{{ and .inputs.a .inputs.b }}", "{{ inputs.a and inputs.b }}"),
        ("{{ eq .inputs.a .inputs.b }}", "{{ inputs.a == inputs.b }}"),
        ("{{ index .inputs.m .inputs.k }}", "{{ inputs.m[inputs.k] }}"),
        ("{{ .steps.fetch-data.output.x }}", "{{ steps['fetch-data'].output.x }}"),
        ("{{ eq .steps.my-step.output.a 3 }}", "{{ steps['my-step'].output.a == 3 }}"),
        ("{{ $.inputs.a }}", "{{ inputs.a }}"),
    ],
)
def test_go_rewrite_keeps_separate_operands_apart(go: str, jinja: str) -> None:
    (err,) = analyze(go).errors
    assert f'e.g. "{jinja}"' in err.message


def test_go_rewrite_in_bare_condition_separates_operands() -> None:
    (err,) = analyze("and .inputs.a .inputs.b", condition=True).errors
    assert 'e.g. "inputs.a and inputs.b"' in err.message


def test_go_comment_and_variable_get_specific_hints() -> None:
    (err,) = analyze("a {{/* note */}} b").errors
    assert "{# note #}" in err.message and err.column == 3
    (err,) = analyze("{{ $x := .inputs.a }}").errors
    assert "{% set x = inputs.a %}" in err.message


def test_unspaced_hyphen_after_step_name_is_reported_with_subscript() -> None:
    (err,) = analyze("{{ steps.fetch-data.output }}").errors
    assert "steps['fetch-data']" in err.message and err.column == 4
    assert analyze("{{ steps.a.output.n - 1 }}").ok
    assert analyze("{{ steps.a.output.n-1 }}").ok


def test_go_rewrite_handles_has_key() -> None:
    (err,) = analyze('{{ hasKey .inputs "a" }}').errors
    assert "e.g. \"{{ 'a' in inputs }}\"" in err.message


@pytest.mark.parametrize(
    "go",
    [
        "{{ upper upper not nil or }}",
        '{{ index "%s" not gt }}',
        "and gt default",
        '{{ default not "%s" .x }}',
    ],
)
def test_go_rewrite_is_never_itself_invalid(go: str) -> None:
    condition = not go.startswith("{{")
    (err,) = analyze(go, condition=condition).errors
    suggestion = err.message.split('e.g. "', 1)[1].rsplit('"', 1)[0]
    if "no leading dots" not in err.message:
        assert analyze(suggestion, condition=condition).ok, suggestion


def test_long_templates_are_not_kept_in_the_cache() -> None:
    from bobrapet.api.expressions.analysis import _analyze_cached

    long_text = "{{ inputs.a }}" + "x" * 100_000
    before = _analyze_cached.cache_info().currsize
    assert analyze(long_text).roots == {"inputs"}
    assert _analyze_cached.cache_info().currsize == before
