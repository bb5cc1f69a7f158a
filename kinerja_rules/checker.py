"""Check an assembled policy completely before anything is compiled.

Every problem becomes a Diagnostic with its `file:line:col`; the checker keeps going
after an error (a failed definition gets the type `any`, so one mistake does not
cascade), and returns all diagnostics at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from kinerja_rules import nodes as n
from kinerja_rules import types as t
from kinerja_rules._suggest import did_you_mean
from kinerja_rules.analysis import Facts
from kinerja_rules.assemble import Assembled, RowItem
from kinerja_rules.documents import FieldSpec, Item, RowSpec, TableSpec
from kinerja_rules.errors import Diagnostic, Span
from kinerja_rules.functions import FunctionSpec, IndicatorSpec
from kinerja_rules.loader import Path_, SourceFile
from kinerja_rules.numbers import RANGE_MESSAGE, in_range
from kinerja_rules.parser import ExpressionSyntaxError, parse
from kinerja_rules.schema import Field, SchemaProblem, build_validator, resolve_field
from kinerja_rules.tables import AGGREGATIONS, HIT_POLICIES, Row, Table, analyse
from kinerja_rules.typecheck import Annotations, Checker, Keyed, Scope, TableSig, TypeProblem
from kinerja_rules.types import Type

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
class Case:
    name: str
    record: dict[str, Any]
    as_of: dt.date | None
    expect: dict[str, Any] | None
    expect_error: str | None
    origin: Span
    doc: str


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
    notes: Annotations = field(default_factory=Annotations)
    warnings: list[Diagnostic] = field(default_factory=list)
    test_errors: list[Diagnostic] = field(default_factory=list)  # in test cases and fixtures only

    @property
    def id(self) -> str:
        return self.assembled.id


class _Ctx:
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


def check(policy: Assembled, functions: dict[str, FunctionSpec],
          indicators: dict[str, IndicatorSpec] | None = None) -> tuple[CheckedPolicy | None, list[Diagnostic]]:
    """Check one assembled policy; returns it checked, or None and its diagnostics."""
    ctx = _Ctx(policy)
    items = policy.items
    notes = Annotations()
    references = _references(ctx, items["references"])
    for section in ("parameters", "definitions", "tables", "outputs", "rules"):
        for item in items[section].values():
            _check_cite(ctx, item, references)

    named = _types(ctx, items["types"])
    root = _inputs(ctx, items["inputs"], named)
    input_types = dict(root.type.fields)
    _check_header(ctx, policy, input_types)

    params = _parameters(ctx, items["parameters"], named, policy)
    param_types: dict[str, Type | Keyed] = {
        p.name: (Keyed(p.key, p.type) if p.key is not None else p.type) for p in params.values()}
    indicator_specs = dict(indicators or {})
    indicator_types = _indicator_types(ctx, indicator_specs, input_types, policy)

    names_by_section = {s: set(items[s]) for s in ("parameters", "definitions", "tables")}
    _clashes(ctx, policy, input_types, names_by_section, functions, indicator_types)

    # tables need their signatures before definitions are checked
    table_specs: dict[str, tuple[Item, tuple[tuple[str, Type], ...], Type, Type]] = {}
    sigs: dict[str, TableSig] = {}
    for name, item in items["tables"].items():
        sig = _table_signature(ctx, item, named)
        if sig is not None:
            table_specs[name] = (item, *sig)
            sigs[name] = TableSig(sig[0], sig[2])
        else:  # a broken table is still known, so its calls are not reported as unknown functions
            sigs[name] = TableSig((), t.ANY, broken=True)

    def_items = items["definitions"]
    def_types: dict[str, Type] = {}
    state: dict[str, str] = {}
    stack: list[str] = []
    definitions: dict[str, Definition] = {}

    def definition(name: str) -> Type | None:
        if name not in def_items:
            return None
        if state.get(name) == "done":
            return def_types[name]
        if state.get(name) == "active":
            cycle = stack[stack.index(name):] + [name]
            raise TypeProblem(f"definitions depend on each other in a cycle: {' -> '.join(cycle)}",
                              (1, 1, 1, 1), "E120")
        state[name] = "active"
        stack.append(name)
        try:
            def_types[name] = _definition(ctx, def_items[name], scope, notes, named, definitions)
        finally:
            stack.pop()
            state[name] = "done"
            def_types.setdefault(name, t.ANY)  # a failed definition must not cascade
        return def_types[name]

    scope = Scope(input_types, param_types, sigs, functions, indicator_types, definition, lambda: list(def_items))
    for name in def_items:
        try:
            definition(name)
        except TypeProblem as exc:  # a cycle reported at the definition that closes it
            ctx.problem(exc, def_items[name].source, (*def_items[name].path, "expr"))

    tables: dict[str, Table] = {}
    for name, (item, inputs, output, returns) in table_specs.items():
        table = _table(ctx, item, policy.rows.get(name, []), inputs, output, returns, scope, notes)
        if table is not None:
            tables[name] = table

    outputs = _outputs(ctx, items["outputs"], scope, notes, named)
    rules = _rules(ctx, items["rules"], scope, notes, outputs)
    for rule in rules.values():
        for out_name, _ in rule.then:
            if out_name in outputs:
                o = outputs[out_name]
                outputs[out_name] = dataclasses.replace(o, rules=o.rules + (rule.name,))
    for o in outputs.values():
        if o.expr is None and not o.rules:
            src = items["outputs"][o.name]
            ctx.error("E131", f"output {o.name!r} has no 'expr' and no rule adds to it", ctx.at(src))

    _exactness(ctx, items, root, params, tables, definitions, outputs, notes)
    cases = _cases(ctx, items["fixtures"], items["tests"], outputs)
    all_deps: set[tuple[str, str]] = set()
    for group in (definitions.values(), outputs.values(), rules.values(), tables.values()):
        for thing in group:
            all_deps |= thing.deps
    used_functions = {name: spec for name, spec in functions.items() if ("func", name) in all_deps}
    indicator_specs = {name: spec for name, spec in indicator_specs.items() if ("indicator", name) in all_deps}
    for spec in indicator_specs.values():
        _check_indicator_source(ctx, policy, spec, input_types)
    _point_at_extensions(ctx, policy)
    if ctx.diags:
        return None, ctx.diags + ctx.test_diags
    checked = CheckedPolicy(
        assembled=policy, input=root, params=params, tables=tables, definitions=definitions,
        outputs=outputs, rules=rules, references=references, functions=used_functions,
        indicators=indicator_specs, cases=cases, notes=notes, warnings=ctx.warnings, test_errors=ctx.test_diags)
    return checked, []


# ---- exactness: whole rupiah, repeating table inputs, declared ranges ---------------

def _exactness(ctx: _Ctx, items: dict[str, dict[str, Item]], root: Field, params: dict[str, Param],
               tables: dict[str, Table], definitions: dict[str, Definition], outputs: dict[str, Output],
               notes: Annotations) -> None:
    def input_field(path: str) -> Field | None:
        field: Field | None = root
        for part in path.split("."):
            field = dict(field.fields).get(part) if field is not None else None
        return field

    def values(param: Param) -> tuple[Any, ...]:
        return tuple(v for _, value in param.dated for v in (value.values() if isinstance(value, dict) else [value]))

    table_values = {name: tuple(row.then for row in table.rows) + ((table.default,) if table.default else ())
                    for name, table in tables.items()}
    facts = Facts(notes, {name: d.expr for name, d in definitions.items()},
                  {name: values(p) for name, p in params.items()}, table_values, input_field)
    for table_name, index in sorted(notes.rational_args):
        table = tables.get(table_name)
        if table is None:
            continue
        arg = table.inputs[index][0]
        for row in table.rows:
            if _reads_var(row.then, arg, notes):
                ctx.error("E133", f"row {row.name!r} of table {table_name!r} gives back its input {arg!r}, which a "
                          "call passes as a value that may be a repeating decimal", ctx.at(items["tables"][table_name]),
                          "round the argument where the table is called")
    for name, output in outputs.items():
        item = items["outputs"][name]
        if output.expr is None:
            continue
        if output.type.kind == "money":
            reason = facts.not_whole(output.expr)
            if reason is not None:
                ctx.error("E134", f"money output {name!r} is not provably whole rupiah: {reason}",
                          item.source.value_span((*item.path, "expr")),
                          f"round it: floor({output.text.strip()}), ceil(…) or round(…, 0, half_up)")
        if output.low is None and output.high is None:
            continue
        found = facts.range(output.expr)
        for bound, form, lowest in ((output.low, found.low, True), (output.high, found.high, False)):
            if bound is None:
                continue
            reach = form.extreme(lowest)
            if reach is not None and (reach >= bound if lowest else reach <= bound):
                continue
            side = "below its 'min'" if lowest else "above its 'max'"
            what = (f"can reach {_show(reach)}, {side} {bound}" if reach is not None
                    else f"cannot be shown to stay {'>=' if lowest else '<='} {bound}")
            ctx.warnings.append(Diagnostic(
                code="W135", severity="warning", message=f"output {name!r} of policy {ctx.policy.id!r} {what}",
                span=item.source.value_span((*item.path, "expr")),
                hint="a record outside the range is an error for that record; check the definitions it reads, "
                     "above all any that this policy overrides"))


def _show(value: Any) -> str:
    return str(value) if value.denominator == 1 else f"{float(value):.6g}"


def _reads_var(expr: n.Expr, var: str, notes: Annotations) -> bool:
    if isinstance(expr, n.Name) and notes.names.get(id(expr)) == ("var", var):
        return True
    return any(_reads_var(child, var, notes) for child in n.children(expr))


def _point_at_extensions(ctx: _Ctx, policy: Assembled) -> None:
    """Report a gap the child's added enumeration values open in a parent's item at the child's extension line."""
    extensions = [item for item in policy.items["types"].values() if item.added and item.source.name in policy.own_files]
    if not extensions:
        return
    first = extensions[0]
    names = ", ".join(repr(item.name) for item in extensions)
    added = {v for item in extensions for v in item.added}
    for i, d in enumerate(ctx.diags):
        about = d.code in ("E119", "E201") or any(re.search(rf"\b{re.escape(v)}\b", d.message) for v in added)
        if about and d.span is not None and d.span.file not in policy.own_files:
            ctx.diags[i] = Diagnostic(
                code=d.code, message=f"{d.message} (in {d.span}, inherited; {policy.id!r} extends {names})",
                span=first.source.key_span(first.path), severity=d.severity,
                hint=d.hint or "cover the added values there: override that item, or extend its keyed values")


# ---- header, references, citations ---------------------------------------------

def _check_header(ctx: _Ctx, policy: Assembled, inputs: dict[str, Type]) -> None:
    src = policy.header_source
    if policy.effective is None:
        ctx.error("E030", f"policy {policy.id!r} needs 'effective: YYYY-MM-DD' (the date its rules start)",
                  src.key_span(("policy",)))
    if policy.period is not None:
        ptype = inputs.get(policy.period)
        if ptype is None or ptype.kind not in ("text", "date"):
            ctx.error("E031", f"'period' must name a text (YYYY-MM) or date input, not {policy.period!r}"
                      f"{did_you_mean(policy.period, inputs)}", src.value_span(("period",)))


def _references(ctx: _Ctx, items: dict[str, Item]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, item in items.items():
        value = item.spec
        if isinstance(value, str):
            out[name] = {"title": value}
        elif isinstance(value, dict) and isinstance(value.get("title"), str) and set(value) <= {"title", "url"}:
            out[name] = {k: str(v) for k, v in value.items()}
        else:
            ctx.error("E032", f"reference {name!r} must be text, or a mapping with 'title' (and 'url')", ctx.at(item))
    return out


def _check_cite(ctx: _Ctx, item: Item, references: dict[str, dict[str, str]]) -> None:
    cite = getattr(item.spec, "cite", "")
    if not cite:
        return
    first = cite.split()[0]
    if first not in references:
        ctx.error("E033", f"cite names an unknown reference {first!r}{did_you_mean(first, references)}",
                  item.source.value_span((*item.path, "cite")), "declare it under 'references:'")


def cite_text(cite: str, references: dict[str, dict[str, str]]) -> str:
    """A citation as a reader sees it: the reference's title and any pinpoint."""
    if not cite:
        return ""
    first, _, rest = cite.partition(" ")
    title = references.get(first, {}).get("title", first)
    return f"{title}, {rest}" if rest else title


# ---- types and inputs -----------------------------------------------------------

def _types(ctx: _Ctx, items: dict[str, Item]) -> dict[str, Field]:
    named: dict[str, Field] = {}
    for name, item in items.items():
        resolved = _type_decl(ctx, name, item, named)
        # a broken type is still known (as `any`), so its uses are not reported as unknown types
        named[name] = resolved or Field(type=Type(kind="any", name=name), spec=FieldSpec(type="any"))
    return named


def _type_decl(ctx: _Ctx, name: str, item: Item, named: dict[str, Field]) -> Field | None:
    decl = item.spec
    if (decl.values is None) == (decl.fields is None):
        ctx.error("E040", f"type {name!r} needs exactly one of 'values' (an enumeration) or 'fields' (a record)",
                  ctx.at(item))
        return None
    if decl.values is not None:
        if not decl.values or len(set(decl.values)) != len(decl.values):
            ctx.error("E040", f"type {name!r} needs distinct values", ctx.at(item, "values"))
            return None
        spec = FieldSpec(type="enum", values=[str(v) for v in decl.values], doc=decl.doc)
    else:
        spec = FieldSpec(type="record", fields=decl.fields, doc=decl.doc)
    try:
        resolved = resolve_field(spec, named)
    except SchemaProblem as exc:
        ctx.error("E041", str(exc), ctx.at(item))
        return None
    return msgspec.structs.replace(resolved, type=msgspec.structs.replace(resolved.type, name=name))


def _inputs(ctx: _Ctx, items: dict[str, Item], named: dict[str, Field]) -> Field:
    fields: list[tuple[str, Field]] = []
    for name, item in items.items():
        try:
            resolved = _resolve_located(item.spec, named)
        except _Located as exc:
            ctx.error("E042", exc.message, item.source.key_span((*item.path, *exc.path)))
            fields.append((name, Field(type=t.ANY, spec=item.spec)))  # known, so its uses are not unknown
            continue
        if resolved.spec.default is not msgspec.UNSET and resolved.spec.default is not None:
            problems: list[Any] = []
            build_validator(resolved)(resolved.spec.default, name, problems)
            if problems:
                ctx.error("E043", f"default of {name!r}: {problems[0].message}", ctx.at(item, "default"))
        fields.append((name, resolved))
    record = Type(kind="record", name="record", fields=tuple((k, f.type) for k, f in fields))
    return Field(type=record, spec=FieldSpec(type="record"), fields=tuple(fields))


class _Located(Exception):
    def __init__(self, message: str, path: Path_) -> None:
        self.message = message
        self.path = path


def _resolve_located(spec: FieldSpec, named: dict[str, Field], path: Path_ = ()) -> Field:
    """resolve_field, reporting the nested key where a problem sits."""
    for sub_name, sub in (spec.fields or {}).items():
        _resolve_located(sub, named, (*path, "fields", sub_name))
    if spec.items is not None:
        _resolve_located(spec.items, named, (*path, "items"))
    try:
        return resolve_field(spec, named)
    except SchemaProblem as exc:
        raise _Located(str(exc), (*path, exc.key)) from None


# ---- parameters -------------------------------------------------------------------

class _BarePercent(ValueError):
    """A bare number above 1 where a percent is expected: 10 would silently mean 1000 %."""

    def __init__(self, value: Any) -> None:
        super().__init__(f"a bare {value} here means {value * 100}%")
        self.hint = f"write {value}% for {value} percent (a bare fraction such as 0.6 means 60%)"


def _bare_percent(node: n.Expr | None) -> Any:
    """The value of a bare numeric literal above 1 (where a percent is expected), else None."""
    if isinstance(node, n.Literal) and node.kind in ("integer", "decimal") and node.value > 1:
        return node.value
    return None


def _scalar_value(raw: Any, kind: Type) -> Any:
    if kind.kind == "percent" and isinstance(raw, (int, Decimal)) and not isinstance(raw, bool) and raw > 1:
        raise _BarePercent(raw)
    if isinstance(raw, str) and kind.numeric:
        text = raw.replace("_", "").strip()
        scale = Decimal(1)
        if text.endswith("%"):
            text, scale = text[:-1].strip(), Decimal("0.01")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{raw!r} is not a number") from None
        if not in_range(number):
            raise ValueError(f"{raw!r} {RANGE_MESSAGE}")
        raw = number * scale
        if kind.kind == "integer" and raw == raw.to_integral_value():
            raw = int(raw)
    if raw is None and kind.optional:
        return None
    if kind.kind == "enum":
        if raw not in kind.values:
            raise ValueError(f"{raw!r} is not a value of {kind.name}{did_you_mean(str(raw), kind.values)}")
        return raw
    field = Field(type=kind.required(), spec=FieldSpec(type=str(kind)))
    problems: list[Any] = []
    value = build_validator(field)(raw, "", problems)
    if problems:
        raise ValueError(problems[0].message)
    if kind.kind == "money" and value == value.to_integral_value():
        return int(value)  # whole rupiah stay integers, so money arithmetic stays in int where it can
    return value


def _key_value(raw: str, key: Type) -> Any:
    if key.kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"key {raw!r} is not a whole number") from None
    if key.kind == "enum":
        if raw not in key.values:
            raise ValueError(f"key {raw!r} is not a value of {key.name}{did_you_mean(raw, key.values)}")
        return raw
    return raw


def _parameters(ctx: _Ctx, items: dict[str, Item], named: dict[str, Field], policy: Assembled) -> dict[str, Param]:
    named_types = {k: f.type for k, f in named.items()}
    out: dict[str, Param] = {}
    for name, item in items.items():
        spec = item.spec
        if spec.type is None:
            ctx.error("E050", f"parameter {name!r} needs a 'type'", ctx.at(item))
            continue
        try:
            ptype = t.parse_type(spec.type, named_types)
            key = t.parse_type(spec.key, named_types) if spec.key is not None else None
        except t.TypeSyntaxError as exc:
            ctx.error("E050", str(exc), ctx.at(item, "type" if "key" not in str(exc) else "key"))
            continue
        if key is not None and key.kind not in ("integer", "enum", "text"):
            ctx.error("E050", f"a parameter key must be integer, text or an enumeration, not {key}", ctx.at(item, "key"))
            continue
        dated: list[tuple[dt.date, Any]] = []
        ok = True
        for date_text, raw in spec.values.items():
            vpath = (*item.path, "values", date_text)
            if not _DATE_RE.match(date_text):
                ctx.error("E051", f"{date_text!r} is not an effective date (YYYY-MM-DD)", item.source.key_span(vpath))
                ok = False
                continue
            try:
                when = dt.date.fromisoformat(date_text)
            except ValueError:
                ctx.error("E051", f"{date_text!r} is not a real date", item.source.key_span(vpath))
                ok = False
                continue
            try:
                if key is None:
                    value = _scalar_value(raw, ptype)
                else:
                    if not isinstance(raw, dict):
                        raise _Bad("a keyed parameter needs a mapping of key: value for each date", vpath)
                    value = {}
                    for k, v in raw.items():
                        try:
                            value[_key_value(str(k), key)] = _scalar_value(v, ptype)
                        except _BarePercent as exc:
                            ctx.error("E057", f"parameter {name!r} on {date_text}, key {k}: {exc}",
                                      item.source.value_span((*vpath, k)), exc.hint)
                            ok = False
                        except ValueError as exc:
                            raise _Bad(str(exc), (*vpath, k)) from None
            except _BarePercent as exc:
                ctx.error("E057", f"parameter {name!r} on {date_text}: {exc}", item.source.value_span(vpath),
                          exc.hint)
                ok = False
                continue
            except ValueError as exc:
                ctx.error("E052", f"parameter {name!r} on {date_text}: {exc}", item.source.value_span(vpath))
                ok = False
                continue
            except _Bad as exc:
                ctx.error("E052", f"parameter {name!r} on {date_text}: {exc.message}", item.source.key_span(exc.path))
                ok = False
                continue
            dated.append((when, value))
        if not dated and ok:
            ctx.error("E053", f"parameter {name!r} has no values", ctx.at(item, "values"))
        if not ok or not dated:  # still known by its type, so its uses are not reported as unknown
            out[name] = Param(name=name, type=ptype, key=key, dated=(), cite=spec.cite, doc=spec.doc)
            continue
        dated.sort(key=lambda pair: pair[0])
        if policy.effective is not None and dated[0][0] > policy.effective:
            ctx.error("E053", f"parameter {name!r} has no value in force on {policy.effective} (the policy's "
                      f"'effective' date); its first value starts {dated[0][0]}", ctx.at(item, "values"))
        if key is not None:
            _key_coverage(ctx, item, name, key, dated)
        out[name] = Param(name=name, type=ptype, key=key, dated=tuple(dated), cite=spec.cite, doc=spec.doc)
    return out


class _Bad(Exception):
    def __init__(self, message: str, path: Path_) -> None:
        self.message = message
        self.path = path


def _key_coverage(ctx: _Ctx, item: Item, name: str, key: Type, dated: list[tuple[dt.date, Any]]) -> None:
    first_keys = set(dated[0][1])
    for when, table in dated:
        keys = set(table)
        if key.kind == "enum":
            missing = [v for v in key.values if v not in keys]
            if missing:
                ctx.error("E054", f"parameter {name!r} on {when} has no value for {', '.join(missing)}",
                          item.source.key_span((*item.path, "values", when.isoformat())))
        elif keys != first_keys:
            lost = sorted(first_keys - keys, key=str)
            gained = sorted(keys - first_keys, key=str)
            what = "; ".join(x for x in (f"drops {lost}" if lost else "", f"adds {gained}" if gained else "") if x)
            ctx.error("E054", f"parameter {name!r} on {when} has other keys than on {dated[0][0]}: {what}",
                      item.source.key_span((*item.path, "values", when.isoformat())))


def _indicator_types(ctx: _Ctx, specs: dict[str, IndicatorSpec], inputs: dict[str, Type],
                     policy: Assembled) -> dict[str, Type]:
    return {name: t.parse_type(spec.returns, {}) for name, spec in specs.items()}


def _check_indicator_source(ctx: _Ctx, policy: Assembled, spec: IndicatorSpec, inputs: dict[str, Type]) -> None:
    """A used indicator needs its source in the record, with the type the plugin expects."""
    head, *rest = spec.source.split(".")
    current: Type | None = inputs.get(head)
    for part in rest:
        current = current.required().field(part) if current is not None and current.kind == "record" else None
    want = t.parse_type(spec.source_type, {})
    if current is None or not t.assignable(current.required(), want.required()):
        found = f"it is {current}" if current is not None else "the policy has no such input"
        ctx.error("E056", f"indicator {spec.name!r} of plugin {spec.plugin!r} reads input {spec.source!r} as "
                  f"{want}, but {found}", policy.header_source.key_span(("policy",)))


def _clashes(ctx: _Ctx, policy: Assembled, inputs: dict[str, Type], sections: dict[str, set[str]],
             functions: dict[str, FunctionSpec], indicators: dict[str, Type]) -> None:
    seen: dict[str, str] = {name: "input" for name in inputs}
    seen["as_of"] = "built-in"
    for name in indicators:
        seen.setdefault(name, "indicator")
    for section in ("parameters", "definitions", "tables"):
        for name in sections[section]:
            other = seen.get(name) or ("function" if name in functions else None)
            if other is not None:
                item = policy.items[section][name]
                ctx.error("E055", f"{section[:-1]} {name!r} has the same name as a{'n' if other[0] in 'aeiou' else ''} "
                          f"{other}; names must be unique", ctx.at(item))
            else:
                seen[name] = section[:-1]


# ---- definitions ------------------------------------------------------------------

def _definition(ctx: _Ctx, item: Item, scope: Scope, notes: Annotations, named: dict[str, Field],
                out: dict[str, Definition]) -> Type:
    spec = item.spec
    expr = ctx.parse(spec.expr, item.source, (*item.path, "expr"))
    declared = _declared(ctx, item, spec.type, named)
    if expr is None:
        return declared or t.ANY
    checker = Checker(scope, notes, item.name.split("@")[0], item.replaces)
    try:
        if declared is not None:
            got = checker.expect(expr, declared, {}, f"definition {item.name!r}")
        else:
            got = checker.check(expr)
    except TypeProblem as exc:
        if exc.code == "E120":
            raise
        ctx.problem(exc, item.source, (*item.path, "expr"))
        return declared or t.ANY
    final = t.carry(declared, got) if declared is not None else got
    out[item.name] = Definition(name=item.name, type=final, expr=expr, text=str(spec.expr), cite=spec.cite,
                                doc=spec.doc, deps=frozenset(checker.deps), origin=ctx.at(item))
    return final


def _declared(ctx: _Ctx, item: Item, text: str | None, named: dict[str, Field]) -> Type | None:
    if text is None:
        return None
    try:
        return t.parse_type(text, {k: f.type for k, f in named.items()})
    except t.TypeSyntaxError as exc:
        ctx.error("E050", str(exc), item.source.value_span((*item.path, "type")))
        return None


# ---- tables -------------------------------------------------------------------------

def _table_signature(ctx: _Ctx, item: Item, named: dict[str, Field]) -> tuple[tuple[tuple[str, Type], ...], Type, Type] | None:
    spec: TableSpec = item.spec
    if not spec.inputs:
        ctx.error("E060", f"table {item.name!r} needs 'inputs' (name: type)", ctx.at(item))
        return None
    if spec.output is None:
        ctx.error("E060", f"table {item.name!r} needs an 'output' type", ctx.at(item))
        return None
    hit = spec.hit or "unique"
    if hit not in HIT_POLICIES:
        ctx.error("E061", f"unknown hit policy {hit!r}{did_you_mean(hit, HIT_POLICIES)}", ctx.at(item, "hit"))
        return None
    if spec.aggregate is not None and (hit != "collect" or spec.aggregate not in AGGREGATIONS):
        ctx.error("E061", "'aggregate' is one of sum, min, max, count, and only with 'hit: collect'",
                  ctx.at(item, "aggregate"))
        return None
    named_types = {k: f.type for k, f in named.items()}
    inputs = []
    for name, text in spec.inputs.items():
        try:
            inputs.append((name, t.parse_type(str(text), named_types)))
        except t.TypeSyntaxError as exc:
            ctx.error("E050", str(exc), ctx.at(item, "inputs", name))
            return None
    try:
        output = t.parse_type(spec.output, named_types)
    except t.TypeSyntaxError as exc:
        ctx.error("E050", str(exc), item.source.value_span((*item.path, "output")))
        return None
    returns = output
    if hit == "collect":
        if spec.aggregate == "count":
            returns = t.INTEGER
        elif spec.aggregate in ("sum", "min", "max"):
            if not output.numeric:
                ctx.error("E061", f"'aggregate: {spec.aggregate}' needs a numeric output, not {output}",
                          ctx.at(item, "aggregate"))
                return None
            returns = output if spec.aggregate == "sum" else output.maybe()
        else:
            returns = t.list_of(output)
    return tuple(inputs), output, returns


def _table(ctx: _Ctx, item: Item, row_items: list[RowItem], inputs: tuple[tuple[str, Type], ...], output: Type,
           returns: Type, scope: Scope, notes: Annotations) -> Table | None:
    spec: TableSpec = item.spec
    input_names = [name for name, _ in inputs]
    env = {name: kind for name, kind in inputs}
    checker = Checker(scope, notes)
    rows: list[Row] = []
    before = len(ctx.diags)
    for row_item in row_items:
        raw = row_item.spec
        if isinstance(raw, list):
            if len(raw) != len(inputs) + 1:
                ctx.error("E062", f"row {row_item.name!r} has {len(raw)} cells; table {item.name!r} needs "
                          f"{len(inputs)} input cells and one output", ctx.at(row_item))
                continue
            cells = {name: raw[i] for i, name in enumerate(input_names)}
            cell_paths = {name: (*row_item.path, i) for i, name in enumerate(input_names)}
            then, then_path = raw[-1], (*row_item.path, len(raw) - 1)
            note = ""
        else:
            assert isinstance(raw, RowSpec)
            for key in raw.when:
                if key not in env:
                    ctx.error("E063", f"row {row_item.name!r} tests {key!r}, which is not an input of table "
                              f"{item.name!r}{did_you_mean(key, input_names)}", ctx.at(row_item, "when", key))
            cells = dict(raw.when)
            cell_paths = {name: (*row_item.path, "when", name) for name in input_names}
            if raw.then is msgspec.UNSET:
                ctx.error("E062", f"row {row_item.name!r} needs 'then'", ctx.at(row_item))
                continue
            then, then_path = raw.then, (*row_item.path, "then")
            note = raw.note
        tests: list[n.Test] = []
        for (name, kind) in inputs:
            cell = cells.get(name, "-")
            if isinstance(cell, (int, Decimal)) and not isinstance(cell, bool):
                cell = str(cell)
            elif isinstance(cell, bool):
                cell = "true" if cell else "false"
            elif cell is None:
                cell = "null"
            test = ctx.parse(cell, row_item.source, cell_paths[name], "tests")
            if test is None:
                continue
            _check_test(ctx, test, kind, name, checker, row_item.source, cell_paths[name])
            tests.append(test)
        then_expr = ctx.parse(then, row_item.source, then_path)
        if output.kind == "percent" and _bare_percent(then_expr) is not None:
            bare = _BarePercent(_bare_percent(then_expr))
            ctx.error("E057", f"row {row_item.name!r}: {bare}", row_item.source.value_span(then_path), bare.hint)
            continue
        if then_expr is not None:
            try:
                if t.repeats(checker.expect(then_expr, output, env, f"the output of row {row_item.name!r}")):
                    raise TypeProblem(f"the output of row {row_item.name!r} may be a repeating decimal",
                                      then_expr.pos, "E132", "round it explicitly, e.g. round(…, 2, half_up)")
            except TypeProblem as exc:
                ctx.problem(exc, row_item.source, then_path)
        if len(tests) == len(inputs) and then_expr is not None:
            rows.append(Row(name=row_item.name, tests=tuple(tests), then=then_expr, index=len(rows), note=note))
    default = None
    if spec.default is not msgspec.UNSET:
        default = ctx.parse(spec.default, item.source, (*item.path, "default"))
        if default is not None:
            try:
                checker.expect(default, output, env, "the table's default")
            except TypeProblem as exc:
                ctx.problem(exc, item.source, (*item.path, "default"))
    priority: tuple[Any, ...] = ()
    hit = spec.hit or "unique"
    if hit == "priority":
        if spec.priority is not None:
            priority = tuple(spec.priority)
        elif output.kind == "enum":
            priority = output.values
        else:
            ctx.error("E064", f"priority table {item.name!r} needs 'priority: [values, highest first]'", ctx.at(item))
    if not rows and len(ctx.diags) == before:
        ctx.error("E065", f"table {item.name!r} has no rows", ctx.at(item))
    if len(ctx.diags) > before:
        return None
    table = Table(name=item.name, inputs=inputs, output=output, returns=returns, hit=hit,
                  aggregate=spec.aggregate, rows=tuple(rows), default=default, priority=priority,
                  cite=spec.cite, doc=spec.doc, deps=frozenset(checker.deps))
    row_items_by_name = {r.name: r for r in row_items}
    for code, message, row in analyse(table, notes.names):
        span = ctx.at(row_items_by_name[row.name]) if row is not None else ctx.at(item)
        if code.startswith("W"):
            ctx.warnings.append(Diagnostic(code=code, message=message, span=span, severity="warning"))
        else:
            ctx.error(code, message, span)
    return table


def _check_test(ctx: _Ctx, test: n.Test, kind: Type, name: str, checker: Checker,
                source: SourceFile, path: Path_) -> None:
    if isinstance(test, n.AnyTest):
        return
    for single in test.tests:
        if kind.kind == "percent":
            for bound in (single.low, single.high) if isinstance(single, n.RangeTest) else (single.value,):
                if _bare_percent(bound) is not None:
                    bare = _BarePercent(_bare_percent(bound))
                    ctx.error("E057", f"a test of {name!r}: {bare}", source.value_span(path), bare.hint)
                    return
        try:
            if isinstance(single, n.RangeTest):
                if not (kind.numeric or kind.kind == "date"):
                    raise TypeProblem(f"a range needs a number or date input; {name!r} is {kind}", single.pos, "E066")
                checker.expect(single.low, kind.required(), {}, "a range's low end")
                checker.expect(single.high, kind.required(), {}, "a range's high end")
            elif single.op in ("=", "!="):
                checker.expect(single.value, kind, {}, f"a test of {name!r}")
            else:
                if not (kind.numeric or kind.kind in ("date", "text")):
                    raise TypeProblem(f"`{single.op}` needs an ordered input; {name!r} is {kind}", single.pos, "E066")
                checker.expect(single.value, kind.required(), {}, f"a test of {name!r}")
        except TypeProblem as exc:
            ctx.problem(exc, source, path)


# ---- outputs and rules ---------------------------------------------------------------

def _outputs(ctx: _Ctx, items: dict[str, Item], scope: Scope, notes: Annotations,
             named: dict[str, Field]) -> dict[str, Output]:
    out: dict[str, Output] = {}
    names = set(items)
    for name, item in items.items():
        for other in names:
            if other.startswith(name + "."):
                ctx.error("E130", f"output {name!r} cannot be both a value and the group of {other!r}", ctx.at(item))
        spec = item.spec
        if spec.type is None:
            ctx.error("E130", f"output {name!r} needs a 'type'", ctx.at(item))
            continue
        declared = _declared(ctx, item, spec.type, named)
        if declared is None:
            continue
        expr = None
        deps: frozenset[tuple[str, str]] = frozenset()
        if spec.expr is not None:
            expr = ctx.parse(spec.expr, item.source, (*item.path, "expr"))
            if expr is None:
                continue
            checker = Checker(scope, notes, name, item.replaces)
            try:
                got = checker.expect(expr, declared, {}, f"output {name!r}")
            except TypeProblem as exc:
                ctx.problem(exc, item.source, (*item.path, "expr"))
                continue
            if t.repeats(got):
                ctx.error("E132", f"output {name!r} may be a repeating decimal (its expression divides or takes a "
                          "mean), so its digits would depend on where it was cut",
                          item.source.value_span((*item.path, "expr")),
                          f"round it explicitly: round({str(spec.expr).strip()}, 2, half_up)")
                continue
            deps = frozenset(checker.deps)
        elif declared.kind != "list":
            ctx.error("E131", f"output {name!r} needs an 'expr' (only list outputs may be filled by rules alone)",
                      ctx.at(item))
            continue
        bounds = []
        for key in ("min", "max"):
            value = getattr(spec, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, Decimal))
                                      or not declared.numeric):
                ctx.error("E136", f"output {name!r}: {key!r} must be a number, on a numeric output", ctx.at(item, key))
                value = None
            bounds.append(Decimal(value) if value is not None else None)
        out[name] = Output(name=name, type=declared, expr=expr, text=str(spec.expr or ""), cite=spec.cite,
                           doc=spec.doc, deps=deps, rules=(), low=bounds[0], high=bounds[1])
    return out


def _rules(ctx: _Ctx, items: dict[str, Item], scope: Scope, notes: Annotations,
           outputs: dict[str, Output]) -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for name, item in items.items():
        spec = item.spec
        when = ctx.parse(spec.when, item.source, (*item.path, "when"))
        if when is None:
            continue
        checker = Checker(scope, notes)
        try:
            checker.expect(when, t.BOOLEAN, {}, f"the condition of rule {name!r}")
        except TypeProblem as exc:
            ctx.problem(exc, item.source, (*item.path, "when"))
            continue
        then: list[tuple[str, Any]] = []
        for out_name, raw in spec.then.items():
            target = outputs.get(out_name)
            span = ctx.at(item, "then", out_name)
            if target is None:
                ctx.error("E140", f"rule {name!r} adds to unknown output {out_name!r}"
                          f"{did_you_mean(out_name, outputs)}", span)
                continue
            if target.type.kind != "list" or target.type.item is None:
                ctx.error("E140", f"rule {name!r} adds to {out_name!r}, which is a {target.type}, not a list", span)
                continue
            try:
                value = _scalar_value(raw, target.type.item)
            except ValueError as exc:
                ctx.error("E141", f"rule {name!r}: {exc}", item.source.value_span((*item.path, "then", out_name)))
                continue
            then.append((out_name, value))
        out[name] = Rule(name=name, when=when, text=str(spec.when), then=tuple(then), reason=spec.reason,
                         cite=spec.cite, deps=frozenset(checker.deps))
    return out


# ---- policy tests ----------------------------------------------------------------------

def set_path(record: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b[2].c` in nested data, creating mappings on the way."""
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", dotted)
    current: Any = record
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part.startswith("["):
            idx = int(part[1:-1])
            if not isinstance(current, list) or idx >= len(current):
                raise KeyError(f"{dotted}: no item {idx}")
            if last:
                current[idx] = value
            else:
                current = current[idx]
        else:
            if not isinstance(current, dict):
                raise KeyError(f"{dotted}: {part!r} is inside a non-mapping")
            if last:
                current[part] = value
            else:
                current = current.setdefault(part, {})


def _plain(value: Any) -> Any:
    """Deep-copy YAML data into JSON-like data (dates stay dates, decimals stay exact)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _cases(ctx: _Ctx, fixtures: dict[str, Item], tests: dict[str, Item], outputs: dict[str, Output]) -> dict[str, Case]:
    out: dict[str, Case] = {}
    for name, item in fixtures.items():
        if not isinstance(item.spec, dict):
            ctx.test_error("E150", f"fixture {name!r} must be a record (a mapping)", ctx.at(item))
    for name, item in tests.items():
        spec = item.spec
        if isinstance(spec.record, str):
            fixture = fixtures.get(spec.record)
            if fixture is None:
                ctx.test_error("E151", f"test {name!r} uses unknown fixture {spec.record!r}"
                          f"{did_you_mean(spec.record, fixtures)}", item.source.value_span((*item.path, "record")))
                continue
            record = _plain(fixture.spec)
        else:
            record = _plain(spec.record)
        if not isinstance(record, dict):
            continue
        ok = True
        for dotted, value in spec.with_.items():
            try:
                set_path(record, dotted, _plain(value))
            except KeyError as exc:
                ctx.test_error("E152", f"test {name!r}: cannot set {exc.args[0]}", ctx.at(item, "with", dotted))
                ok = False
        if (spec.expect is None) == (spec.expect_error is None):
            ctx.test_error("E153", f"test {name!r} needs exactly one of 'expect' or 'expect_error'", ctx.at(item))
            continue
        for key in spec.expect or {}:
            if key not in outputs:
                ctx.test_error("E154", f"test {name!r} expects unknown output {key!r}{did_you_mean(key, outputs)}",
                          ctx.at(item, "expect", key))
                ok = False
        if ok:
            out[name] = Case(name=name, record=record, as_of=spec.as_of, expect=spec.expect,
                             expect_error=spec.expect_error, origin=ctx.at(item), doc=spec.doc)
    return out
