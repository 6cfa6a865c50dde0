"""Kubernetes label and field selectors: parsing and matching.

Label selectors follow ``k8s.io/apimachinery/pkg/labels``: comma-separated
requirements ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``,
``a`` (exists), ``!a`` (does not exist), ``a>1``/``a<1`` (integer compare).
Keys and values are validated like Kubernetes label keys/values.

Field selectors follow ``k8s.io/apimachinery/pkg/fields``: comma-separated
terms ``path=value``, ``path==value``, ``path!=value`` where ``\\`` escapes
``,``, ``=``, ``!`` and ``\\`` itself. A missing field has the value ``""``.

Invariants: parsing never returns a partially valid selector; every syntax
or validation problem raises :class:`~bobrapet.api.errors.BadRequest` whose
message quotes the selector and says what was expected. An empty selector
matches everything.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bobrapet.api.errors import BadRequest

LabelOperator = Literal["=", "!=", "in", "notin", "exists", "!", "<", ">"]
FieldOperator = Literal["=", "!="]

_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SPECIAL = set(",()=!<> \t\n")
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class LabelRequirement:
    """One label requirement: ``key <operator> values``."""

    key: str
    operator: LabelOperator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        op = self.operator
        if op == "=":
            return value == self.values[0]
        if op == "in":
            return present and value in self.values
        if op == "!=":
            return value != self.values[0]
        if op == "notin":
            return not present or value not in self.values
        if op == "exists":
            return present
        if op == "!":
            return not present
        if value is None or not _INTEGER_RE.fullmatch(value):
            return False  # Python's int() would also take "1_0" or " 5"
        number = int(value)
        bound = int(self.values[0])
        return number < bound if op == "<" else number > bound


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of label requirements."""

    requirements: tuple[LabelRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        current = labels or {}
        return all(r.matches(current) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


@dataclass(frozen=True)
class FieldRequirement:
    """One field term: ``path = value`` or ``path != value``."""

    path: str
    operator: FieldOperator
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        current = fields.get(self.path, "")
        return current == self.value if self.operator == "=" else current != self.value


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of field terms."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    @property
    def paths(self) -> set[str]:
        return {r.path for r in self.requirements}


# --------------------------------------------------------------------------- labels


def _label_error(selector: str, reason: str) -> BadRequest:
    return BadRequest(f"invalid label selector {selector!r}: {reason}")


@functools.lru_cache(maxsize=4096)  # every write checks the same few keys (pure function)
def validate_label_key(key: str) -> str | None:
    """Why ``key`` is not a valid label key, or ``None`` when it is."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return f"key {key!r}: prefix part must be non-empty"
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.match(prefix)):
        return f"key {key!r}: prefix part must be a lowercase DNS subdomain (e.g. 'example.com')"
    if not name:
        return f"key {key!r}: name part must be non-empty"
    if len(name) > 63:
        return f"key {key!r}: name part must be no more than 63 characters"
    if not _NAME_RE.match(name):
        return (
            f"key {key!r}: name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


@functools.lru_cache(maxsize=4096)
def validate_label_value(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or ``None`` when it is."""
    if value == "":
        return None
    if len(value) > 63:
        return f"value {value!r}: must be no more than 63 characters"
    if not _NAME_RE.match(value):
        return (
            f"value {value!r}: must be empty or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


def _tokenize(selector: str) -> list[str]:
    tokens: list[str] = []
    i, n = 0, len(selector)
    while i < n:
        ch = selector[i]
        if ch in " \t\n":
            i += 1
        elif ch in ",()":
            tokens.append(ch)
            i += 1
        elif ch in "=!":
            if i + 1 < n and selector[i + 1] == "=":
                tokens.append(ch + "=")
                i += 2
            else:
                tokens.append(ch)
                i += 1
        elif ch in "<>":
            tokens.append(ch)
            i += 1
        else:
            j = i
            while j < n and selector[j] not in _SPECIAL:
                j += 1
            tokens.append(selector[i:j])
            i = j
    return tokens


def _is_identifier(token: str | None) -> bool:
    return token is not None and token not in {",", "(", ")", "=", "==", "!=", "!", "<", ">"}


class _LabelParser:
    def __init__(self, selector: str) -> None:
        self.selector = selector
        self.tokens = _tokenize(selector)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self, reason: str) -> BadRequest:
        return _label_error(self.selector, reason)

    def key(self) -> str:
        token = self.take()
        if not _is_identifier(token):
            found = "end of selector" if token is None else repr(token)
            raise self.fail(f"found {found}, expected a label key")
        assert token is not None
        problem = validate_label_key(token)
        if problem:
            raise self.fail(problem)
        return token

    def value(self) -> str:
        token = self.peek()
        if token is None or token in {",", ")"}:
            return ""
        if not _is_identifier(token):
            raise self.fail(f"found {token!r}, expected a label value")
        self.pos += 1
        problem = validate_label_value(token)
        if problem:
            raise self.fail(problem)
        return token

    def value_set(self, op: str) -> tuple[str, ...]:
        if self.take() != "(":
            raise self.fail(f"'{op}' must be followed by a parenthesised list such as (a,b)")
        values: list[str] = []
        while True:
            values.append(self.value())
            token = self.take()
            if token == ")":
                break
            if token != ",":
                found = "end of selector" if token is None else repr(token)
                raise self.fail(f"found {found}, expected ',' or ')' in the value list of '{op}'")
        if values == [""]:
            raise self.fail(f"for '{op}', the set of values must not be empty")
        return tuple(values)

    def requirement(self) -> LabelRequirement:
        if self.peek() == "!":
            self.pos += 1
            return LabelRequirement(self.key(), "!")
        key = self.key()
        token = self.peek()
        if token is None or token == ",":
            return LabelRequirement(key, "exists")
        self.pos += 1
        if token in {"=", "=="}:
            return LabelRequirement(key, "=", (self.value(),))
        if token == "!=":
            return LabelRequirement(key, "!=", (self.value(),))
        if token in {"in", "notin"}:
            op: LabelOperator = "in" if token == "in" else "notin"
            return LabelRequirement(key, op, self.value_set(token))
        if token in {"<", ">"}:
            raw = self.value()
            if not re.fullmatch(r"-?[0-9]+", raw):
                raise self.fail(f"for '{token}', the value must be an integer, got {raw!r}")
            return LabelRequirement(key, "<" if token == "<" else ">", (raw,))
        raise self.fail(
            f"found {token!r} after key {key!r}, expected one of '=', '==', '!=', 'in', 'notin', "
            "'<', '>' or ','"
        )

    def parse(self) -> LabelSelector:
        requirements: list[LabelRequirement] = []
        if not self.tokens:
            return LabelSelector()
        while True:
            requirements.append(self.requirement())
            token = self.take()
            if token is None:
                break
            if token != ",":
                raise self.fail(f"found {token!r}, expected ',' between requirements")
            if self.peek() is None:
                raise self.fail("trailing ','; expected another requirement")
        return LabelSelector(tuple(requirements))


def parse_label_selector(selector: str | None) -> LabelSelector:
    """Parse a Kubernetes label selector string (``None``/empty selects everything)."""
    if selector is None or not selector.strip():
        return LabelSelector()
    return _LabelParser(selector).parse()


# --------------------------------------------------------------------------- fields


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(selector: str, text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in "\\,=!":
                raise BadRequest(
                    f"invalid field selector {selector!r}: invalid escape sequence in {text!r}; "
                    "only \\\\, \\, \\= and \\! are allowed"
                )
            out.append(text[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _split_term(term: str) -> tuple[str, FieldOperator, str] | None:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for token, op in (("!=", "!="), ("==", "="), ("=", "=")):
            if term.startswith(token, i):
                operator: FieldOperator = "!=" if op == "!=" else "="
                return term[:i], operator, term[i + len(token) :]
        i += 1
    return None


def parse_field_selector(selector: str | None, allowed: Iterable[str] | None = None) -> FieldSelector:
    """Parse a Kubernetes field selector; ``allowed`` restricts the field paths."""
    if selector is None or not selector.strip():
        return FieldSelector()
    allowed_set = set(allowed) if allowed is not None else None
    requirements: list[FieldRequirement] = []
    for raw in _split_unescaped(selector, ","):
        term = raw.strip()
        if not term:
            raise BadRequest(f"invalid field selector {selector!r}: empty term; remove the extra ','")
        split = _split_term(term)
        if split is None:
            raise BadRequest(
                f"invalid field selector {selector!r}: cannot understand {term!r}; "
                "expected 'field=value', 'field==value' or 'field!=value'"
            )
        path, op, value = split
        path = _unescape(selector, path.strip())
        if not path:
            raise BadRequest(f"invalid field selector {selector!r}: missing field name in {term!r}")
        if allowed_set is not None and path not in allowed_set:
            raise BadRequest(
                f"field label not supported: {path!r} (supported: {', '.join(sorted(allowed_set))})"
            )
        requirements.append(FieldRequirement(path, op, _unescape(selector, value)))
    return FieldSelector(tuple(requirements))


def field_string(value: Any) -> str | None:
    """The selector form of a field value (``None`` for missing or non-scalar values)."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def lookup_path(obj: Mapping[str, Any], path: str) -> Any:
    """Value at dotted ``path`` (``spec.storyRef.name``) or ``None``."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current
