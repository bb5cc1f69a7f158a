"""AST nodes of the expression language; every node carries its source position.

`pos` is (line, column, end_line, end_column), 1-based, relative to the expression
text; the loader maps it to the policy file.
"""

from __future__ import annotations

from typing import Any

import msgspec

from kinerja_rules.types import Kind

Pos = tuple[int, int, int, int]


class Node(msgspec.Struct, frozen=True, kw_only=True):
    pos: Pos


class Literal(Node, frozen=True, kw_only=True, tag=True):
    value: Any
    kind: Kind  # integer | decimal | percent | text | boolean | null


class Name(Node, frozen=True, kw_only=True, tag=True):
    name: str


class Attr(Node, frozen=True, kw_only=True, tag=True):
    obj: Expr
    name: str


class Index(Node, frozen=True, kw_only=True, tag=True):
    obj: Expr
    index: Expr


class Call(Node, frozen=True, kw_only=True, tag=True):
    func: str
    args: tuple[Expr, ...]


class Aggregate(Node, frozen=True, kw_only=True, tag=True):
    """`func(elem for var in source where cond)`; also list comprehensions (func='list')."""

    func: str
    elem: Expr
    var: str
    source: Expr
    where: Expr | None


class ListExpr(Node, frozen=True, kw_only=True, tag=True):
    items: tuple[Expr, ...]


class RecordExpr(Node, frozen=True, kw_only=True, tag=True):
    """`{jenis: beban_kerja, pagu: x}`: a record, each field given by name."""

    fields: tuple[tuple[str, Expr], ...]


class Unary(Node, frozen=True, kw_only=True, tag=True):
    op: str  # '-' | 'not'
    operand: Expr


class Binary(Node, frozen=True, kw_only=True, tag=True):
    op: str  # + - * / = != < <= > >= and or ?? in notin
    left: Expr
    right: Expr


class Between(Node, frozen=True, kw_only=True, tag=True):
    value: Expr
    low: Expr
    high: Expr


class If(Node, frozen=True, kw_only=True, tag=True):
    cond: Expr
    then: Expr
    orelse: Expr


class When(Node, frozen=True, kw_only=True, tag=True):
    branches: tuple[tuple[Expr, Expr], ...]
    orelse: Expr | None


Expr = Literal | Name | Attr | Index | Call | Aggregate | ListExpr | RecordExpr | Unary | Binary | Between | If | When


# ---- decision table cells ---------------------------------------------------

class AnyTest(Node, frozen=True, kw_only=True, tag=True):
    pass


class CompareTest(Node, frozen=True, kw_only=True, tag=True):
    op: str
    value: Expr


class RangeTest(Node, frozen=True, kw_only=True, tag=True):
    low: Expr
    high: Expr
    low_closed: bool
    high_closed: bool


class TestList(Node, frozen=True, kw_only=True, tag=True):
    tests: tuple[CompareTest | RangeTest, ...]
    negated: bool = False


Test = AnyTest | TestList


def children(node: Expr) -> list[Expr]:  # noqa: C901
    """The direct sub-expressions of a node, in source order."""
    if isinstance(node, (Literal, Name)):
        return []
    if isinstance(node, Attr):
        return [node.obj]
    if isinstance(node, Index):
        return [node.obj, node.index]
    if isinstance(node, Call):
        return list(node.args)
    if isinstance(node, Aggregate):
        return [node.source, node.elem] + ([node.where] if node.where is not None else [])
    if isinstance(node, ListExpr):
        return list(node.items)
    if isinstance(node, RecordExpr):
        return [value for _, value in node.fields]
    if isinstance(node, Unary):
        return [node.operand]
    if isinstance(node, Binary):
        return [node.left, node.right]
    if isinstance(node, Between):
        return [node.value, node.low, node.high]
    if isinstance(node, If):
        return [node.cond, node.then, node.orelse]
    out: list[Expr] = []
    for cond, value in node.branches:
        out += [cond, value]
    if node.orelse is not None:
        out.append(node.orelse)
    return out
