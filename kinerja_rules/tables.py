"""Decision tables: rows of unary tests, hit policies, and their static analysis.

The analysis samples every input at the values that matter (each constant a row
mentions, one value between each pair of neighbours, one beyond each end, every
enumeration value, null where allowed) and runs every row on every combination.
That finds gaps and overlaps in `unique` tables, gaps in `first` and `priority`
tables, and rows of `first` tables that can never be reached.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import time
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kinerja_rules import nodes as n
from kinerja_rules.types import Kind, Type

HIT_POLICIES = ("unique", "first", "priority", "collect")
AGGREGATIONS = ("sum", "min", "max", "count")
MAX_COMBINATIONS = 200_000
ANALYSIS_DEADLINE: ContextVar[float | None] = ContextVar("analysis_deadline", default=None)  # time.monotonic()


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


def samples(kind: Type, column: list[n.Test], names: dict[int, tuple[str, Any]]) -> list[Any]:  # noqa: C901
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
            for a, b in itertools.pairwise(ordered):
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
            for a, b in itertools.pairwise(ordered):
                if integer:
                    whole = a.to_integral_value()
                    inside = whole + 1 if a == whole else a.to_integral_value(rounding="ROUND_CEILING")
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


def _row_masks(kind: Type, tests: list[n.Test], values: list[Any], names: dict[int, tuple[str, Any]]) -> list[int]:
    """For each sample of one input, the rows (as bits) whose test in that column matches it."""
    swept = _sweep(kind, tests, values, names)
    if swept is not None:
        return swept
    masks = [0] * len(values)  # tests the sweep does not read (comparing texts): each row on each sample
    for r, test in enumerate(tests):
        for s, value in enumerate(values):
            if matches(test, value, names):
                masks[s] |= 1 << r
    return masks


def _sweep(kind: Type, tests: list[n.Test], values: list[Any], names: dict[int, tuple[str, Any]]) -> list[int] | None:  # noqa: C901
    """`_row_masks` in O(rows + samples) steps: each row's test is a few runs of the sorted samples,
    and one sweep over them gives every sample its rows. None when a test is not of that shape."""
    ordered = sorted((i for i, v in enumerate(values) if v is not None and not isinstance(v, _Other)),
                     key=values.__getitem__)
    keys = [values[i] for i in ordered]
    position = {v: p for p, v in enumerate(keys)}
    if len(position) != len(keys):
        return None
    places = list(ordered)  # the sample index at each position: sorted values, then other text, then null
    comparable = len(places)
    places += [i for i, v in enumerate(values) if isinstance(v, _Other)] + [i for i,
                                                                            v in enumerate(values) if v is None]
    null = places.index(values.index(None)) if None in values else None
    total = len(places)
    ordering = kind.kind not in (Kind.TEXT, Kind.ENUM, Kind.BOOLEAN)

    def complement(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        out, at = [], 0
        for lo, hi in runs:
            if lo > at:
                out.append((at, lo))
            at = max(at, hi)
        return out + ([(at, total)] if at < total else [])

    def single(test: n.CompareTest | n.RangeTest) -> list[tuple[int, int]] | None:
        if isinstance(test, n.RangeTest):
            if not ordering:
                return None
            low, high = constant(test.low, names), constant(test.high, names)
            lo = bisect.bisect_left(keys, low) if test.low_closed else bisect.bisect_right(keys, low)
            hi = bisect.bisect_right(keys, high) if test.high_closed else bisect.bisect_left(keys, high)
            return [(lo, hi)] if lo < hi else []
        target = constant(test.value, names)
        if test.op in ("=", "!="):
            at = null if target is None else position.get(target)
            equal = [(at, at + 1)] if at is not None else []
            return equal if test.op == "=" else complement(equal)
        if target is None:
            return []
        if not ordering:
            return None
        cut = {"<": bisect.bisect_left, "<=": bisect.bisect_right, ">": bisect.bisect_right,
               ">=": bisect.bisect_left}[test.op](keys, target)
        return [(0, cut)] if test.op[0] == "<" else [(cut, comparable)]

    events = [0] * (total + 1)
    for r, test in enumerate(tests):
        if isinstance(test, n.AnyTest):
            runs = [(0, total)]
        else:
            parts: list[tuple[int, int]] = []
            for one in test.tests:
                found = single(one)
                if found is None:
                    return None
                parts += found
            runs = []
            for lo, hi in sorted(p for p in parts if p[0] < p[1]):  # merged, so each toggle is an entry or an exit
                if runs and lo <= runs[-1][1]:
                    runs[-1] = (runs[-1][0], max(runs[-1][1], hi))
                else:
                    runs.append((lo, hi))
            if test.negated:
                runs = complement(runs)
        bit = 1 << r
        for lo, hi in runs:
            events[lo] ^= bit
            events[hi] ^= bit
    masks = [0] * len(values)
    active = 0
    for p in range(total):
        active ^= events[p]
        masks[places[p]] = active
    return masks


def analyse(table: Table, names: dict[int, tuple[str, Any]],  # noqa: C901
            deadline: float | None = None) -> list[tuple[str, str, Row | None]]:
    """Find gaps, overlaps and unreachable rows; returns (code, message, row) triples.

    Each input's samples get the rows that match them as a bit set, so a combination of
    samples costs an AND per input, whatever the number of rows. At `deadline` (a
    `time.monotonic()` value; by default the one `ANALYSIS_DEADLINE` holds) the analysis
    stops and says how far it got.
    """
    if table.hit == "collect" or not table.rows:
        return []
    if deadline is None:
        deadline = ANALYSIS_DEADLINE.get()
    try:
        columns = [samples(kind, [row.tests[i] for row in table.rows], names)
                   for i, (_, kind) in enumerate(table.inputs)]
        total = math.prod(max(len(col), 1) for col in columns)
        if total > MAX_COMBINATIONS:
            return [("W201", f"table {table.name!r} has too many input combinations ({total}) to check", None)]
        masks = [_row_masks(kind, [row.tests[i] for row in table.rows], columns[i], names)
                 for i, (_, kind) in enumerate(table.inputs)]
    except (_NotConstant, TypeError):
        return [("W201", f"table {table.name!r} has cells that are not constants, so its rows were not "
                 "checked for gaps and overlaps", None)]
    rows = table.rows
    everything = (1 << len(rows)) - 1
    problems: list[tuple[str, str, Row | None]] = []
    reached = 0
    seen_gap = seen_overlap = False
    for done, combo in enumerate(itertools.product(*(range(len(col)) for col in columns))):
        if deadline is not None and not done % 4096 and time.monotonic() > deadline:
            problems.append(("W201", f"table {table.name!r} was not analysed within the time limit "
                             f"({done} of {total} input combinations)", None))
            return problems
        hit = everything
        for masks_of, s in zip(masks, combo, strict=True):
            hit &= masks_of[s]
        first = hit & -hit
        reached |= first
        if (not hit and table.default is None and not seen_gap) or \
                (table.hit == "unique" and hit != first and not seen_overlap):
            where = ", ".join(f"{name} = {_show(col[s])}"
                              for (name, _), col, s in zip(table.inputs, columns, combo, strict=True))
            if not hit:
                seen_gap = True
                problems.append(("E201", f"table {table.name!r} has a gap: no row matches {where}", None))
            else:
                seen_overlap = True
                rest = hit ^ first
                one, two = rows[first.bit_length() - 1], rows[(rest & -rest).bit_length() - 1]
                problems.append(("E202", f"rows {one.name!r} and {two.name!r} of unique table "
                                 f"{table.name!r} overlap: both match {where}", two))
    if table.hit == "first":
        for i, row in enumerate(rows):
            if not reached >> i & 1:
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
