"""``explain``: kubectl-explain-like field documentation generated from the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from bobrapet.api import kinds
from bobrapet.api.explain import explain, type_name


def test_root_of_a_kind() -> None:
    text = explain(kinds.STORY)
    assert text.startswith("GROUP:      bubustack.io\nKIND:       Story\nVERSION:    v1alpha1\n")
    assert "DESCRIPTION:\n    A workflow definition" in text
    assert "FIELDS:\n  apiVersion\t<string>\n" in text
    assert "  spec\t<StorySpec> -required-\n" in text
    assert "  status\t<StoryStatus>\n" in text


def test_nested_field_through_a_list() -> None:
    text = explain(kinds.STORY, ["spec", "steps"])
    assert "FIELD: spec.steps <[]Step>" in text
    assert "MIN ITEMS: 1" in text
    assert "MAX ITEMS: 1000" in text
    assert "  name\t<string> -required-\n    Step name (DNS label)" in text
    assert "  needs\t<[]string>\n" in text
    assert "  with\t<Object>\n" in text
    assert "  secrets\t<map[string]string>\n" in text
    ref = explain(kinds.STORY, ["spec", "steps", "ref", "name"])
    assert "FIELD: spec.steps.ref.name <string>" in ref
    assert "PATTERN: ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" in ref
    assert "FIELDS:" not in ref


def test_dotted_path_and_python_names_work() -> None:
    assert explain(kinds.STORY, ["spec.steps.if"]) == explain(kinds.STORY, ["spec", "steps", "if_"])


def test_enum_and_default_are_shown() -> None:
    text = explain(kinds.STORY, ["spec", "pattern"])
    assert "ENUM: batch, realtime" in text
    assert 'DEFAULT: "batch"' in text
    retry = explain(kinds.STORY, ["spec", "steps", "execution", "retry", "maxRetries"])
    assert "DEFAULT: 3" in retry
    assert "MINIMUM: 0" in retry
    assert "MAXIMUM: 10" in retry


def test_map_of_models_descends_into_the_values() -> None:
    text = explain(kinds.ENGRAM_TEMPLATE, ["spec", "secretSchema"])
    assert "FIELD: spec.secretSchema <map[string]SecretDefinition>" in text
    assert "  mountType\t<string>\n" in text
    assert "ENUM:" not in text
    mount = explain(kinds.ENGRAM_TEMPLATE, ["spec", "secretSchema", "mountType"])
    assert "ENUM: env, file, both" in mount


def test_unknown_segment_suggests_the_closest_field() -> None:
    with pytest.raises(KeyError, match='field "stpes" does not exist in spec; did you mean "steps"\\?'):
        explain(kinds.STORY, ["spec", "stpes"])
    with pytest.raises(KeyError, match="valid fields: apiVersion, kind, metadata, spec, status"):
        explain(kinds.STORY, ["qqqqq"])


def test_free_form_fields_have_no_sub_fields() -> None:
    with pytest.raises(KeyError, match=r'"spec\.steps\.with" is free-form JSON'):
        explain(kinds.STORY, ["spec", "steps", "with", "url"])


def test_type_names() -> None:
    assert type_name(list[str] | None) == "[]string"
    assert type_name(dict[str, int]) == "map[string]integer"
    assert type_name(bool) == "boolean"


def _field_paths(model: type[BaseModel], prefix: tuple[str, ...], depth: int) -> Iterator[tuple[str, ...]]:
    from bobrapet.api.explain import _element
    from bobrapet.api.structural import is_model as _is_model

    if depth > 8:
        return
    for name, field in model.model_fields.items():
        path = (*prefix, field.alias or name)
        yield path
        target = _element(field.annotation)
        if _is_model(target):
            yield from _field_paths(target, path, depth + 1)


@pytest.mark.parametrize("kind", kinds.ALL_KINDS, ids=str)
def test_every_field_of_every_kind_can_be_explained(kind: kinds.Kind) -> None:
    paths = list(_field_paths(kind.model, (), 0))
    assert paths
    for path in paths:
        text = explain(kind, path)
        assert f"FIELD: {'.'.join(path)} <" in text
        assert "DESCRIPTION:\n    " in text
