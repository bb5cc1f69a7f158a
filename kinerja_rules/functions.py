"""Function specs: what a policy may call, with typed parameters.

Built-in functions are ordinary specs registered by the default plugin through the
same hook as any plugin's; the compiler knows a few of them well enough to inline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec

from kinerja_rules.numbers import ceil, floor, rational, round_to


class FunctionSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A function policies may call.

    `params` are (name, written type) pairs; the written type `number` stands for any
    numeric type, and a `returns` of `number` means "the widest numeric argument type".
    `variadic` lets the last parameter repeat.
    """

    name: str
    params: tuple[tuple[str, str], ...]
    returns: str
    impl: Callable[..., Any]
    description: str
    cite: str = ""
    variadic: bool = False
    plugin: str = "builtins"
    version: str = ""


class IndicatorSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A named value computed from a declared part of the record (`source`, a dotted input path)."""

    name: str
    source: str
    source_type: str
    returns: str
    impl: Callable[[Any], Any]
    description: str
    cite: str = ""
    plugin: str = ""
    version: str = ""


def clamp(value: Any, low: Any, high: Any) -> Any:
    if low > high:
        raise ValueError(f"clamp: low {low} is above high {high}")
    return low if value < low else high if value > high else value


def _months(a: dt.date, b: dt.date) -> int:
    months = (b.year - a.year) * 12 + (b.month - a.month)
    if months > 0 and b.day < a.day:
        months -= 1
    elif months < 0 and b.day > a.day:
        months += 1
    return months


def months_between(a: dt.date, b: dt.date) -> int:
    """Whole months from a to b (negative when b is earlier)."""
    return _months(a, b)


def years_between(a: dt.date, b: dt.date) -> int:
    return int(_months(a, b) / 12)


def days_between(a: dt.date, b: dt.date) -> int:
    return (b - a).days


def add_months(d: dt.date, months: int) -> dt.date:
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(d.day, _month_length(year, month + 1)))


def add_days(d: dt.date, days: int) -> dt.date:
    return d + dt.timedelta(days=days)


def _month_length(year: int, month: int) -> int:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


def end_of_month(d: dt.date) -> dt.date:
    return d.replace(day=_month_length(d.year, d.month))


def start_of_month(d: dt.date) -> dt.date:
    return d.replace(day=1)


def parse_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def period_start(text: str) -> dt.date:
    """The first day of a `YYYY-MM` period."""
    year, month = text.split("-")
    return dt.date(int(year), int(month), 1)


def _spec(name: str, params: str, returns: str, impl: Callable[..., Any], description: str,
          variadic: bool = False) -> FunctionSpec:
    pairs = tuple(tuple(p.strip().split(":")) for p in params.split(",") if p.strip())
    return FunctionSpec(name=name, params=tuple((a.strip(), b.strip()) for a, b in pairs), returns=returns,
                        impl=impl, description=description, variadic=variadic)


def year(day: dt.date) -> int:
    return day.year


def month(day: dt.date) -> int:
    return day.month


def text_of(value: int) -> str:
    """An integer as its decimal digits (`text_of(2025)` is "2025")."""
    return str(value)


def percentile(values: list[Any], share: Any) -> Any:
    """The nearest-rank percentile: the smallest value with at least `share` of the values at or
    below it (the least value at 0 %). Always one of the values, so nothing is rounded."""
    if not values:
        raise ValueError("percentile of an empty list")
    if not 0 <= share <= 1:
        raise ValueError(f"percentile share must be between 0% and 100%, not {share}")
    ordered = sorted(rational(v) for v in values)
    rank = max(1, int(ceil(rational(share) * len(ordered))))
    chosen = ordered[rank - 1]
    return next(v for v in values if rational(v) == chosen)


BUILTINS: tuple[FunctionSpec, ...] = (
    _spec("round", "value: number, places: integer, mode: rounding", "number", round_to,
          "Round to `places` decimals with an explicit mode (half_up, half_even, down, up, floor, ceiling)."),
    _spec("floor", "value: number", "number", floor, "The largest whole number not above the value."),
    _spec("ceil", "value: number", "number", ceil, "The smallest whole number not below the value."),
    _spec("abs", "value: number", "number", abs, "The absolute value."),
    _spec("min", "a: number, b: number", "number", min, "The smaller value (or the smallest of a list).", True),
    _spec("max", "a: number, b: number", "number", max, "The larger value (or the largest of a list).", True),
    _spec("clamp", "value: number, low: number, high: number", "number", clamp,
          "The value, limited to [low, high]."),
    _spec("months_between", "start: date, end: date", "integer", months_between,
          "Whole months from start to end."),
    _spec("years_between", "start: date, end: date", "integer", years_between, "Whole years from start to end."),
    _spec("days_between", "start: date, end: date", "integer", days_between, "Days from start to end."),
    _spec("add_months", "day: date, months: integer", "date", add_months,
          "The date `months` later (day clipped to the month's length)."),
    _spec("add_days", "day: date, days: integer", "date", add_days, "The date `days` later."),
    _spec("start_of_month", "day: date", "date", start_of_month, "The first day of the date's month."),
    _spec("end_of_month", "day: date", "date", end_of_month, "The last day of the date's month."),
    _spec("date", "text: text", "date", parse_date, "A date from `YYYY-MM-DD` text."),
    _spec("period_start", "period: text", "date", period_start, "The first day of a `YYYY-MM` period."),
    _spec("year", "day: date", "integer", year, "The year of a date."),
    _spec("month", "day: date", "integer", month, "The month of a date (1 to 12)."),
    _spec("text_of", "value: integer", "text", text_of, "An integer written as text (`text_of(2025)` is \"2025\")."),
    _spec("percentile", "values: list of decimal, share: percent", "decimal", percentile,
          "The nearest-rank percentile of a list (`percentile([m.capaian_skp for m in members], 80%)`): "
          "the smallest value with at least that share of the values at or below it."),
)

AGGREGATES = frozenset({"sum", "mean", "min", "max", "count", "any", "all", "list"})
