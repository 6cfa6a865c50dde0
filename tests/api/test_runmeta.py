"""Run labels: a run name that does not fit a label value still labels its StepRuns and children."""

from __future__ import annotations

import hashlib
import re

from bobrapet.api import runmeta

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_a_name_that_fits_is_its_own_label() -> None:
    for name in ("r", "hello-abc12", "a.b", "x" * 63):
        assert runmeta.run_label(name) == name


def test_a_long_name_is_shortened_with_a_hash_of_its_sanitized_form() -> None:
    name = "hello-" + "a" * 70
    label = runmeta.run_label(name)
    assert label == "hello-" + "a" * 46 + "-" + hashlib.sha256(name.encode()).hexdigest()[:10]
    assert label == "hello-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-c260f4254a"  # fixed vector
    assert len(label) == 63 and LABEL_VALUE.match(label)
    # the sanitized form (lowercase, separators collapsed) is what is cut and hashed
    assert runmeta.run_label("Hello_World." + "b" * 60) == (
        "hello-world-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-871b1038a4"
    )


def test_long_names_keep_distinct_labels() -> None:
    key = "0bafe22156d2698c143b86040446d366ead863ba600d5c924f3d15c786ef4057"
    names = [f"hello-{key}-{suffix}" for suffix in ("a70f6a4cf5fd85ac", "a70f6a4cf5fd85ad")]
    labels = {runmeta.run_label(n) for n in names}
    assert len(labels) == 2 and all(len(label) <= 63 and LABEL_VALUE.match(label) for label in labels)


def test_selectors_use_the_label_value() -> None:
    name = "r-" + "z" * 80
    assert runmeta.steps_selector(name) == f"bubustack.io/storyrun={runmeta.run_label(name)}"
    assert runmeta.children_selector(name) == f"bubustack.io/parent-storyrun={runmeta.run_label(name)}"


def test_parent_run_comes_from_the_controlling_owner_reference() -> None:
    parent = "p-" + "q" * 80
    child = {
        "metadata": {
            "labels": {runmeta.PARENT_STORYRUN: runmeta.run_label(parent)},
            "ownerReferences": [
                {"kind": "ConfigMap", "name": "other", "controller": False},
                {"kind": "StoryRun", "name": parent, "uid": "u", "controller": True},
            ],
        }
    }
    assert runmeta.parent_run_of(child) == parent
    assert runmeta.parent_run_of({"metadata": {"labels": {runmeta.PARENT_STORYRUN: "short"}}}) == "short"
    assert runmeta.parent_run_of({"metadata": {}}) == ""
    assert runmeta.story_run_of({"spec": {"storyRunRef": {"name": parent}}}) == parent
