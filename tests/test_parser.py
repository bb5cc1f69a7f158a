from __future__ import annotations

from decimal import Decimal

import pytest

from kinerja_rules import nodes as n
from kinerja_rules.parser import ExpressionSyntaxError, parse


def test_precedence_multiplication_binds_tighter() -> None:
    tree = parse("1 + 2 * 3")
    assert isinstance(tree, n.Binary) and tree.op == "+"
    assert isinstance(tree.right, n.Binary) and tree.right.op == "*"


def test_literals_are_exact() -> None:
    assert parse("0.1").value == Decimal("0.1")
    assert parse("60%").value == Decimal("0.6")
    assert parse("2_500_000").value == 2_500_000
    assert parse('"teks"').value == "teks"
    assert parse("null").kind == "null"


def test_between_keeps_its_and() -> None:
    tree = parse("x between 1 and 30 and y")
    assert isinstance(tree, n.Binary) and tree.op == "and"
    assert isinstance(tree.left, n.Between)


def test_when_branches_and_else() -> None:
    tree = parse("when a then 1 when b then 2 else 3")
    assert isinstance(tree, n.When) and len(tree.branches) == 2 and tree.orelse is not None


def test_aggregate_with_filter() -> None:
    tree = parse("sum(m * 2 for m in xs where m > 30)")
    assert isinstance(tree, n.Aggregate) and tree.func == "sum" and tree.var == "m"
    assert tree.where is not None


def test_positions_point_at_the_node() -> None:
    tree = parse("alpha + beta")
    assert tree.right.pos[:2] == (1, 9)


@pytest.mark.parametrize("cell,kind", [
    ("-", n.AnyTest), (">= 110", n.TestList), ("[90..110)", n.TestList), ("a, b", n.TestList),
])
def test_table_cells(cell: str, kind: type) -> None:
    assert isinstance(parse(cell, "tests"), kind)


def test_range_cell_bounds() -> None:
    test = parse("(60..80]", "tests").tests[0]
    assert isinstance(test, n.RangeTest) and not test.low_closed and test.high_closed


@pytest.mark.parametrize("text,line,column,fragment", [
    ("1 + * 2", 1, 5, "unexpected '*'"),
    ("if a then b", 1, 12, "expected 'else'"),
    ("(1", 1, 3, "expected ')'"),
    ("a $ b", 1, 3, "unexpected character '$'"),
    ("a +\n  * b", 2, 3, "unexpected '*'"),
    ("", 1, 1, "empty expression"),
])
def test_syntax_errors_name_the_place(text: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(ExpressionSyntaxError) as err:
        parse(text)
    assert fragment in err.value.message
    assert (err.value.line, err.value.column) == (line, column)


def test_deep_nesting_is_refused_not_crashed() -> None:
    with pytest.raises(ExpressionSyntaxError, match="nests deeper"):
        parse("(" * 500 + "1" + ")" * 500)
