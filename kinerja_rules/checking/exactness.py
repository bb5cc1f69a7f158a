"""Check what exact arithmetic needs: whole rupiah, repeating table inputs, declared ranges; and point a gap an
added enumeration value opens at the extension."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from kinerja_rules import nodes as n
from kinerja_rules.analysis import Facts
from kinerja_rules.assemble import Assembled
from kinerja_rules.checking.model import Context, Definition, Output, Param
from kinerja_rules.documents import Item
from kinerja_rules.errors import Diagnostic
from kinerja_rules.schema import Field
from kinerja_rules.tables import Table
from kinerja_rules.typecheck import Annotations
from kinerja_rules.types import Kind

# ---- exactness: whole rupiah, repeating table inputs, declared ranges ---------------

def check_exactness(ctx: Context, items: dict[str, dict[str, Item]], root: Field, params: dict[str, Param],  # noqa: C901
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
    exprs = {name: d.expr for name, d in definitions.items()}
    facts = Facts(notes, exprs, {name: values(p) for name, p in params.items()}, table_values, input_field)
    period_facts = [(date, Facts(notes, exprs, values_then, table_values, input_field, keyed_then))
                    for date, values_then, keyed_then in _periods(params)]
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
        if output.type.kind == Kind.MONEY:
            reason = facts.not_whole(output.expr)
            if reason is not None:
                ctx.error("E134", f"money output {name!r} is not provably whole rupiah: {reason}",
                          item.source.value_span((*item.path, "expr")),
                          f"round it: floor({output.text.strip()}), ceil(…) or round(…, 0, half_up)")
        if output.low is None and output.high is None:
            continue
        _check_range(ctx, name, output, item, items, params, definitions, period_facts)


def _periods(params: dict[str, Param]) -> list[tuple[dt.date, dict[str, tuple[Any, ...]],
                                                       dict[tuple[str, str], tuple[Any, ...]]]]:
    """Each effective period (from each date any parameter changes) with the values then in force,
    and each key's value of a keyed parameter: a range is judged within one period, never mixing a
    value of one date with another's."""
    def flat(value: Any) -> tuple[Any, ...]:
        return tuple(value.values()) if isinstance(value, dict) else (value,)

    dates = sorted({d for p in params.values() for d, _ in p.dated}) or [dt.date.min]
    out = []
    for date in dates:
        values: dict[str, tuple[Any, ...]] = {}
        keyed: dict[tuple[str, str], tuple[Any, ...]] = {}
        for name, p in params.items():
            current = [v for d, v in p.dated if d <= date][-1:] or [v for _, v in p.dated[:1]]
            values[name] = tuple(x for v in current for x in flat(v))
            for v in current:
                if isinstance(v, dict):
                    keyed.update({(name, str(k)): (x,) for k, x in v.items()})
        out.append((date, values, keyed))
    return out


def _check_range(ctx: Context, name: str, output: Output, item: Item, items: dict[str, dict[str, Item]],
                 params: dict[str, Param], definitions: dict[str, Definition],
                 period_facts: list[tuple[dt.date, Facts]]) -> None:
    """W135 when in some period the output can leave its declared range; placed on this policy's own
    line that it reads (an override) when the output is inherited."""
    assert output.expr is not None
    for bound, lowest in ((output.low, True), (output.high, False)):
        if bound is None:
            continue
        worst: tuple[dt.date, Any] | None = None
        for date, facts in period_facts:
            found = facts.range(output.expr)
            reach = (found.low if lowest else found.high).extreme(lowest)
            if reach is not None and (reach >= bound if lowest else reach <= bound):
                continue
            if worst is None or reach is None or worst[1] is not None and (reach < worst[1] if lowest
                                                                         else reach > worst[1]):
                worst = (date, reach)
        if worst is None:
            continue
        date, reach = worst
        side = "below its 'min'" if lowest else "above its 'max'"
        what = (f"can reach {_show(reach)}, {side} {bound}" if reach is not None
                else f"cannot be shown to stay {'>=' if lowest else '<='} {bound}")
        when = f" from {date}" if len(period_facts) > 1 and date != dt.date.min else ""
        span = item.source.value_span((*item.path, "expr"))
        cause = _own_cause(ctx, output, items, definitions) if item.source.name not in ctx.policy.own_files else None
        if cause is not None:  # said where this policy changed what the inherited output reads
            kind = "parameter" if cause.section == "parameters" else "definition"
            what = f"{what}; it is inherited (at {span}) and reads this {kind}, {cause.name!r}"
            span = cause.source.key_span(cause.path)
        ctx.warnings.append(Diagnostic(
            code="W135", severity="warning", message=f"output {name!r} of policy {ctx.policy.id!r}{when} {what}",
            span=span, hint="a record outside the range is an error for that record; check the definitions it "
                            "reads, above all any that this policy overrides; acknowledge a range you have "
                            "checked with allow: [{code: W135, output: " + name + ", reason: …}]"))


def _own_cause(ctx: Context, output: Output, items: dict[str, dict[str, Item]],
               definitions: dict[str, Definition]) -> Item | None:
    """The first of this policy's own parameters or definitions that an inherited output reads."""
    seen: set[tuple[str, str]] = set()
    stack = sorted(output.deps)
    while stack:
        dep = stack.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        kind, name = dep
        section = {"param": "parameters", "def": "definitions"}.get(kind)
        own = items.get(section, {}).get(name) if section else None
        if own is not None and own.source.name in ctx.policy.own_files:
            return own
        if kind == "def" and name in definitions:
            stack += sorted(definitions[name].deps)
    return None


def _show(value: Any) -> str:
    return str(value) if value.denominator == 1 else f"{float(value):.6g}"


def _reads_var(expr: n.Expr, var: str, notes: Annotations) -> bool:
    if isinstance(expr, n.Name) and notes.names.get(id(expr)) == ("var", var):
        return True
    return any(_reads_var(child, var, notes) for child in n.children(expr))


def point_at_extensions(ctx: Context, policy: Assembled) -> None:
    """Report a gap the child's added enumeration values open in a parent's item at the child's extension line."""
    extensions = [item for item in policy.items["types"].values()
                  if item.added and item.source.name in policy.own_files]
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
