"""Check what exact arithmetic needs: whole rupiah, repeating table inputs, declared ranges; and point a gap an
added enumeration value opens at the extension."""

from __future__ import annotations

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
        if output.type.kind == Kind.MONEY:
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
