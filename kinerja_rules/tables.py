"""Decision tables: rows of unary tests, hit policies, and their static analysis.

The analysis samples every input at the values that matter (each constant a row
mentions, one value between each pair of neighbours, one beyond each end, every
enumeration value, null where allowed) and runs every row on every combination.
That finds gaps and overlaps in `unique` tables, gaps in `first` and `priority`
tables, and rows of `first` tables that can never be reached.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kinerja_rules import nodes as n
from kinerja_rules.types import Kind, Type

HIT_POLICIES = ("unique", "first", "priority", "collect")
AGGREGATIONS = ("sum", "min", "max", "count")
MAX_COMBINATIONS = 200_000


@dataclass(frozen=True)
class Row:
    name: str
    tests: tuple[n.Test, ...]
    then: n.Expr
    index: int
    note: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    inputs: tuple[tuple[str, Type], ...]
    output: Type  # the type of one row's output
    returns: Type  # what calling the table gives (list or aggregate for collect)
    hit: str
    aggregate: str | None
    rows: tuple[Row, ...]
    default: n.Expr | None
    priority: tuple[Any, ...]
    cite: str
    doc: str
    deps: frozenset[tuple[str, str]] = frozenset()


class _NotConstant(Exception):
    pass


def constant(node: n.Expr, names: dict[int, tuple[str, Any]]) -> Any:
    """The value of a constant cell expression, or raise _NotConstant."""
    if isinstance(node, n.Literal):
        return node.value
    res = names.get(id(node))
    if res is not None and res[0] == "enum":
        return res[1]
    raise _NotConstant


def matches(test: n.Test, value: Any, names: dict[int, tuple[str, Any]]) -> bool:
    """Run one cell's unary test on a sample value."""
    if isinstance(test, n.AnyTest):
        return True
    hit = any(_one(single, value, names) for single in test.tests)
    return not hit if test.negated else hit


def _one(test: n.CompareTest | n.RangeTest, value: Any, names: dict[int, tuple[str, Any]]) -> bool:
    if isinstance(test, n.RangeTest):
        if value is None:
            return False
        low, high = constant(test.low, names), constant(test.high, names)
        above = value >= low if test.low_closed else value > low
        below = value <= high if test.high_closed else value < high
        return bool(above and below)
    target = constant(test.value, names)
    if test.op == "=":
        return bool(value == target)
    if test.op == "!=":
        return bool(value != target)
    if value is None or target is None:
        return False
    return bool({"<": value < target, "<=": value <= target, ">": value > target, ">=": value >= target}[test.op])


class _Other:
    """A text value no row names."""

    def __repr__(self) -> str:
        return "<any other text>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Other)

    def __hash__(self) -> int:
        return 0


def samples(kind: Type, column: list[n.Test], names: dict[int, tuple[str, Any]]) -> list[Any]:
    """The values of one input worth trying."""
    out: list[Any] = []
    if kind.kind == Kind.ENUM:
        out = list(kind.values)
    elif kind.kind == Kind.BOOLEAN:
        out = [True, False]
    else:
        points: set[Any] = set()
        for test in column:
            if isinstance(test, n.TestList):
                for single in test.tests:
                    if isinstance(single, n.RangeTest):
                        points.add(constant(single.low, names))
                        points.add(constant(single.high, names))
                    else:
                        points.add(constant(single.value, names))
        points.discard(None)
        if kind.kind == Kind.TEXT:
            out = sorted(points) + [_Other()]
        elif kind.kind == Kind.DATE:
            ordered = sorted(points)
            out = list(ordered)
            one = dt.timedelta(days=1)
            for a, b in zip(ordered, ordered[1:]):
                if (b - a).days > 1:
                    out.append(a + one)
            if ordered:
                out += [ordered[0] - one, ordered[-1] + one]
            else:
                out = [dt.date(2000, 1, 1)]
        else:
            ordered = sorted(Decimal(p) for p in points)
            out = list(ordered)
            integer = kind.kind == Kind.INTEGER
            for a, b in zip(ordered, ordered[1:]):
                if integer:
                    inside = a.to_integral_value() + 1 if a == a.to_integral_value() else a.to_integral_value(rounding="ROUND_CEILING")
                    if inside < b:
                        out.append(inside)
                else:
                    out.append((a + b) / 2)
            if ordered:
                out += [ordered[0] - 1, ordered[-1] + 1]
            else:
                out = [Decimal(0)]
            if integer:
                out = [int(v) for v in out if v == v.to_integral_value()]
    if kind.optional:
        out.append(None)
    return out


def analyse(table: Table, names: dict[int, tuple[str, Any]]) -> list[tuple[str, str, Row | None]]:
    """Find gaps, overlaps and unreachable rows; returns (code, message, row) triples."""
    if table.hit == "collect" or not table.rows:
        return []
    try:
        columns = [samples(kind, [row.tests[i] for row in table.rows], names)
                   for i, (_, kind) in enumerate(table.inputs)]
    except (_NotConstant, TypeError):
        return [("W201", f"table {table.name!r} has cells that are not constants, so its rows were not "
                 "checked for gaps and overlaps", None)]
    total = 1
    for col in columns:
        total *= max(len(col), 1)
    if total > MAX_COMBINATIONS:
        return [("W201", f"table {table.name!r} has too many input combinations ({total}) to check", None)]
    problems: list[tuple[str, str, Row | None]] = []
    reached: set[int] = set()
    seen_gap = seen_overlap = False
    overlapping: set[tuple[int, int]] = set()
    for combo in itertools.product(*columns):
        hits = [row for row in table.rows
                if all(matches(row.tests[i], combo[i], names) for i in range(len(combo)))]
        if hits:
            reached.add(hits[0].index)
        where = ", ".join(f"{name} = {_show(v)}" for (name, _), v in zip(table.inputs, combo))
        if not hits and table.default is None and not seen_gap:
            seen_gap = True
            problems.append(("E201", f"table {table.name!r} has a gap: no row matches {where}", None))
        if table.hit == "unique" and len(hits) > 1:
            pair = (hits[0].index, hits[1].index)
            if pair not in overlapping and not seen_overlap:
                seen_overlap = True
                overlapping.add(pair)
                problems.append(("E202", f"rows {hits[0].name!r} and {hits[1].name!r} of unique table "
                                 f"{table.name!r} overlap: both match {where}", hits[1]))
    if table.hit == "first":
        for row in table.rows:
            if row.index not in reached:
                problems.append(("E203", f"row {row.name!r} of table {table.name!r} is never reached: "
                                 "rows above it match everything it matches", row))
    return problems


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)
