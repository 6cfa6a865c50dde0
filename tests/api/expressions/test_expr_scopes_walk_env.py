"""Scopes (reference §3.5), the JSON template walker and the sandboxed environment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from bobrapet.api.expressions import (
    BATCH_RUNTIME,
    REALTIME_RUNTIME,
    REALTIME_STATIC,
    STORY_OUTPUT,
    analyze,
    check_scope,
    iter_templates,
    make_environment,
)


def messages(text: str, scope: object, condition: bool = False) -> list[str]:
    return [e.message for e in check_scope(analyze(text, condition=condition), scope)]  # type: ignore[arg-type]


def test_batch_scope_allows_inputs_steps_now() -> None:
    assert messages("{{ inputs.a }} {{ steps.x.output }} {{ now() }}", BATCH_RUNTIME) == []


def test_realtime_static_allows_only_inputs() -> None:
    assert messages("{{ steps.x.output }}", REALTIME_STATIC) == [
        "context 'steps' is not allowed for realtime-static templates"
    ]
    assert messages("{{ now() }}", REALTIME_STATIC) == [
        "function 'now' is not allowed for realtime-static templates"
    ]
    assert messages("{{ [1] | random }}", REALTIME_STATIC) == [
        "random functions are not allowed for realtime-static templates"
    ]


def test_packet_only_in_realtime_runtime() -> None:
    assert messages("{{ packet.identity }}", REALTIME_RUNTIME) == []
    assert messages("{{ packet.identity }}", BATCH_RUNTIME) == [
        "context 'packet' is not allowed for batch-runtime templates"
    ]


def test_unknown_context() -> None:
    (msg,) = messages("{{ foo.bar }}", STORY_OUTPUT)
    assert msg.startswith("unknown context 'foo' is not allowed for story-output templates")


def test_walker_paths_and_wrappers() -> None:
    value = {
        "a": "{{ inputs.x }}",
        "b": ["plain", {"c": "{{ steps.s.output }}"}],
        "odd.key": "{{ inputs.y }}",
        "w": {"$bubuTemplate": "{{ item.name }}", "$bubuTemplateVars": {"item": {"n": "{{ inputs.z }}"}}},
        "n": 3,
    }
    found = {path: a for path, a in iter_templates(value, "spec.steps[0].with")}
    assert set(found) == {
        "spec.steps[0].with.a",
        "spec.steps[0].with.b[1].c",
        'spec.steps[0].with["odd.key"]',
        "spec.steps[0].with.w.$bubuTemplate",
        "spec.steps[0].with.w.$bubuTemplateVars.item.n",
    }
    wrapper = found["spec.steps[0].with.w.$bubuTemplate"]
    assert check_scope(wrapper, BATCH_RUNTIME) == []  # `item` comes from $bubuTemplateVars


def test_walker_on_bare_condition_string() -> None:
    ((path, a),) = list(iter_templates("inputs.ok", "spec.steps[0].if", condition=True))
    assert path == "spec.steps[0].if" and a.roots == {"inputs"}


def test_environment_renders_with_custom_filters() -> None:
    env = make_environment(clock=lambda: datetime(2025, 1, 1, tzinfo=UTC))
    out = env.from_string(
        "{{ data | toJson }}|{{ 'abc' | sha256sum }}|{{ 'hi' | b64enc }}|{{ type_of(data) }}|"
        "{{ exists(data.a) }}|{{ len(none) }}|{{ now().year }}|{{ 'a/b' | split('/') | last }}"
    ).render(data={"a": 1})
    assert out.split("|") == [
        '{"a":1}',
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "aGk=",
        "object",
        "True",
        "0",
        "2025",
        "b",
    ]


def test_environment_hides_denied_and_nondeterministic_functions() -> None:
    env = make_environment(allow_nondeterministic=False)
    assert "now" not in env.globals and "random" not in env.filters
    for name in ("env", "expandenv", "getHostByName"):
        assert name not in env.globals and name not in env.filters


def test_environment_is_sandboxed_and_strict() -> None:
    env = make_environment()
    with pytest.raises(SecurityError):
        env.from_string("{{ ''.__class__.__mro__ }}").render()
    with pytest.raises(SecurityError):
        env.from_string("{{ x.append(1) }}").render(x=[])
    with pytest.raises(UndefinedError):
        env.from_string("{{ inputs.missing }}").render(inputs={})


@pytest.mark.parametrize(
    "source",
    [
        "{{ (2 ** 1000000000) > 1 }}",
        "{{ (inputs.n ** 1000000000) > 1 }}",
        "{{ ('x' * 10000000) | length }}",
        "{{ ([1] * inputs.big) | length }}",
        "{{ ('%0999999999d' % 1) | length }}",
    ],
)
def test_sandbox_refuses_huge_operations(source: str) -> None:
    env = make_environment()
    with pytest.raises(SecurityError):
        env.from_string(source).render(inputs={"n": 4, "big": 10**8})


def test_sandbox_allows_ordinary_arithmetic_and_formatting() -> None:
    env = make_environment()
    out = env.from_string("{{ 2 ** 10 }} {{ 'ab' * 3 }} {{ 3 * 'ab' }} {{ '%05.2f' % 3.14159 }} {{ 10 % 3 }}")
    assert out.render() == "1024 ababab ababab 03.14 1"
