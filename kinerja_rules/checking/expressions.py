"""Check what computes: definitions, decision tables, outputs and rules."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import msgspec

from kinerja_rules import nodes as n
from kinerja_rules import types as t
from kinerja_rules._suggest import did_you_mean
from kinerja_rules.assemble import RowItem
from kinerja_rules.checking.declarations import BarePercent, bare_percent, scalar_value
from kinerja_rules.checking.model import Check, Context, Definition, Output, Rule
from kinerja_rules.documents import Item, RowSpec, TableSpec
from kinerja_rules.errors import Diagnostic
from kinerja_rules.loader import Path_, SourceFile
from kinerja_rules.schema import Field
from kinerja_rules.tables import AGGREGATIONS, HIT_POLICIES, Row, Table, analyse
from kinerja_rules.typecheck import Annotations, Checker, Scope, TypeProblem, path_of
from kinerja_rules.types import Kind, Type

# ---- definitions ------------------------------------------------------------------

def check_definition(ctx: Context, item: Item, scope: Scope, notes: Annotations, named: dict[str, Field],
                out: dict[str, Definition]) -> Type:
    spec = item.spec
    expr = ctx.parse(spec.expr, item.source, (*item.path, "expr"))
    declared = declared_type(ctx, item, spec.type, named)
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


def declared_type(ctx: Context, item: Item, text: str | None, named: dict[str, Field]) -> Type | None:
    if text is None:
        return None
    try:
        return t.parse_type(text, {k: f.type for k, f in named.items()})
    except t.TypeSyntaxError as exc:
        ctx.error("E050", str(exc), item.source.value_span((*item.path, "type")))
        return None


# ---- tables -------------------------------------------------------------------------

def table_signature(ctx: Context, item: Item,
                    named: dict[str, Field]) -> tuple[tuple[tuple[str, Type], ...], Type, Type] | None:
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


def check_table(ctx: Context, item: Item, row_items: list[RowItem], inputs: tuple[tuple[str, Type], ...], output: Type,  # noqa: C901
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
        if output.kind == Kind.PERCENT and bare_percent(then_expr) is not None:
            bare = BarePercent(bare_percent(then_expr))
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
        elif output.kind == Kind.ENUM:
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


def _check_test(ctx: Context, test: n.Test, kind: Type, name: str, checker: Checker,
                source: SourceFile, path: Path_) -> None:
    if isinstance(test, n.AnyTest):
        return
    for single in test.tests:
        if kind.kind == Kind.PERCENT:
            for bound in (single.low, single.high) if isinstance(single, n.RangeTest) else (single.value,):
                if bare_percent(bound) is not None:
                    bare = BarePercent(bare_percent(bound))
                    ctx.error("E057", f"a test of {name!r}: {bare}", source.value_span(path), bare.hint)
                    return
        try:
            if isinstance(single, n.RangeTest):
                if not (kind.numeric or kind.kind == Kind.DATE):
                    raise TypeProblem(f"a range needs a number or date input; {name!r} is {kind}", single.pos, "E066")
                checker.expect(single.low, kind.required(), {}, "a range's low end")
                checker.expect(single.high, kind.required(), {}, "a range's high end")
            elif single.op in ("=", "!="):
                checker.expect(single.value, kind, {}, f"a test of {name!r}")
            else:
                if not (kind.numeric or kind.kind in (Kind.DATE, Kind.TEXT)):
                    raise TypeProblem(f"`{single.op}` needs an ordered input; {name!r} is {kind}", single.pos, "E066")
                checker.expect(single.value, kind.required(), {}, f"a test of {name!r}")
        except TypeProblem as exc:
            ctx.problem(exc, source, path)


# ---- outputs and rules ---------------------------------------------------------------

def check_outputs(ctx: Context, items: dict[str, Item], scope: Scope, notes: Annotations,  # noqa: C901
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
        declared = declared_type(ctx, item, spec.type, named)
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
        elif declared.kind != Kind.LIST:
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


def check_rules(ctx: Context, items: dict[str, Item], scope: Scope, notes: Annotations,
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
            if target.type.kind != Kind.LIST or target.type.item is None:
                ctx.error("E140", f"rule {name!r} adds to {out_name!r}, which is a {target.type}, not a list", span)
                continue
            kind = target.type.item
            if kind.kind == Kind.ENUM and isinstance(raw, str) and raw not in kind.values \
                    and not did_you_mean(raw, kind.values):  # a value of its own, not a near miss of one
                ctx.warnings.append(Diagnostic(
                    code="W141", severity="warning", span=item.source.value_span((*item.path, "then", out_name)),
                    message=f"rule {name!r} adds {raw!r} to {out_name!r}, which is not a value of {kind.name}; "
                            f"declare it: types: {{{kind.name}: {{extend: true, values: [{raw}]}}}}"))
                then.append((out_name, raw))
                continue
            try:
                value = scalar_value(raw, kind)
            except ValueError as exc:
                ctx.error("E141", f"rule {name!r}: {exc}", item.source.value_span((*item.path, "then", out_name)))
                continue
            then.append((out_name, value))
        out[name] = Rule(name=name, when=when, text=str(spec.when), then=tuple(then), reason=spec.reason,
                         cite=spec.cite, deps=frozenset(checker.deps))
    return out


# ---- checks ----------------------------------------------------------------------------

_FOR = re.compile(r"\s*([a-z_][a-z0-9_]*)\s+in\s+(\S.*?)\s*\Z", re.DOTALL)
_READS_ONLY = {"input", "param", "table", "func"}  # what a check may read: it runs before any definition


def check_checks(ctx: Context, items: dict[str, Item], scope: Scope, notes: Annotations,
                 inputs: dict[str, Type]) -> dict[str, Check]:
    """Each `checks:` item: its condition a boolean over the record, parameters and tables; its
    `for` a list of the record; its `at` a field there is."""
    out: dict[str, Check] = {}
    for name, item in items.items():
        spec = item.spec
        var, over, over_path, env = "", None, "", {}
        checker = Checker(scope, notes)
        if spec.for_ is not None:
            found = _FOR.match(spec.for_)
            parsed = ctx.parse(found.group(2), item.source, (*item.path, "for")) if found else None
            if found is None or parsed is None:
                if found is None:
                    ctx.error("E145", f"check {name!r}: 'for' reads `name in list`, such as `s in skp.segmen`, "
                              f"not {spec.for_!r}", item.source.value_span((*item.path, "for")))
                continue
            var, over, over_path = found.group(1), parsed, path_of(parsed) or ""
            try:
                listed = checker.check(over)
            except TypeProblem as exc:
                ctx.problem(exc, item.source, (*item.path, "for"))
                continue
            if not over_path or ("input", over_path.split(".")[0]) not in checker.deps \
                    or listed.kind != Kind.LIST or listed.item is None:
                ctx.error("E145", f"check {name!r}: 'for' needs a list of the record (such as skp.segmen), "
                          f"not {found.group(2)!r}", item.source.value_span((*item.path, "for")))
                continue
            env = {var: listed.item, "\0" + over_path: listed.required()}  # inside the loop the list is there
        require = ctx.parse(spec.require, item.source, (*item.path, "require"))
        if require is None:
            continue
        try:
            checker.expect(require, t.BOOLEAN, env, f"the condition of check {name!r}")
        except TypeProblem as exc:
            ctx.problem(exc, item.source, (*item.path, "require"))
            continue
        other = sorted(f"{kind} {what!r}" for kind, what in checker.deps if kind not in _READS_ONLY)
        if other:
            ctx.error("E145", f"check {name!r} reads {', '.join(other).replace('def ', 'definition ')}; a check "
                      "reads only the record, parameters and tables (it runs before anything is decided)",
                      item.source.value_span((*item.path, "require")))
            continue
        at = spec.at or ""
        base = env[var] if over is not None else Type(kind=Kind.RECORD, fields=tuple(inputs.items()))
        if at and _field_at(base, at) is None:
            where = f"the items of {over_path}" if over is not None else "the record"
            ctx.error("E145", f"check {name!r}: 'at' names {at!r}, which is not a field of {where}",
                      item.source.value_span((*item.path, "at")))
            continue
        message = spec.message if isinstance(spec.message, str) else (spec.message.en or spec.message.id or "")
        if not message.strip() or len(message) > 500:
            ctx.error("E145", f"check {name!r}: its message needs a text of 1 to 500 characters",
                      item.source.value_span((*item.path, "message")))
            continue
        out[name] = Check(name=name, require=require, text=str(spec.require), message=message, at=at,
                          over=over, var=var, over_path=over_path, cite=spec.cite, deps=frozenset(checker.deps))
    return out


def _field_at(base: Type, dotted: str) -> Type | None:
    """The type of the field `a.b` of a record type, or None when there is no such field."""
    current: Type | None = base
    for part in dotted.split("."):
        if current is None or current.kind != Kind.RECORD:
            return None
        current = current.field(part)
    return current
