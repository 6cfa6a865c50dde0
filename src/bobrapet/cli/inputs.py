"""Inputs given on the command line: ``-i key=value`` and ``--inputs-file FILE`` (``run``, ``trigger``).

Invariants: inputs are the ``--inputs-file`` object with each ``-i key=value`` set over it
(later wins); a value is JSON when it parses as JSON, else the literal string — except that
an ``-i`` value that parses as a JSON number, boolean or null, for a key the Story's
``inputsSchema`` declares ``type: string``, stays the text as typed (``-i version=1.10`` is
``"1.10"``, not ``1.1``). Every problem is an :class:`InputsError` worded for the user,
raised before anything is written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

#: The ``-i/--input KEY=VALUE`` option of the commands that start runs (``run``, ``trigger``).
InputOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        metavar="KEY=VALUE",
        help="An input (the value is JSON, else a string); repeatable.",
    ),
]


class InputsError(ValueError):
    """A ``-i`` or ``--inputs-file`` problem, worded for the user."""


def _reject_constant(name: str) -> Any:
    raise ValueError(name)  # NaN/Infinity are not JSON values: keep the text as a string


def parse_value(text: str) -> Any:
    """``3`` → 3, ``true`` → True, ``{"a":1}`` → dict, ``"x"`` → "x", anything else → the text."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text


def parse_assignment(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InputsError(f'-i "{text}": expected key=value, e.g. -i name=world or -i count=3')
    return key.strip(), parse_value(value)


def _read_text(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise InputsError(f"--inputs-file {path}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise InputsError(f"--inputs-file {path}: not UTF-8 text") from None


def _json_lines(text: str) -> list[Any] | None:
    """The values of ``text`` read as JSON Lines (one JSON value per non-blank line), or None."""
    values: list[Any] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            values.append(json.loads(line, parse_constant=_reject_constant))
        except ValueError:
            return None
    return values if len(values) > 1 else None


def load_input_sets(path: str) -> list[dict[str, Any]]:
    """The input objects of ``path`` (``-`` reads stdin): one per run.

    A YAML or JSON object is one run; a YAML or JSON list of objects, or JSON Lines (one
    object per line), is one run per entry, in order.
    """
    text = _read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        lines = _json_lines(text)
        if lines is None:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise InputsError(
                f"--inputs-file {path}: not valid YAML or JSON{where} (nor JSON Lines: one object per line)"
            ) from None
        data = lines
    if data is None:
        return [{}]
    if not isinstance(data, list):
        data, several = [data], False
    else:
        several = True
        if not data:
            raise InputsError(f"--inputs-file {path}: the list is empty; give at least one object of inputs")
    entries: list[dict[str, Any]] = []
    for index, entry in enumerate(data, start=1):
        if not isinstance(entry, dict):
            where = f"entry {index}: " if several else ""
            raise InputsError(
                f"--inputs-file {path}: {where}expected a YAML or JSON object (key: value pairs)"
                f"{', or a list / JSON Lines of such objects (one run each)' if not several else ''}, "
                f"got {type(entry).__name__}"
            )
        # YAML dates and timestamps become strings: inputs are JSON.
        entries.append(json.loads(json.dumps(entry, default=str)))
    return entries


def load_inputs_file(path: str) -> dict[str, Any]:
    """The one YAML or JSON object in ``path`` (a list of several is an error here)."""
    entries = load_input_sets(path)
    if len(entries) > 1:
        raise InputsError(f"--inputs-file {path}: holds {len(entries)} entries where one object is expected")
    return entries[0]


def build_input_sets(assignments: Sequence[str], inputs_file: str | None) -> list[dict[str, Any]]:
    """One inputs object per run: each ``--inputs-file`` entry, each ``-i key=value`` over it."""
    sets = load_input_sets(inputs_file) if inputs_file else [{}]
    pairs = [parse_assignment(text) for text in assignments]
    return [{**entry, **dict(pairs)} for entry in sets]


def build_inputs(assignments: Sequence[str], inputs_file: str | None) -> dict[str, Any]:
    """``--inputs-file`` as the base, each ``-i key=value`` over it (later wins)."""
    inputs = load_inputs_file(inputs_file) if inputs_file else {}
    for text in assignments:
        key, value = parse_assignment(text)
        inputs[key] = value
    return inputs


def declared_string(schema: Any, key: str) -> bool:
    """Whether ``schema`` (an inputsSchema) declares property ``key`` as ``type: string``."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    prop = properties.get(key) if isinstance(properties, dict) else None
    return isinstance(prop, dict) and prop.get("type") == "string"


def keep_declared_strings(inputs: dict[str, Any], assignments: Sequence[str], schema: Any) -> dict[str, Any]:
    """``inputs`` with each scalar ``-i`` value of a string-typed key set back to its text as typed.

    Lists and objects stay as parsed: they were meant as JSON (and the Story rejects them).
    """
    raw: dict[str, str] = {}
    for text in assignments:
        key, _, value = text.partition("=")
        raw[key.strip()] = value
    kept = dict(inputs)
    for key, value in raw.items():
        scalar = kept.get(key) is None or isinstance(kept.get(key), int | float | bool)
        if key in kept and scalar and declared_string(schema, key):
            kept[key] = value
    return kept
