"""Exact arithmetic for evaluation: decimals where they are exact, rationals where a value may repeat.

Every value stays exact until an explicit rounding. Sums, differences and products of
decimals are exact in `EVAL_CONTEXT` (a result that would need more digits than it holds
is an error, never a silent rounding). A value that may be a repeating decimal (a quotient
whose divisor is not a power of 2 and 5, a mean, and what is computed from them) is a
rational, `Rational` (gmpy2's `mpq`, in C), from the moment it is made until `round`,
`floor` or `ceil` turns it back into a decimal or an integer. The checker marks such
expressions (their type is `repeating`), so the compiler knows the representation of every
value and converts a decimal entering a rational computation with `rational()`; nothing
at run time asks which kind a value is, and decimals never meet rationals in one operation.

Evaluation runs in its own decimal context, never the caller's, and each plugin call gets
a fresh copy of Python's default context, so a plugin that changes `getcontext()` changes
nothing for the policy or the next call.
"""

from __future__ import annotations

import decimal
import math
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
from typing import Any

from gmpy2 import mpq as Rational
from gmpy2 import mpz

__all__ = ["EVAL_CONTEXT", "MAX_EXPONENT", "PLUGIN_CONTEXT", "PRECISION", "RANGE_MESSAGE", "ROUNDING_MODES", "Rational",
           "approximate", "ceil", "floor", "in_range", "mean", "rational", "rational_decimal", "round_to",
           "terminating"]

PRECISION = 200
"""Significant digits an exact decimal result may have (inputs are bounded far below this)."""

_TRAPS = [decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
EVAL_CONTEXT = Context(prec=PRECISION, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999,
                       traps=[*_TRAPS, Inexact])
ROUND_CONTEXT = Context(prec=PRECISION, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999, traps=_TRAPS)
PLUGIN_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999, traps=_TRAPS)
"""What a plugin function computes in: a fresh copy of Python's default context on every call."""

MAX_EXPONENT = 24
"""A decimal from a record or a policy lies between 10**-24 and 10**25 in magnitude (or is 0),
so converting it to a rational, or adding it to another, stays small and fast."""


def in_range(value: Decimal) -> bool:
    """Whether a finite decimal is 0 or has its leading digit within 10**±MAX_EXPONENT."""
    return value.is_finite() and (not value or -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT)


RANGE_MESSAGE = f"must be 0 or between 1e-{MAX_EXPONENT} and 1e+{MAX_EXPONENT + 1} in magnitude"

ROUNDING_MODES = {
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "half_down": ROUND_HALF_DOWN,
    "down": ROUND_DOWN,
    "up": ROUND_UP,
    "floor": ROUND_FLOOR,
    "ceiling": ROUND_CEILING,
}


def rational_decimal(value: Decimal) -> Any:
    """A Decimal as an exact rational."""
    return Rational(*value.as_integer_ratio())


def rational(value: Any) -> Any:
    """An int, Decimal or rational as an exact rational."""
    if type(value) is Rational:
        return value
    if type(value) is int:
        return Rational(value)
    return Rational(*value.as_integer_ratio())


def mean(values: list[Any]) -> Any:
    """The exact mean of decimals or of rationals, as a rational."""
    if not values:
        raise ValueError("mean of an empty list")
    return rational(sum(values)) / len(values)


_POWERS = [mpz(10) ** p for p in range(21)]


def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def round_to(value: Any, places: int, mode: str) -> Decimal:
    """Round exactly to `places` decimals with an explicit mode (a rational too)."""
    if not -20 <= places <= 20:
        raise ValueError(f"round: places must be between -20 and 20, not {places}")
    rounding = ROUNDING_MODES[mode]
    if type(value) is Rational:
        return round_rational(value, places, rounding)
    return Decimal(value).quantize(_quantum(places), rounding, ROUND_CONTEXT)


def round_rational(value: Any, places: int, rounding: str) -> Decimal:
    """A rational rounded to `places` decimals with a `decimal` rounding constant."""
    num, den = value.numerator, value.denominator
    if places >= 0:
        num = num * _POWERS[places]
    else:
        den = den * _POWERS[-places]
    low, rest = divmod(num, den)  # low <= value * 10**places < low + 1
    if rest == 0:
        whole = low
    else:
        high = low + 1
        negative = low < 0
        twice = 2 * rest
        if rounding == ROUND_FLOOR:
            whole = low
        elif rounding == ROUND_CEILING:
            whole = high
        elif rounding == ROUND_DOWN:
            whole = high if negative else low
        elif rounding == ROUND_UP:
            whole = low if negative else high
        elif twice > den:
            whole = high
        elif twice < den:
            whole = low
        elif rounding == ROUND_HALF_EVEN:
            whole = low if low % 2 == 0 else high
        elif rounding == ROUND_HALF_UP:  # a tie goes away from zero
            whole = low if negative else high
        else:  # ROUND_HALF_DOWN: a tie goes towards zero
            whole = high if negative else low
    return Decimal(int(whole)).scaleb(-places, ROUND_CONTEXT)


def floor(value: Any) -> int:
    if type(value) is int:
        return value
    if type(value) is Rational:
        return int(math.floor(value))
    return int(value.to_integral_value(ROUND_FLOOR, ROUND_CONTEXT))


def ceil(value: Any) -> int:
    if type(value) is int:
        return value
    if type(value) is Rational:
        return int(math.ceil(value))
    return int(value.to_integral_value(ROUND_CEILING, ROUND_CONTEXT))


def approximate(value: Any, digits: int = 28) -> Decimal:
    """A rational shown as a decimal of `digits` significant digits (for traces, never for outputs)."""
    return Context(prec=digits, rounding=ROUND_HALF_EVEN).divide(Decimal(int(value.numerator)),
                                                                 Decimal(int(value.denominator)))


def terminating(value: Decimal | int) -> bool:
    """Whether 1/value is a finite decimal (its reduced denominator has no prime but 2 and 5)."""
    if value == 0:
        return False
    rest = abs(value.as_integer_ratio()[0])  # 1 / (p/q) = q/p: p must be 2**a * 5**b
    for prime in (2, 5):
        while rest % prime == 0:
            rest //= prime
    return rest == 1
