"""The two evaluation environments (deterministic / with clock and randomness) and their lookups.

Both are built once from :func:`bobrapet.api.expressions.make_environment` (so evaluation
accepts exactly the functions admission knows) and then adjusted for evaluation:

* Lookups prefer keys over attributes on mappings: ``output.items`` is the ``items`` key,
  not ``dict.items`` (a method is used only when no such key exists).
* ``steps.<name>`` for a name missing from the ``steps`` mapping of the current evaluation
  raises :class:`Blocked`; so does ``steps.<name>.output``/``outputs`` when it is ``None``
  or absent. The current ``steps`` mapping is recognised by identity (a context variable
  set by the evaluator), so it is never copied or wrapped.
* A lookup that misses on an offloaded value (``{"$bubuStorageRef": ...}``) raises
  :class:`Offloaded`.
* Other missing keys produce :class:`StrictChainUndefined`: an error as soon as the value is
  used, but ``default``, ``is defined``, ``exists`` and deeper lookups
  (``a.b.c | default(1)``) work.
* ``now()`` reads the clock from a context variable set per evaluation, so one environment
  serves every caller; random helpers exist only in the non-deterministic environment.
* Random helpers (``uuidv4()``, ``randInt``, the ``random`` filter) draw from the current
  evaluation's :class:`SeededRandom` (a context variable): evaluations with the same seed
  give the same values in the same order. Without a seed they draw from an unseeded source.
* Every ``{% for %}`` iterable goes through :func:`loop_guard`, which charges one unit per
  iteration to a per-evaluation budget (:data:`MAX_LOOP_ITERATIONS`), so nested loops
  cannot hang evaluation. Recursive loops are refused at compile time.
* Rendered values use JSON spelling (``true``, ``{"a":1}``; ``None`` renders as ``""``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import date, datetime
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from bobrapet.api.expressions.environment import (
    CLOCK_FUNCTIONS,
    RANDOM_FUNCTIONS,
    make_environment,
    to_string,
    type_of,
)
from bobrapet.templating.errors import Blocked, Offloaded, TemplateError

#: Total ``{% for %}`` iterations one evaluation may run.
MAX_LOOP_ITERATIONS = 1_000_000
#: Name of the filter wrapped around every loop iterable.
LOOP_GUARD = "bubu_loop_guard"

OUTPUT_KEYS = frozenset({"output", "outputs"})
STORAGE_REF_KEY = "$bubuStorageRef"
STORAGE_PATH_KEY = "$bubuStoragePath"
_MAPPING_METHODS = frozenset({"items", "keys", "values", "get"})

#: The ``steps`` mapping of the evaluation in progress (recognised by identity).
CURRENT_STEPS: ContextVar[object] = ContextVar("bobrapet_template_steps", default=None)
#: The clock of the evaluation in progress (``None``: no clock).
CURRENT_NOW: ContextVar[Callable[[], datetime] | None] = ContextVar("bobrapet_template_now", default=None)
#: The random source of the evaluation in progress (``None``: unseeded).
CURRENT_RANDOM: ContextVar[SeededRandom | None] = ContextVar("bobrapet_template_random", default=None)
#: Remaining loop iterations of the evaluation in progress (a one-item list, mutated).
LOOP_BUDGET: ContextVar[list[int] | None] = ContextVar("bobrapet_template_loops", default=None)


_UNSEEDED = random.Random()


class SeededRandom:
    """The random source of one evaluation: ``random.Random(seed)``, made on first use.

    Invariant: two instances with the same ``seed`` yield the same sequence of values; the
    generator is only built when a random helper is called (seeding costs more than a render).
    """

    __slots__ = ("_rng", "seed")

    def __init__(self, seed: str) -> None:
        self.seed = seed
        self._rng: random.Random | None = None

    def __call__(self) -> random.Random:
        if self._rng is None:
            self._rng = random.Random(self.seed)  # a str seed is hashed with SHA-512: stable
        return self._rng


def _random_source() -> random.Random:
    current = CURRENT_RANDOM.get()
    return _UNSEEDED if current is None else current()


def unavailable_function_message(name: str) -> str:
    return (
        f"function '{name}' is not available here: evaluation is deterministic "
        "(or has no clock), so now() and random helpers cannot be used"
    )


class StrictChainUndefined(StrictUndefined):
    """A missing value: chained lookups stay undefined; any other use is an error."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self

    def __getitem__(self, _key: Any) -> Any:
        return self

    @property
    def _undefined_message(self) -> str:
        hint: str | None = self._undefined_hint
        if hint:
            return hint
        name = self._undefined_name
        obj = self._undefined_obj
        if obj is missing:
            if name in CLOCK_FUNCTIONS or name in RANDOM_FUNCTIONS:
                return unavailable_function_message(str(name))
            return f"'{name}' is undefined"
        if isinstance(obj, Mapping):
            return f"key {name!r} not found{available_keys(obj)}"
        if isinstance(obj, list | tuple) and isinstance(name, int):
            return f"index {name} is out of range (length {len(obj)})"
        return f"{type_of(obj)} value has no key or attribute {name!r}"


def available_keys(obj: Mapping[Any, Any], limit: int = 10) -> str:
    """`` (available: a, b, …)`` or `` (the object is empty)``."""
    if not obj:
        return " (the object is empty)"
    names = [str(k) for _, k in zip(range(limit), obj, strict=False)]
    more = ", …" if len(obj) > limit else ""
    return f" (available: {', '.join(names)}{more})"


class StepEntry(dict[str, Any]):
    """A shallow copy of one ``steps.<name>`` entry that knows its step (for :class:`Blocked`)."""

    __slots__ = ("step",)

    def __init__(self, step: str, entry: Mapping[str, Any]) -> None:
        super().__init__(entry)
        self.step = step


def loop_guard(iterable: Iterable[Any]) -> Iterator[Any]:
    """Yield from ``iterable``, charging the evaluation's loop budget."""
    budget = LOOP_BUDGET.get()
    if budget is None:
        yield from iterable
        return
    for item in iterable:
        budget[0] -= 1
        if budget[0] < 0:
            raise TemplateError(f"loops ran more than {MAX_LOOP_ITERATIONS} iterations in one evaluation")
        yield item


def finalize(value: Any) -> Any:
    """How a value is spelled in rendered text (JSON spelling; dates in ISO 8601)."""
    if type(value) is str:
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return to_string(value)


def _clock() -> datetime:
    now = CURRENT_NOW.get()
    if now is None:
        raise TemplateError(unavailable_function_message("now"))
    return now()


def _lookup(obj: Mapping[Any, Any], key: Any, fallback: Callable[[Any, Any], Any], steps: object) -> Any:
    try:
        value = obj[key]
    except (KeyError, TypeError):
        if obj is steps:
            if key in _MAPPING_METHODS:
                return fallback(obj, key)
            raise Blocked(str(key)) from None
        if type(obj) is StepEntry and key in OUTPUT_KEYS:
            raise Blocked(obj.step) from None
        if STORAGE_REF_KEY in obj:
            raise Offloaded(str(obj[STORAGE_REF_KEY])) from None
        return fallback(obj, key)
    if obj is steps:
        return StepEntry(str(key), value) if isinstance(value, Mapping) else value
    if value is None and type(obj) is StepEntry and key in OUTPUT_KEYS:
        raise Blocked(obj.step)
    return value


def _install_lookups(env: ImmutableSandboxedEnvironment) -> None:
    base_getattr = env.getattr
    base_getitem = env.getitem

    def getattr_(obj: Any, attribute: str) -> Any:
        if type(obj) is dict or isinstance(obj, Mapping):
            return _lookup(obj, attribute, base_getattr, CURRENT_STEPS.get())
        return base_getattr(obj, attribute)

    def getitem(obj: Any, argument: Any) -> Any:
        if type(obj) is dict or isinstance(obj, Mapping):
            return _lookup(obj, argument, base_getitem, CURRENT_STEPS.get())
        return base_getitem(obj, argument)

    # Instance attributes shadow the class methods the compiled templates call.
    env.getattr = getattr_  # type: ignore[method-assign]
    env.getitem = getitem  # type: ignore[method-assign]


def _build(nondeterministic: bool) -> ImmutableSandboxedEnvironment:
    env = make_environment(allow_nondeterministic=nondeterministic, clock=_clock, rng=_random_source)
    env.undefined = StrictChainUndefined
    env.finalize = finalize
    env.filters[LOOP_GUARD] = loop_guard
    _install_lookups(env)
    return env


_ENVIRONMENTS: dict[bool, ImmutableSandboxedEnvironment] = {}


def environment(nondeterministic: bool) -> ImmutableSandboxedEnvironment:
    """The shared environment: with ``now()``/random helpers, or deterministic."""
    env = _ENVIRONMENTS.get(nondeterministic)
    if env is None:
        env = _ENVIRONMENTS.setdefault(nondeterministic, _build(nondeterministic))
    return env
