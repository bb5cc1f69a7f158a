"""Parse expression text into AST nodes with the Lark LALR grammar in `grammar.lark`."""

from __future__ import annotations

import functools
from decimal import Decimal
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from kinerja_rules import nodes as n
from kinerja_rules.types import Kind

MAX_EXPRESSION_CHARS = 10_000
MAX_NESTING = 60


class ExpressionSyntaxError(Exception):
    """A syntax error at a place inside the expression text (1-based)."""

    def __init__(self, message: str, line: int, column: int, width: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.width = width


@functools.cache
def _parser() -> Lark:
    """One LALR parser for both start rules, built once; Lark caches its tables on disk."""
    grammar = resources.files("kinerja_rules").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", start=["expression", "tests"],
                propagate_positions=True, maybe_placeholders=True, cache=True)


def _pos(meta: Any) -> n.Pos:
    if getattr(meta, "empty", True):
        return (1, 1, 1, 1)
    return (meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_pos(tok: Token) -> n.Pos:
    return (tok.line or 1, tok.column or 1, tok.end_line or 1, tok.end_column or 1)


def _number(text: str) -> tuple[Any, Kind]:
    clean = text.replace("_", "")
    if "." in clean:
        return Decimal(clean), Kind.DECIMAL
    return int(clean), Kind.INTEGER


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def _unquote(text: str) -> str:
    body = text[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@v_args(meta=True)
class _Build(Transformer[Token, Any]):
    def number(self, meta: Any, items: list[Token]) -> n.Literal:
        value, kind = _number(str(items[0]))
        return n.Literal(pos=_pos(meta), value=value, kind=kind)

    def percent(self, meta: Any, items: list[Token]) -> n.Literal:
        value, _ = _number(str(items[0])[:-1])
        return n.Literal(pos=_pos(meta), value=Decimal(value) / 100, kind=Kind.PERCENT)

    def string(self, meta: Any, items: list[Token]) -> n.Literal:
        return n.Literal(pos=_pos(meta), value=_unquote(str(items[0])), kind=Kind.TEXT)

    def true(self, meta: Any, items: list[Any]) -> n.Literal:
        return n.Literal(pos=_pos(meta), value=True, kind=Kind.BOOLEAN)

    def false(self, meta: Any, items: list[Any]) -> n.Literal:
        return n.Literal(pos=_pos(meta), value=False, kind=Kind.BOOLEAN)

    def null(self, meta: Any, items: list[Any]) -> n.Literal:
        return n.Literal(pos=_pos(meta), value=None, kind=Kind.NULL)

    def name(self, meta: Any, items: list[Token]) -> n.Name:
        return n.Name(pos=_pos(meta), name=str(items[0]))

    def attr(self, meta: Any, items: list[Any]) -> n.Attr:
        return n.Attr(pos=_pos(meta), obj=items[0], name=str(items[1]))

    def index(self, meta: Any, items: list[Any]) -> n.Index:
        return n.Index(pos=_pos(meta), obj=items[0], index=items[1])

    def args(self, meta: Any, items: list[Any]) -> tuple[n.Expr, ...]:
        return tuple(items)

    def call(self, meta: Any, items: list[Any]) -> n.Call:
        return n.Call(pos=_pos(meta), func=str(items[0]), args=items[1] or ())

    def aggregate(self, meta: Any, items: list[Any]) -> n.Aggregate:
        func, elem, var, source, where = items
        return n.Aggregate(pos=_pos(meta), func=str(func), elem=elem, var=str(var), source=source, where=where)

    def list_comp(self, meta: Any, items: list[Any]) -> n.Aggregate:
        elem, var, source, where = items
        return n.Aggregate(pos=_pos(meta), func="list", elem=elem, var=str(var), source=source, where=where)

    def list_expr(self, meta: Any, items: list[Any]) -> n.ListExpr:
        return n.ListExpr(pos=_pos(meta), items=items[0] or ())

    def record_expr(self, meta: Any, items: list[Any]) -> n.RecordExpr:
        return n.RecordExpr(pos=_pos(meta), fields=tuple(items[0] or ()))

    def fields(self, meta: Any, items: list[Any]) -> tuple[tuple[str, n.Expr], ...]:
        return tuple(items)

    def field(self, meta: Any, items: list[Any]) -> tuple[str, n.Expr]:
        return str(items[0]), items[1]

    def negate(self, meta: Any, items: list[Any]) -> n.Expr:
        operand = items[0]
        if isinstance(operand, n.Literal) and operand.kind in (Kind.INTEGER, Kind.DECIMAL, Kind.PERCENT):
            return n.Literal(pos=_pos(meta), value=-operand.value, kind=operand.kind)
        return n.Unary(pos=_pos(meta), op="-", operand=operand)

    def not_(self, meta: Any, items: list[Any]) -> n.Unary:
        return n.Unary(pos=_pos(meta), op="not", operand=items[0])

    def arith(self, meta: Any, items: list[Any]) -> n.Binary:
        return n.Binary(pos=_pos(meta), op=str(items[1]), left=items[0], right=items[2])

    def compare(self, meta: Any, items: list[Any]) -> n.Binary:
        op = "=" if str(items[1]) == "==" else str(items[1])
        return n.Binary(pos=_pos(meta), op=op, left=items[0], right=items[2])

    def in_(self, meta: Any, items: list[Any]) -> n.Binary:
        return n.Binary(pos=_pos(meta), op="in", left=items[0], right=items[1])

    def not_in(self, meta: Any, items: list[Any]) -> n.Binary:
        return n.Binary(pos=_pos(meta), op="notin", left=items[0], right=items[1])

    def between(self, meta: Any, items: list[Any]) -> n.Between:
        return n.Between(pos=_pos(meta), value=items[0], low=items[1], high=items[2])

    def and_(self, meta: Any, items: list[Any]) -> n.Binary:
        return n.Binary(pos=_pos(meta), op="and", left=items[0], right=items[1])

    def or_(self, meta: Any, items: list[Any]) -> n.Binary:
        return n.Binary(pos=_pos(meta), op="or", left=items[0], right=items[1])

    def coalesce(self, meta: Any, items: list[Any]) -> n.Binary:
        return n.Binary(pos=_pos(meta), op="??", left=items[0], right=items[1])

    def if_expr(self, meta: Any, items: list[Any]) -> n.If:
        return n.If(pos=_pos(meta), cond=items[0], then=items[1], orelse=items[2])

    def when_branch(self, meta: Any, items: list[Any]) -> tuple[n.Expr, n.Expr]:
        return (items[0], items[1])

    def when_expr(self, meta: Any, items: list[Any]) -> n.When:
        branches = tuple(i for i in items if isinstance(i, tuple))
        last = items[-1]
        orelse = None if isinstance(last, tuple) else last
        return n.When(pos=_pos(meta), branches=branches, orelse=orelse)

    # ---- table cells ----
    def any_test(self, meta: Any, items: list[Any]) -> n.AnyTest:
        return n.AnyTest(pos=_pos(meta))

    def compare_test(self, meta: Any, items: list[Any]) -> n.CompareTest:
        op = "=" if str(items[0]) == "==" else str(items[0])
        return n.CompareTest(pos=_pos(meta), op=op, value=items[1])

    def equal_test(self, meta: Any, items: list[Any]) -> n.CompareTest:
        return n.CompareTest(pos=_pos(meta), op="=", value=items[0])

    def _range(self, meta: Any, items: list[Any], low_closed: bool, high_closed: bool) -> n.RangeTest:
        return n.RangeTest(pos=_pos(meta), low=items[0], high=items[1],
                           low_closed=low_closed, high_closed=high_closed)

    def range_cc(self, meta: Any, items: list[Any]) -> n.RangeTest:
        return self._range(meta, items, True, True)

    def range_co(self, meta: Any, items: list[Any]) -> n.RangeTest:
        return self._range(meta, items, True, False)

    def range_oc(self, meta: Any, items: list[Any]) -> n.RangeTest:
        return self._range(meta, items, False, True)

    def range_oo(self, meta: Any, items: list[Any]) -> n.RangeTest:
        return self._range(meta, items, False, False)

    def test_list(self, meta: Any, items: list[Any]) -> n.TestList:
        return n.TestList(pos=_pos(meta), tests=tuple(items))

    def not_tests(self, meta: Any, items: list[Any]) -> n.TestList:
        return n.TestList(pos=_pos(meta), tests=tuple(items), negated=True)


_BUILD = _Build()

_TOKEN_NAMES = {
    "$END": "end of expression", "RPAR": "')'", "LPAR": "'('", "RSQB": "']'", "LSQB": "'['",
    "COMMA": "','", "NAME": "a name", "NUMBER": "a number", "STRING": "a text", "THEN": "'then'",
    "ELSE": "'else'", "COMPARE": "a comparison", "MINUS": "'-'", "PERCENT": "a percentage", "ADD_OP": "'+' or '-'",
                "MUL_OP": "'*' or '/'",
}


def _describe(expected: set[str]) -> str:
    names = sorted({_TOKEN_NAMES.get(t, repr(t.lower())) for t in expected})
    if len(names) > 6:
        names = names[:6] + ["…"]
    return ", ".join(names)


@functools.lru_cache(maxsize=4096)
def _tree(text: str, start: str) -> Any:
    """Lark's tree of a text; a text parsed before (a parent's definitions, checked again with each
    region that extends it) comes from a bounded cache. Transforming a tree leaves it as it was."""
    return _parser().parse(text, start=start)


def _nesting(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]":
            depth -= 1
    return deepest


def parse(text: str, start: str = "expression") -> Any:
    """Parse one expression (or table cell, with start='tests') into AST nodes (new ones on each call:
    later stages note facts about each node by its identity)."""
    if not text.strip():
        raise ExpressionSyntaxError("empty expression", 1, 1)
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionSyntaxError(f"expression longer than {MAX_EXPRESSION_CHARS} characters", 1, 1)
    if _nesting(text) > MAX_NESTING:
        raise ExpressionSyntaxError(f"expression nests deeper than {MAX_NESTING} brackets", 1, 1)
    try:
        return _BUILD.transform(_tree(text, start))
    except UnexpectedToken as exc:
        tok = exc.token
        found = "end of expression" if tok.type == "$END" else repr(str(tok))
        if tok.type == "$END" or exc.line in (None, -1):
            line, col = text.count("\n") + 1, len(text.split("\n")[-1]) + 1
        else:
            line, col = exc.line, exc.column
        raise ExpressionSyntaxError(
            f"unexpected {found}; expected {_describe(exc.expected)}", line, col,
            len(str(tok)) if tok.type != "$END" else 1,
        ) from None
    except UnexpectedCharacters as exc:
        raise ExpressionSyntaxError(
            f"unexpected character {text[exc.pos_in_stream or 0]!r}", exc.line, exc.column
        ) from None
    except UnexpectedEOF as exc:
        lines = text.split("\n")
        raise ExpressionSyntaxError(
            f"unexpected end of expression; expected {_describe(set(exc.expected))}",
            len(lines), len(lines[-1]) + 1,
        ) from None
    except UnexpectedInput as exc:  # any other lark input error
        raise ExpressionSyntaxError(str(exc).split("\n")[0], getattr(exc, "line", 1) or 1,
                                    getattr(exc, "column", 1) or 1) from None
    except VisitError as exc:
        raise ExpressionSyntaxError(f"invalid expression: {exc.orig_exc}", 1, 1) from None
    except RecursionError:
        raise ExpressionSyntaxError("expression nests too deeply", 1, 1) from None

