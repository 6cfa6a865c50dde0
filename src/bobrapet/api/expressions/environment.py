"""The expression language: a Jinja2 immutable sandbox with Bobrapet's filters and functions.

Invariants:

* :func:`make_environment` always returns a fresh
  :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` (no loader, so no template
  inclusion; no filesystem, network, process or environment access).
* The names in :data:`DENIED_FUNCTIONS` are never registered; analysis reports them.
* ``now()`` and the random helpers are registered only when ``allow_nondeterministic``
  is true (scopes decide, see :mod:`bobrapet.api.expressions.scopes`); the clock and the
  random source are injected so evaluation is testable. Every random helper (``randInt``,
  ``uuidv4``, the ``random`` filter) draws from that one source, so a seeded source gives
  reproducible values.
* Every function here is pure Python over JSON-like values.
* ``*``, ``**`` and ``%`` refuse results beyond :data:`MAX_OPERATION_SIZE` items /
  :data:`MAX_POWER_BITS` bits (``SecurityError``), so no expression can hang the CPU or
  exhaust memory in one operation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random as _random
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from jinja2 import StrictUndefined, pass_context
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: Functions that are rejected in every template field (reference §3.3).
DENIED_FUNCTIONS: frozenset[str] = frozenset({"env", "expandenv", "getHostByName"})

#: Functions whose result depends on the clock.
CLOCK_FUNCTIONS: frozenset[str] = frozenset({"now"})

#: Functions/filters whose result is random.
RANDOM_FUNCTIONS: frozenset[str] = frozenset(
    {"random", "randInt", "randAlpha", "randAlphaNum", "randNumeric", "uuidv4", "shuffle"}
)

_OFFLOAD_KEY = "$bubuStorageRef"


def to_json(value: Any, indent: int | None = None) -> str:
    """Compact JSON (keys kept in insertion order); ``indent`` pretty-prints."""
    if indent is None:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return json.dumps(value, indent=indent, ensure_ascii=False, default=str)


def from_json(text: Any) -> Any:
    """Parse a JSON string; non-strings are returned unchanged."""
    if isinstance(text, str | bytes):
        return json.loads(text)
    return text


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return to_json(value).encode()


def sha256sum(value: Any) -> str:
    return hashlib.sha256(_as_bytes(value)).hexdigest()


def sha1sum(value: Any) -> str:
    return hashlib.sha1(_as_bytes(value), usedforsecurity=False).hexdigest()


def hash_of(value: Any) -> str:
    """sha256 hex of a string/bytes; anything else is an error (reference §3.3)."""
    if isinstance(value, str | bytes):
        return hashlib.sha256(_as_bytes(value)).hexdigest()
    raise TypeError(f"hash_of expects a string, got {type_of(value)}")


def b64enc(value: Any) -> str:
    return base64.b64encode(_as_bytes(value)).decode()


def b64dec(value: Any) -> str:
    return base64.b64decode(_as_bytes(value)).decode()


def is_offloaded(value: Any) -> bool:
    return isinstance(value, Mapping) and _OFFLOAD_KEY in value


def type_of(value: Any) -> str:
    """``string|number|bool|object|array|null`` or ``offloaded(<ref><path>)``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if is_offloaded(value):
        assert isinstance(value, Mapping)
        return f"offloaded({value.get(_OFFLOAD_KEY)}{value.get('$bubuStoragePath', '')})"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, Sequence):
        return "array"
    return type(value).__name__


def exists(value: Any) -> bool:
    """True when the value is not null/undefined."""
    from jinja2 import Undefined

    return value is not None and not isinstance(value, Undefined)


def length(value: Any) -> int:
    """``len`` with ``null`` → 0; offloaded data cannot be measured inline."""
    if value is None:
        return 0
    if is_offloaded(value):
        raise TypeError("len cannot be applied to offloaded data; reference a field or use sample()")
    return len(value)


def sample(value: Any) -> Any:
    if is_offloaded(value):
        raise TypeError("value is offloaded to storage and must be materialized first")
    return value


def split(value: str, sep: str | None = None, maxsplit: int = -1) -> list[str]:
    return str(value).split(sep, maxsplit)


def has_prefix(value: Any, prefix: str) -> bool:
    return str(value).startswith(prefix)


def has_suffix(value: Any, suffix: str) -> bool:
    return str(value).endswith(suffix)


def contains(value: Any, item: Any) -> bool:
    return item in value


def coalesce(*values: Any) -> Any:
    for v in values:
        if v not in (None, "", [], {}) and exists(v):
            return v
    return None


def ternary(cond: Any, if_true: Any, if_false: Any) -> Any:
    return if_true if cond else if_false


def keys(value: Mapping[str, Any]) -> list[str]:
    return list(value.keys())


def values(value: Mapping[str, Any]) -> list[Any]:
    return list(value.values())


def to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, Mapping | list):
        return to_json(value)
    return str(value)


def _filters() -> dict[str, Callable[..., Any]]:
    return {
        "toJson": to_json,
        "toPrettyJson": lambda v: to_json(v, indent=2),
        "fromJson": from_json,
        "sha256sum": sha256sum,
        "sha1sum": sha1sum,
        "hash_of": hash_of,
        "b64enc": b64enc,
        "b64dec": b64dec,
        "exists": exists,
        "type_of": type_of,
        "len": length,
        "sample": sample,
        "split": split,
        "hasPrefix": has_prefix,
        "hasSuffix": has_suffix,
        "contains": contains,
        "keys": keys,
        "values": values,
        "toString": to_string,
        "trim": lambda v, chars=None: str(v).strip(chars),
        "lower": lambda v: str(v).lower(),
        "upper": lambda v: str(v).upper(),
        "ternary": lambda cond, a, b: ternary(cond, a, b),
    }


def _globals() -> dict[str, Callable[..., Any]]:
    return {
        "len": length,
        "exists": exists,
        "type_of": type_of,
        "hash_of": hash_of,
        "sample": sample,
        "toJson": to_json,
        "fromJson": from_json,
        "sha256sum": sha256sum,
        "b64enc": b64enc,
        "b64dec": b64dec,
        "coalesce": coalesce,
        "ternary": ternary,
        "keys": keys,
        "values": values,
        "toString": to_string,
    }


#: Largest string/list a single ``*``/``%`` operation may build, and the largest ``**`` result
#: (in bits): big enough for any real payload, small enough that one expression cannot
#: exhaust memory or hang the CPU.
MAX_OPERATION_SIZE = 1 << 20
MAX_POWER_BITS = 1 << 16
_FORMAT_WIDTH = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d+))?")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with size limits on ``*``, ``**`` and ``%`` (also at constant folding)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "%" and isinstance(left, str):
            for width, precision in _FORMAT_WIDTH.findall(left):
                if int(width or 0) > MAX_OPERATION_SIZE or int(precision or 0) > MAX_OPERATION_SIZE:
                    raise SecurityError(f"format width exceeds {MAX_OPERATION_SIZE}")
        return super().call_binop(context, operator, left, right)


def _check_power(base: Any, exponent: Any) -> None:
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and exponent * abs(base).bit_length() > MAX_POWER_BITS
    ):
        raise SecurityError(f"{base} ** {exponent} is too large (limit {MAX_POWER_BITS} bits)")


def _check_repeat(seq: Any, count: Any) -> None:
    if (
        isinstance(seq, str | list | tuple)
        and isinstance(count, int)
        and not isinstance(count, bool)
        and len(seq) * count > MAX_OPERATION_SIZE
    ):
        raise SecurityError(f"repeating a value {count} times exceeds {MAX_OPERATION_SIZE} items")


def make_environment(
    *,
    allow_nondeterministic: bool = True,
    clock: Callable[[], datetime] | None = None,
    rng: _random.Random | Callable[[], _random.Random] | None = None,
) -> ImmutableSandboxedEnvironment:
    """A fresh sandboxed environment with Bobrapet's filters and functions.

    ``clock`` (default: UTC wall clock) backs ``now()``; ``rng`` backs the random helpers: a
    source, or a function returning the source to use at call time (e.g. the current
    evaluation's seeded one). Undefined variables are errors (``StrictUndefined``), as in the
    reference.
    """
    env = _Sandbox(undefined=StrictUndefined, autoescape=False)
    env.globals.pop("lipsum", None)
    env.filters.update(_filters())
    env.globals.update(_globals())
    if allow_nondeterministic:
        fixed = rng if isinstance(rng, _random.Random) else _random.Random()
        source: Callable[[], _random.Random] = rng if callable(rng) else (lambda: fixed)
        now_fn = clock or (lambda: datetime.now(UTC))
        env.globals["now"] = now_fn
        env.globals["randInt"] = lambda lo, hi: source().randrange(int(lo), int(hi))
        env.globals["uuidv4"] = lambda: str(uuid.UUID(int=source().getrandbits(128), version=4))
        env.filters["random"] = _random_filter(env, source)
    else:
        env.filters.pop("random", None)
        env.filters.pop("shuffle", None)
    for name in DENIED_FUNCTIONS:
        env.globals.pop(name, None)
        env.filters.pop(name, None)
    return env


def _random_filter(env: ImmutableSandboxedEnvironment, source: Callable[[], _random.Random]) -> Any:
    """Jinja's ``random`` filter (one item of a sequence), drawing from ``source``.

    ``pass_context`` (unused) keeps Jinja's optimizer from folding ``[...] | random`` into a
    constant at compile time, as it does for Jinja's own ``random`` filter.
    """

    @pass_context
    def random_item(context: Any, value: Any) -> Any:
        items = value if isinstance(value, Sequence) else list(value)
        if not items:
            return env.undefined("No random item, sequence was empty.")
        return items[source().randrange(len(items))]

    return random_item


#: Names of every filter and global a user may call, in the most permissive scope.
def known_filters() -> frozenset[str]:
    return frozenset(_KNOWN_ENV.filters)


def known_functions() -> frozenset[str]:
    return frozenset(k for k, v in _KNOWN_ENV.globals.items() if callable(v))


def known_tests() -> frozenset[str]:
    return frozenset(_KNOWN_ENV.tests)


_KNOWN_ENV = make_environment()
