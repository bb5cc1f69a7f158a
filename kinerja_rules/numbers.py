"""Exact arithmetic for evaluation: decimals while they suffice, rationals when a division repeats.

Every value stays exact until an explicit rounding. Sums, differences and products of
decimals are exact in `EVAL_CONTEXT` (a result that would need more digits than it holds
is an error, never a silent rounding). A division whose quotient is a finite decimal stays
a Decimal; one that repeats (1/3) becomes a `Fraction`, and the helpers below mix the two.
The checker knows statically which expressions may hold a Fraction (their type is marked
`repeating`), so the compiler routes only those through these helpers.

Evaluation runs in its own context, never the caller's, and `isolated()` gives each plugin
call a fresh copy of Python's default context, so a plugin that changes `getcontext()`
changes nothing for the policy or the next call.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Iterable
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    Inexact,
)
from fractions import Fraction
from typing import Any

PRECISION = 200
"""Significant digits an exact decimal result may have (inputs are bounded far below this)."""

EVAL_CONTEXT = Context(prec=PRECISION, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999,
                       traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow, Inexact])
_DIVIDE = EVAL_CONTEXT.copy()
ROUND_CONTEXT = Context(prec=PRECISION, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999,
                 traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])

PLUGIN_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999,
                         traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])
"""What a plugin function computes in: a fresh copy of Python's default context on every call."""

ROUNDING_MODES = {
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "half_down": ROUND_HALF_DOWN,
    "down": ROUND_DOWN,
    "up": ROUND_UP,
    "floor": ROUND_FLOOR,
    "ceiling": ROUND_CEILING,
}

Number = int | Decimal | Fraction


def _fraction(x: Number) -> Fraction:
    return x if type(x) is Fraction else Fraction(x)


def divide(a: Number, b: Number) -> Number:
    """a / b exactly: a Decimal when the quotient is a finite decimal, else a Fraction."""
    if type(a) is not Fraction and type(b) is not Fraction:
        try:
            return _DIVIDE.divide(a, b)
        except Inexact:
            pass
    return _fraction(a) / _fraction(b)


def add(a: Number, b: Number) -> Number:
    if type(a) is Fraction or type(b) is Fraction:
        return _fraction(a) + _fraction(b)
    return a + b


def subtract(a: Number, b: Number) -> Number:
    if type(a) is Fraction or type(b) is Fraction:
        return _fraction(a) - _fraction(b)
    return a - b


def multiply(a: Number, b: Number) -> Number:
    if type(a) is Fraction or type(b) is Fraction:
        return _fraction(a) * _fraction(b)
    return a * b


def total(values: Iterable[Number]) -> Number:
    """The exact sum of values that may mix decimals and fractions."""
    dec: Decimal = Decimal(0)
    frac: Fraction | None = None
    for v in values:
        if type(v) is Fraction:
            frac = v if frac is None else frac + v
        else:
            dec += v
    return dec if frac is None else frac + Fraction(dec)


def mean(values: list[Any]) -> Number:
    if not values:
        raise ValueError("mean of an empty list")
    return divide(total(values), len(values))


def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def round_to(value: Any, places: int, mode: str) -> Decimal:
    """Round exactly to `places` decimals with an explicit mode (also for a Fraction)."""
    if not -20 <= places <= 20:
        raise ValueError(f"round: places must be between -20 and 20, not {places}")
    rounding = ROUNDING_MODES[mode]
    if type(value) is Fraction:
        return _round_fraction(value, places, rounding)
    return Decimal(value).quantize(_quantum(places), rounding, ROUND_CONTEXT)


def _round_fraction(value: Fraction, places: int, rounding: str) -> Decimal:
    scaled = value * Fraction(10) ** places
    floor_, rest = divmod(scaled.numerator, scaled.denominator)  # floor_ <= scaled < floor_ + 1
    if rest == 0:
        whole = floor_
    else:
        twice = 2 * rest
        half = (twice > scaled.denominator) - (twice < scaled.denominator)  # +1 above a half, 0 a tie, -1 below
        negative = floor_ < 0
        up = floor_ + 1  # towards +infinity
        if rounding == ROUND_FLOOR:
            whole = floor_
        elif rounding == ROUND_CEILING:
            whole = up
        elif rounding == ROUND_DOWN:
            whole = up if negative else floor_
        elif rounding == ROUND_UP:
            whole = floor_ if negative else up
        elif half > 0:
            whole = up
        elif half < 0:
            whole = floor_
        elif rounding == ROUND_HALF_EVEN:
            whole = floor_ if floor_ % 2 == 0 else up
        elif rounding == ROUND_HALF_UP:  # ties away from zero
            whole = floor_ if negative else up
        else:  # ROUND_HALF_DOWN: ties towards zero
            whole = up if negative else floor_
    return Decimal(whole).scaleb(-places, ROUND_CONTEXT)


def floor(value: Any) -> int:
    if type(value) is int:
        return value
    if type(value) is Fraction:
        return math.floor(value)
    return int(value.to_integral_value(ROUND_FLOOR, ROUND_CONTEXT))


def ceil(value: Any) -> int:
    if type(value) is int:
        return value
    if type(value) is Fraction:
        return math.ceil(value)
    return int(value.to_integral_value(ROUND_CEILING, ROUND_CONTEXT))


def approximate(value: Fraction, digits: int = 28) -> Decimal:
    """A Fraction shown as a decimal of `digits` significant digits (for traces, never for outputs)."""
    ctx = Context(prec=digits, rounding=ROUND_HALF_EVEN)
    return ctx.divide(Decimal(value.numerator), Decimal(value.denominator))


def isolated(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a plugin function so it runs in a fresh copy of `PLUGIN_CONTEXT`, whatever it changes there."""

    def call(*args: Any) -> Any:
        with decimal.localcontext(PLUGIN_CONTEXT):
            return fn(*args)

    call.__wrapped__ = fn  # type: ignore[attr-defined]
    return call


def terminating(value: Decimal | int) -> bool:
    """Whether 1/value is a finite decimal (its reduced denominator has no prime but 2 and 5)."""
    if value == 0:
        return False
    rest = Fraction(value).numerator  # 1 / (p/q) = q/p: p must be 2**a * 5**b
    for prime in (2, 5):
        while rest % prime == 0:
            rest //= prime
    return abs(rest) == 1
