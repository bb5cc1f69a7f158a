"""The plugin boundary: what a plugin returns is checked against what it declared.

A `returns="integer"` function that returns `"12.5"` would otherwise reach an output as
text, and a `decimal` one returning a float would leak binary floating point into pay. A
value that does not conform is that record's error, naming the plugin, its version and
the function or indicator; it never reaches the outputs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import signal
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from kinerja_rules.numbers import PLUGIN_CONTEXT, in_range
from kinerja_rules.schema import LIMIT
from kinerja_rules.types import Kind, Type

_NUMBERS = (Kind.DECIMAL, Kind.PERCENT, Kind.MONEY, Kind.NUMBER)


class PluginReturnError(Exception):
    """A plugin returned a value its declaration does not allow."""


def conforms(value: Any, kind: Type) -> str:  # noqa: C901
    """Why `value` is not a `kind`, or "" when it is one."""
    if value is None:
        return "" if kind.optional or kind.kind in (Kind.NULL, Kind.ANY) else "null"
    k = kind.kind
    if k == Kind.ANY:
        return ""
    if k == Kind.INTEGER:
        return "" if type(value) is int and -LIMIT < value < LIMIT else _shown(value)
    if k in _NUMBERS:
        if type(value) is float:
            return f"a binary float ({value!r})"
        if type(value) is int:
            return "" if -LIMIT < value < LIMIT else _shown(value)
        return "" if isinstance(value, Decimal) and in_range(value) else _shown(value)
    if k == Kind.BOOLEAN:
        return "" if type(value) is bool else _shown(value)
    if k == Kind.TEXT:
        return "" if type(value) is str else _shown(value)
    if k == Kind.ENUM:
        return "" if type(value) is str and (not kind.values or value in kind.values) else _shown(value)
    if k == Kind.DATE:
        return "" if type(value) is dt.date else _shown(value)
    if k == Kind.LIST:
        if not isinstance(value, list):
            return _shown(value)
        assert kind.item is not None
        for i, item in enumerate(value):
            why = conforms(item, kind.item)
            if why:
                return f"{why} at [{i}]"
        return ""
    if k == Kind.RECORD:
        if not isinstance(value, dict):
            return _shown(value)
        for name, sub in kind.fields:
            why = conforms(value.get(name), sub)
            if why:
                return f"{why} in field {name!r}"
        return ""
    return ""


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'…' if len(text) > 60 else ''}"


def declared(returns: str) -> Type | None:
    """The type a plugin's `returns` declares, or None where nothing can be checked (`rounding`)."""
    from kinerja_rules.typecheck import _param_type

    try:
        return _param_type(returns)
    except Exception:  # the registry checked every declared type: only the special names come here
        return None


class PluginTimeout(BaseException):
    """Raised inside a plugin call that passed its time budget; a BaseException, so that the
    plugin's own `except Exception` cannot swallow it."""


_budget: float | None = None  # seconds one plugin call may take in this process; None: no bound


def set_call_budget(seconds: float | None) -> None:
    """Bound every plugin call of this process to `seconds` of wall time, by an interval timer
    (SIGALRM). Only for a process that evaluates in its main thread: the evaluation processes."""
    global _budget
    if seconds is not None:
        signal.signal(signal.SIGALRM, _on_alarm)
    _budget = seconds


def _on_alarm(signum: int, frame: Any) -> None:
    raise PluginTimeout


def _timed(fn: Callable[..., Any], args: tuple[Any, ...], budget: float, what: str) -> Any:
    try:
        signal.setitimer(signal.ITIMER_REAL, budget)
        try:
            return fn(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except PluginTimeout:
        raise PluginReturnError(f"{what} did not return within {budget:g} s, the time budget of one plugin "
                                "call") from None


def checked_call(fn: Callable[..., Any], kind: Type | None, what: str) -> Callable[..., Any]:
    """`fn` run in a fresh copy of `PLUGIN_CONTEXT` (and within this process's time budget), its
    result checked against `kind` (`what` names it)."""

    def call(*args: Any) -> Any:
        with decimal.localcontext(PLUGIN_CONTEXT):
            result = fn(*args) if _budget is None else _timed(fn, args, _budget, what)
        if kind is not None:
            why = conforms(result, kind)
            if why:
                raise PluginReturnError(f"{what} returned {why}, but declares {kind}")
        return result

    call.__wrapped__ = fn  # type: ignore[attr-defined]
    return call
