"""Static facts about checked expressions: which money values are provably whole rupiah,
and the range a numeric value can take.

Both walk the typed AST with the checker's annotations (what each name means), follow
definitions into their expressions, and read parameter values and input bounds; neither
runs the policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from kinerja_rules import nodes as n
from kinerja_rules.schema import Field
from kinerja_rules.typecheck import Annotations, path_of
from kinerja_rules.types import Kind

_WHOLE_CALLS = frozenset({"floor", "ceil"})
_PASS_CALLS = frozenset({"min", "max", "abs", "clamp"})


class Facts:
    """What the analyses need to know about a policy's names."""

    def __init__(self, notes: Annotations, definitions: Mapping[str, n.Expr],
                 params: Mapping[str, tuple[Any, ...]], tables: Mapping[str, tuple[n.Expr, ...]],
                 input_field: Callable[[str], Field | None],
                 keyed: Mapping[tuple[str, str], tuple[Any, ...]] | None = None) -> None:
        self.notes = notes
        self.definitions = definitions
        self.params = params  # every value a parameter ever takes (all dates, all keys)
        self.keyed = keyed or {}  # the values of one key of a keyed parameter, when it is read by a constant key
        self.tables = tables  # every value a table can give (its rows' and default's expressions)
        self.input_field = input_field
        self._whole: dict[str, str | None] = {}
        self._ranges: dict[str, Range] = {}

    # ---- whole rupiah ----------------------------------------------------------------
    def not_whole(self, node: n.Expr) -> str | None:  # noqa: C901
        """Why the value may hold a fraction of a rupiah, or None when it is provably whole."""
        kind = self.notes.types.get(id(node))
        if kind is not None and kind.kind == Kind.INTEGER:
            return None
        if isinstance(node, n.Literal):
            if node.value is None or isinstance(node.value, int) and not isinstance(node.value, bool):
                return None
            if isinstance(node.value, Decimal) and node.value == node.value.to_integral_value():
                return None
            return f"{node.value} is not whole"
        res = self.notes.names.get(id(node.obj if isinstance(node, n.Index) else node))
        if res is not None and res[0] == "param":
            values = self.params.get(res[1], ())
            bad = [v for v in values if v is not None and v != int(v)]
            return f"parameter {res[1]!r} holds {bad[0]}" if bad else None
        if isinstance(node, (n.Name, n.Call)) and res is not None and res[0] == "def":  # a Call: parent(name)
            name = res[1]
            if name not in self.definitions:
                return None  # it failed to check and is reported already
            if name not in self._whole:
                self._whole[name] = "…"  # definitions are acyclic; this only guards the walk
                self._whole[name] = self.not_whole(self.definitions[name])
            reason = self._whole[name]
            return None if reason is None else f"definition {name!r} may not be whole ({reason})"
        if isinstance(node, n.Name) and res is not None and res[0] == "input":
            return f"input {res[1]!r} may hold cents"
        if isinstance(node, n.Binary) and node.op in ("+", "-", "*", "??"):
            return self.not_whole(node.left) or self.not_whole(node.right)
        if isinstance(node, n.Unary):
            return self.not_whole(node.operand)
        if isinstance(node, n.If):
            return self.not_whole(node.then) or self.not_whole(node.orelse)
        if isinstance(node, n.When):
            branches = [v for _, v in node.branches] + ([node.orelse] if node.orelse is not None else [])
            return next((r for r in map(self.not_whole, branches) if r), None)
        if isinstance(node, n.Call):
            if node.func in _WHOLE_CALLS:
                return None
            if node.func == "round" and len(node.args) == 3 and isinstance(node.args[1], n.Literal) \
                    and isinstance(node.args[1].value, int) and node.args[1].value <= 0:
                return None
            if node.func in _PASS_CALLS:
                return next((r for r in map(self.not_whole, node.args) if r), None)
            if node.func in self.tables:
                return next((f"table {node.func!r} may give {r}" for r in map(self.not_whole, self.tables[node.func])
                             if r), None)
            if node.func in ("sum", "min", "max") and len(node.args) == 1:
                return "a sum over a list of money is whole only when each item is rounded"
        if isinstance(node, n.Aggregate) and node.func in ("sum", "min", "max"):
            return self.not_whole(node.elem)
        if isinstance(node, n.Binary) and node.op == "/":
            return "a quotient"
        return "it is not rounded"

    # ---- ranges -------------------------------------------------------------------------
    def range(self, node: n.Expr) -> Range:  # noqa: C901
        """Bounds on the node's value; a bound is None when nothing limits it."""
        kind = self.notes.types.get(id(node))
        if kind is not None and not kind.numeric:
            return UNBOUNDED
        if isinstance(node, n.Literal):
            if isinstance(node.value, (int, Decimal)) and not isinstance(node.value, bool):
                return Range.point(Fraction(node.value))
            return UNBOUNDED
        res = self.notes.names.get(id(node.obj if isinstance(node, n.Index) else node))
        if res is not None and res[0] == "param":
            key = self.notes.names.get(id(node.index)) if isinstance(node, n.Index) else None
            chosen = self.keyed.get((res[1], str(key[1]))) if key is not None and key[0] == "enum" else None
            values = [Fraction(v) for v in (chosen if chosen is not None else self.params.get(res[1], ()))
                      if v is not None]
            if not values:
                return UNBOUNDED
            if isinstance(node, n.Index) and kind is not None and kind.kind == Kind.MONEY and min(values) > 0:
                # a positive amount looked up by key (pagu by kelas) is a symbol, so `pagu - x * pagu` stays exact
                return Range.symbol(f"{res[1]}[{path_of(node.index) or '…'}]", min(values), max(values))
            return Range(Form(min(values)), Form(max(values)))
        if isinstance(node, (n.Name, n.Call)) and res is not None and res[0] == "def":
            name = res[1]
            if name not in self.definitions:
                return UNBOUNDED
            if name not in self._ranges:
                self._ranges[name] = UNBOUNDED
                self._ranges[name] = self.range(self.definitions[name])
            return self._ranges[name]
        path = path_of(node)
        if path is not None and res is not None and res[0] == "input" or isinstance(node, n.Attr) and path:
            field = self.input_field(path) if path else None
            return _field_range(field) if field is not None else UNBOUNDED
        if isinstance(node, n.Binary) and node.op == "/" and _capped_ratio(node) and \
                self.range(node.right).nonnegative():
            return Range(Form(Fraction(0)), Form(Fraction(1)))  # min(x, d) / d with x, d >= 0
        if isinstance(node, n.Binary) and node.op in ("+", "-", "*", "/"):
            a, b = self.range(node.left), self.range(node.right)
            return {"+": a.add, "-": a.sub, "*": a.mul, "/": a.div}[node.op](b)
        if isinstance(node, n.Binary) and node.op == "??":
            return self.range(node.left).join(self.range(node.right))
        if isinstance(node, n.Unary) and node.op == "-":
            return self.range(node.operand).neg()
        if isinstance(node, n.If):
            return self.range(node.then).join(self.range(node.orelse))
        if isinstance(node, n.When):
            out: Range | None = None
            for value in [v for _, v in node.branches] + ([node.orelse] if node.orelse is not None else []):
                r = self.range(value)
                out = r if out is None else out.join(r)
            return out or UNBOUNDED
        if isinstance(node, n.Call):
            args = [self.range(a) for a in node.args]
            if node.func in ("floor", "ceil") and args:
                return args[0].rounded(down=node.func == "floor", up=node.func == "ceil")
            if node.func == "round" and len(args) == 3 and isinstance(node.args[1], n.Literal) \
                    and isinstance(node.args[1].value, int) and node.args[1].value >= 0:
                return args[0].rounded(down=True, up=True)
            if node.func in ("min", "max") and len(args) == 1:  # of a list: within the bounds of its items
                return self.items_range(node.args[0])
            if node.func in ("min", "max") and len(args) >= 2:
                out = args[0]
                for r in args[1:]:
                    out = out.min(r) if node.func == "min" else out.max(r)
                return out
            if node.func == "clamp" and len(args) == 3:
                return args[0].max(args[1]).min(args[2])
            if node.func in self.tables:
                out = None
                for value in self.tables[node.func]:
                    r = self.range(value)
                    out = r if out is None else out.join(r)
                return out or UNBOUNDED
            if node.func == "count":
                return Range(Form(Fraction(0)), Form(None))
        if isinstance(node, n.Aggregate) and node.func in ("min", "max"):
            return self.range(node.elem)
        if isinstance(node, n.Aggregate) and node.func in ("sum", "count"):
            elem = self.range(node.elem) if node.func == "sum" else Range.point(Fraction(1))
            return Range(Form(Fraction(0)) if elem.nonnegative() else Form(None), Form(None))
        return UNBOUNDED


    def items_range(self, node: n.Expr) -> Range:
        """Bounds on every item of a list expression: a literal list or a list comprehension."""
        if isinstance(node, n.ListExpr) and node.items:
            out = self.range(node.items[0])
            for item in node.items[1:]:
                out = out.join(self.range(item))
            return out
        if isinstance(node, n.Aggregate) and node.func == "list":
            return self.range(node.elem)
        return UNBOUNDED


def _capped_ratio(node: n.Binary) -> bool:
    left, divisor = node.left, path_of(node.right)
    return (divisor is not None and isinstance(left, n.Call) and left.func == "min" and len(left.args) == 2
            and divisor in (path_of(left.args[0]), path_of(left.args[1])))


def _field_range(field: Field) -> Range:
    spec = field.spec
    low = spec.min if spec.min is not None else spec.greater_than
    high = spec.max if spec.max is not None else spec.less_than
    return Range(Form(Fraction(low) if low is not None else None), Form(Fraction(high) if high is not None else None))


@dataclass(frozen=True)
class Form:
    """A bound `const + coef * symbol`; `const` None means unbounded. A symbol stands for a positive amount."""

    const: Fraction | None
    coef: Fraction = Fraction(0)
    symbol: str | None = None
    span: tuple[Fraction, Fraction] = (Fraction(0), Fraction(0))  # the symbol's own least and greatest value

    def extreme(self, lowest: bool) -> Fraction | None:
        """The bound as a number: its least (or greatest) value over the symbol's range."""
        if self.const is None:
            return None
        if self.symbol is None or self.coef == 0:
            return self.const
        pick = self.span[0] if (self.coef > 0) == lowest else self.span[1]
        return self.const + self.coef * pick

    def plus(self, other: Form, sign: int = 1) -> Form:
        if self.const is None or other.const is None:
            return Form(None)
        if other.symbol is None or other.coef == 0:
            return Form(self.const + sign * other.const, self.coef, self.symbol, self.span)
        if self.symbol is None or self.coef == 0 or self.symbol == other.symbol:
            return Form(self.const + sign * other.const, self.coef + sign * other.coef, other.symbol, other.span)
        return Form(None)  # two symbols: the caller falls back to plain numbers

    def scaled(self, factor: Fraction) -> Form:
        if self.const is None:
            return Form(None)
        return Form(self.const * factor, self.coef * factor, self.symbol, self.span)


@dataclass(frozen=True)
class Range:
    low: Form
    high: Form

    @staticmethod
    def point(value: Fraction) -> Range:
        return Range(Form(value), Form(value))

    @staticmethod
    def symbol(name: str, least: Fraction, greatest: Fraction) -> Range:
        form = Form(Fraction(0), Fraction(1), name, (least, greatest))
        return Range(form, form)

    def plain(self) -> Range:
        return Range(Form(self.low.extreme(True)), Form(self.high.extreme(False)))

    def nonnegative(self) -> bool:
        low = self.low.extreme(True)
        return low is not None and low >= 0

    def add(self, other: Range) -> Range:
        low, high = self.low.plus(other.low), self.high.plus(other.high)
        if (low.const is None and self.low.const is not None and other.low.const is not None) or \
                (high.const is None and self.high.const is not None and other.high.const is not None):
            return self.plain().add(other.plain())
        return Range(low, high)

    def sub(self, other: Range) -> Range:
        return self.add(other.neg())

    def neg(self) -> Range:
        return Range(self.high.scaled(Fraction(-1)), self.low.scaled(Fraction(-1)))

    def _scalar(self) -> tuple[Fraction, Fraction] | None:
        low, high = self.low, self.high
        if low.const is None or high.const is None or low.coef or high.coef:
            return None
        return low.const, high.const

    def mul(self, other: Range) -> Range:
        for a, b in ((self, other), (other, self)):
            factor = b._scalar()
            if factor is not None and factor[0] >= 0 and a.nonnegative():
                return Range(a.low.scaled(factor[0]), a.high.scaled(factor[1]))  # both sides >= 0
        x, y = self.plain(), other.plain()
        xs, ys = x._scalar(), y._scalar()
        if xs is None or ys is None:
            return UNBOUNDED
        products = [p * q for p in xs for q in ys]
        return Range(Form(min(products)), Form(max(products)))

    def div(self, other: Range) -> Range:
        divisor = other.plain()._scalar()
        if divisor is None or divisor[0] <= 0:
            return UNBOUNDED
        return self.mul(Range(Form(1 / divisor[1]), Form(1 / divisor[0])))

    def join(self, other: Range) -> Range:
        """Bounds of a value that is one or the other."""
        return Range(_least(self.low, other.low, absent_wins=True), _greatest(self.high, other.high, absent_wins=True))

    def min(self, other: Range) -> Range:
        """Bounds of min(self, other)."""
        return Range(_least(self.low, other.low, absent_wins=True), _least(self.high, other.high, absent_wins=False))

    def max(self, other: Range) -> Range:
        """Bounds of max(self, other)."""
        return Range(_greatest(self.low, other.low, absent_wins=False),
                     _greatest(self.high, other.high, absent_wins=True))

    def rounded(self, down: bool, up: bool) -> Range:
        """Bounds after rounding to whole numbers or places (`down`: it may lower the value, `up`: raise it).

        A value never rounds past a whole number it does not cross, so a side that may move
        becomes the whole number at or beyond its extreme; a side that cannot move keeps its form.
        """
        low, high = self.low, self.high
        if down:
            least = low.extreme(True)
            low = Form(Fraction(math.floor(least)) if least is not None else None)
        if up:
            most = high.extreme(False)
            high = Form(Fraction(math.ceil(most)) if most is not None else None)
        return Range(low, high)


def _pick(a: Form, b: Form, least: bool) -> Form:
    if a.symbol == b.symbol or a.coef == 0 and b.coef == 0:
        diff = a.plus(b, -1)
        if diff.coef == 0 and diff.const is not None:
            return a if (diff.const <= 0) == least else b
    x, y = a.extreme(least), b.extreme(least)
    assert x is not None and y is not None
    return Form(min(x, y) if least else max(x, y))


def _least(a: Form, b: Form, absent_wins: bool) -> Form:
    """The smaller of two bounds; an absent bound (unbounded) wins or is ignored."""
    if a.const is None or b.const is None:
        return Form(None) if absent_wins else (b if a.const is None else a)
    return _pick(a, b, least=True)


def _greatest(a: Form, b: Form, absent_wins: bool) -> Form:
    if a.const is None or b.const is None:
        return Form(None) if absent_wins else (b if a.const is None else a)
    return _pick(a, b, least=False)


UNBOUNDED = Range(Form(None), Form(None))
