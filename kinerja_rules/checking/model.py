"""What a checked policy holds, and the context every check reports to."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kinerja_rules import nodes as n
from kinerja_rules.assemble import Assembled, RowItem
from kinerja_rules.documents import Item
from kinerja_rules.errors import Diagnostic, Span
from kinerja_rules.functions import FunctionSpec, IndicatorSpec
from kinerja_rules.loader import Path_, SourceFile
from kinerja_rules.parser import ExpressionSyntaxError, parse
from kinerja_rules.schema import Field
from kinerja_rules.tables import Table
from kinerja_rules.typecheck import Annotations, TypeProblem
from kinerja_rules.types import Type

DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


@dataclass(frozen=True)
class Param:
    name: str
    type: Type
    key: Type | None
    dated: tuple[tuple[dt.date, Any], ...]  # ascending by date
    cite: str
    doc: str


@dataclass(frozen=True)
class Definition:
    name: str
    type: Type
    expr: n.Expr
    text: str
    cite: str
    doc: str
    deps: frozenset[tuple[str, str]]
    origin: Span


@dataclass(frozen=True)
class Output:
    name: str
    type: Type
    expr: n.Expr | None
    text: str
    cite: str
    doc: str
    deps: frozenset[tuple[str, str]]
    rules: tuple[str, ...]
    low: Decimal | None = None  # the declared range, checked statically (a warning) and on every record
    high: Decimal | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    when: n.Expr
    text: str
    then: tuple[tuple[str, Any], ...]
    reason: str
    cite: str
    deps: frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Check:
    """A condition a record must meet before anything is decided (`checks:`)."""

    name: str
    require: n.Expr
    text: str
    message: str
    at: str  # the path an error names; with `over`, the item's field after `[i]` ("" for the item itself)
    over: n.Expr | None  # `for: var in <list>`: the list, read from the record
    var: str
    over_path: str  # the list's path in the record
    cite: str
    deps: frozenset[tuple[str, str]]

    def path(self, index: int | str | None = None) -> str:
        """Where a failure of this check is: the field, or the list's item (and its field); `"*"`
        stands for every item."""
        if index is None:
            return self.at
        return f"{self.over_path}[{index}]" + (f".{self.at}" if self.at else "")


@dataclass(frozen=True)
class Case:
    name: str
    record: dict[str, Any]
    as_of: dt.date | None
    expect: dict[str, Any] | None
    expect_error: str | None
    origin: Span
    doc: str
    members: dict[str, dict[str, Any]] | None = None  # a population test: its records by label, in input order
    groups: dict[str, Any] | None = None
    seats: list[Any] | None = None
    expect_reports: list[dict[str, Any]] | None = None


@dataclass
class CheckedPolicy:
    """Everything the compiler needs, all of it already checked."""

    assembled: Assembled
    input: Field
    params: dict[str, Param]
    tables: dict[str, Table]
    definitions: dict[str, Definition]  # in dependency order
    outputs: dict[str, Output]
    rules: dict[str, Rule]
    references: dict[str, dict[str, str]]
    functions: dict[str, FunctionSpec]
    indicators: dict[str, IndicatorSpec]
    cases: dict[str, Case]
    population: Any = None  # checking.population.Population, when the policy has a population stage
    notes: Annotations = field(default_factory=Annotations)
    warnings: list[Diagnostic] = field(default_factory=list)
    test_errors: list[Diagnostic] = field(default_factory=list)  # in test cases and fixtures only
    acknowledged: list[Diagnostic] = field(default_factory=list)  # warnings the policy allows (`hint`: the reason)
    checks: dict[str, Check] = field(default_factory=dict)  # conditions each record must meet first
    words: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    """Texts for people by what they describe (`output:tpp.diterima`, `value:predikat.baik`), then
    `label` or `penjelasan`, then language (checking.words)."""
    changeable: dict[str, Any] = field(default_factory=dict)
    """The inputs a person can change, by path (`dapat_diubah:`, checking.changes.Changeable)."""

    @property
    def id(self) -> str:
        return self.assembled.id


class Context:
    def __init__(self, policy: Assembled) -> None:
        self.policy = policy
        self.diags: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.test_diags: list[Diagnostic] = []

    def error(self, code: str, message: str, span: Span | None, hint: str = "") -> None:
        self.diags.append(Diagnostic(code=code, message=message, span=span, hint=hint))

    def test_error(self, code: str, message: str, span: Span | None, hint: str = "") -> None:
        """A mistake in a test case or fixture: it fails `check`, but never keeps the policy out of service."""
        self.test_diags.append(Diagnostic(code=code, message=message, span=span, hint=hint))

    def at(self, item: Item | RowItem, *sub: str | int) -> Span:
        return item.source.key_span((*item.path, *sub))

    def parse(self, text: Any, source: SourceFile, path: Path_, start: str = "expression") -> Any:
        if isinstance(text, bool):
            text = "true" if text else "false"
        elif text is None:
            text = "null"
        elif isinstance(text, (int, Decimal)):
            text = str(text)
        elif isinstance(text, dt.date):
            text = f'date("{text.isoformat()}")'
        if not isinstance(text, str):
            self.error("E100", f"expected an expression, not {type(text).__name__}", source.key_span(path))
            return None
        try:
            return parse(text, start)
        except ExpressionSyntaxError as exc:
            span = source.expression_span(path, exc.line, exc.column, exc.width)
            self.error("E100", f"syntax error: {exc.message}", span)
            return None

    def problem(self, exc: TypeProblem, source: SourceFile, path: Path_) -> None:
        line, col, end_line, end_col = exc.pos
        width = end_col - col if end_line == line else 1
        self.diags.append(Diagnostic(code=exc.code, message=exc.message,
                                     span=source.expression_span(path, line, col, width), hint=exc.hint))
