"""Go-style duration strings (``"1h30m"``, ``"500ms"``, ``"1.5h"``, ``"-1s"``, ``"0"``).

Invariants: ``parse_duration`` accepts exactly the grammar of Go's
``time.ParseDuration`` (an optional sign, then one or more ``<number><unit>`` pairs,
units ``ns us µs μs ms s m h``; the bare string ``"0"`` is zero) and raises
``ValueError`` with a message that names the offending text and shows valid examples.
Values are ``timedelta`` (microsecond resolution; nanoseconds are rounded).
``format_duration`` writes Go's ``Duration.String`` form (``"1m5s"``, ``"1h0m0s"``,
``"500ms"``, ``"0s"``) so ``parse_duration(format_duration(td)) == td``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

_UNIT_NS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_HINT = 'use a number followed by a unit (ns, us, ms, s, m, h), e.g. "30s", "1m30s", "500ms" or "1.5h"'


def parse_duration(text: str) -> timedelta:
    """Parse a Go duration string; raise ``ValueError`` saying how to fix it."""
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: expected a string; {_HINT}")
    raw = text
    s = text.strip()
    if s == "":
        raise ValueError(f"invalid duration {raw!r}: empty; {_HINT}")
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return timedelta(0)
    if s == "":
        raise ValueError(f"invalid duration {raw!r}: {_HINT}")
    total = Decimal(0)
    pos = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            rest = s[pos:]
            num = re.match(r"\d+\.?\d*|\.\d+", rest)
            if num is None:
                raise ValueError(f"invalid duration {raw!r}: expected a number at {rest!r}; {_HINT}")
            unit = rest[num.end() :]
            if unit == "":
                raise ValueError(f"invalid duration {raw!r}: missing unit after {rest!r}; {_HINT}")
            bad = re.match(r"[^\d.]+", unit)
            shown = bad.group() if bad is not None else unit
            raise ValueError(f"invalid duration {raw!r}: unknown unit {shown!r}; {_HINT}")
        try:
            number = Decimal(m.group(1))
        except InvalidOperation as exc:  # pragma: no cover - the regex only admits decimals
            raise ValueError(f"invalid duration {raw!r}: {_HINT}") from exc
        total += number * _UNIT_NS[m.group(2)]
        pos = m.end()
    if total > Decimal(2**63 - 1):
        raise ValueError(f"invalid duration {raw!r}: out of range (maximum is about 2562047h)")
    micros = int((total / 1000).to_integral_value())
    return sign * timedelta(microseconds=micros)


def _fmt_frac(value: int, scale: int) -> str:
    """``value/scale`` with trailing zeros stripped (Go's fmtFrac)."""
    whole, frac = divmod(value, scale)
    if frac == 0:
        return str(whole)
    digits = len(str(scale)) - 1
    return f"{whole}.{str(frac).rjust(digits, '0').rstrip('0')}"


def format_duration(td: timedelta) -> str:
    """Format like Go's ``time.Duration.String`` (``"1h0m0s"``, ``"1m5s"``, ``"1.5s"``, ``"500ms"``)."""
    ns = (td.days * 86400 + td.seconds) * 1_000_000_000 + td.microseconds * 1000
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        if ns < 1_000:
            return f"{sign}{ns}ns"
        if ns < 1_000_000:
            return f"{sign}{_fmt_frac(ns, 1_000)}µs"
        return f"{sign}{_fmt_frac(ns, 1_000_000)}ms"
    hours, rem = divmod(ns, 3600 * 1_000_000_000)
    minutes, rem = divmod(rem, 60 * 1_000_000_000)
    seconds = _fmt_frac(rem, 1_000_000_000)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def format_rounded(td: timedelta) -> str:
    """A readable elapsed time: milliseconds below 1s, tenths below 1m, else whole seconds
    (``"12ms"``, ``"2.8s"``, ``"1m5s"``)."""
    ms = round(td.total_seconds() * 1000)
    if abs(ms) >= 60_000:
        ms = round(ms / 1000) * 1000
    elif abs(ms) >= 1000:
        ms = round(ms / 100) * 100
    return format_duration(timedelta(milliseconds=ms))


def is_positive_duration(text: object) -> bool:
    """True when ``text`` parses as a duration greater than zero."""
    if not isinstance(text, str):
        return False
    try:
        return parse_duration(text) > timedelta(0)
    except ValueError:
        return False
