"""Check the population stage: grouping, group data, the quota, the assignment and the group
definitions, and split the definitions into those before the stage and those after it.

A definition that reads `population` (or reads one that does) is decided after the population
stage; every expression the stage itself evaluates may read only what is decided before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kinerja_rules import nodes as n
from kinerja_rules import types as t
from kinerja_rules._suggest import did_you_mean
from kinerja_rules.checking.declarations import inputs_field, is_quota
from kinerja_rules.checking.expressions import declared_type
from kinerja_rules.checking.model import Context, Definition, Param
from kinerja_rules.documents import Item
from kinerja_rules.population import ROUNDINGS
from kinerja_rules.schema import Field
from kinerja_rules.tables import Table
from kinerja_rules.typecheck import Annotations, Checker, Keyed, Scope, TypeProblem
from kinerja_rules.types import Kind, Type

FIXED_FIELDS = ("group", "size", "rank", "category", "seat")
"""What `population` holds besides the group definitions."""

METHODS = ("priority", "optimal")
MAX_SHORTLIST = 100
_ORDER_RE = re.compile(r"^(.*\S)\s+(desc|asc)\s*$", re.S)
ORDERABLE = frozenset({Kind.INTEGER, Kind.DECIMAL, Kind.PERCENT, Kind.MONEY, Kind.DATE, Kind.TEXT, Kind.ENUM,
                       Kind.BOOLEAN})


@dataclass(frozen=True)
class Ordering:
    expr: n.Expr
    text: str
    descending: bool


@dataclass(frozen=True)
class Quota:
    name: str  # `quota`, or its name under `quotas`
    of: n.Expr
    of_text: str
    category: Type  # the enumeration, best first
    limits: str  # the quota parameter
    key: n.Expr | None  # the key it is looked up by, over the group
    key_text: str
    mode: n.Expr
    mode_text: str
    rounding: str
    cite: str
    doc: str


@dataclass(frozen=True)
class Assignment:
    eligible: n.Expr
    eligible_text: str
    score: n.Expr
    score_text: str
    method: str
    shortlist: int
    cite: str
    doc: str


@dataclass(frozen=True)
class GroupValue:
    name: str
    type: Type
    expr: n.Expr
    text: str
    instead_of: str | None
    cite: str
    doc: str


@dataclass(frozen=True)
class Population:
    """A policy's checked population stage."""

    by: tuple[tuple[str, n.Expr], ...]  # the text of each grouping expression, and the expression
    member: n.Expr
    member_text: str
    order: tuple[Ordering, ...]
    data_key: int  # which of `by` keys the group data
    data: Field  # the group data, typed like inputs
    seats: Field | None
    quota: Quota | None  # the first of `quotas`: the one `population.category` comes from
    assignment: Assignment | None
    values: dict[str, GroupValue]
    type: Type  # the type of `population` in a definition (optional: null when a record is decided alone)
    group_type: Type
    members_type: Type
    seat_type: Type | None
    before: tuple[str, ...]  # the definitions the stage needs, decided before it, in dependency order
    members_used: bool  # whether a group definition or a quota key reads `members`
    cite: str
    doc: str
    deps: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    quotas: tuple[Quota, ...] = ()  # every quota, in the order applied


@dataclass
class Declared:
    """What the population stage declares before any expression is checked: the type of `population`."""

    type: Type | None = None
    group_type: Type = t.ANY
    seat_type: Type | None = None
    data: Field | None = None
    seats: Field | None = None
    category: Type | None = None
    limits: str | None = None
    limits_key: n.Expr | None = None
    value_types: dict[str, Type] = field(default_factory=dict)


def declare(ctx: Context, items: dict[str, dict[str, Item]], named: dict[str, Field],
            params: dict[str, Param]) -> Declared:
    """The types the population stage gives: group data, seats, the quota's category and the group
    definitions; reported where they are declared."""
    out = Declared()
    parts = items["population"]
    extra = ([s for s in ("group_data", "seats", "group_definitions") if items[s]]
             + [p for p in parts if p != "grouping"])
    if "grouping" not in parts:
        if extra:
            first = next(iter(parts.values()), None) or next(iter(items[extra[0]].values()))
            ctx.error("E160", f"{extra[0]} needs a population grouping (population: grouping: by, member, order)",
                      ctx.at(first))
        return out
    out.data = inputs_field(ctx, items["group_data"], named)
    out.group_type = Type(kind=Kind.RECORD, name="group data", fields=out.data.type.fields)
    fields: list[tuple[str, Type]] = [("group", out.group_type), ("size", t.INTEGER), ("rank", t.INTEGER)]
    firsts = quota_parts(parts)[:1]
    if firsts:
        found = _limits(ctx, firsts[0][1], params)
        if found is not None:
            out.limits, out.limits_key, out.category = found
            fields.append(("category", out.category))
    assignment = parts.get("assignment")
    if items["seats"] and assignment is None:
        ctx.error("E160", "seats are declared but no population assignment places anyone on them",
                  ctx.at(next(iter(items["seats"].values()))))
    if assignment is not None:
        if not items["seats"]:
            ctx.error("E160", "an assignment needs its seats declared (seats: id: text, …)", ctx.at(assignment))
        else:
            out.seats = inputs_field(ctx, items["seats"], named)
            if out.seats.type.field("id") is None or out.seats.type.field("id") != t.TEXT:
                ctx.error("E160", "a seat needs an 'id' of type text", ctx.at(next(iter(items["seats"].values()))))
            out.seat_type = Type(kind=Kind.RECORD, name="seat", fields=out.seats.type.fields)
            fields.append(("seat", out.seat_type.maybe()))
    for name, item in items["group_definitions"].items():
        if name in FIXED_FIELDS:
            ctx.error("E160", f"group definition {name!r} would hide population.{name}; name it otherwise",
                      ctx.at(item))
            continue
        declared = declared_type(ctx, item, item.spec.type, named)
        if declared is not None:
            out.value_types[name] = declared
            fields.append((name, declared))
    out.type = Type(kind=Kind.RECORD, name="population", fields=tuple(fields), optional=True)
    return out


def _limits(ctx: Context, item: Item, params: dict[str, Param]) -> tuple[str, n.Expr | None, Type] | None:
    """The quota parameter `limits` names, the key expression it is looked up by, and its category."""
    expr = ctx.parse(item.spec.limits, item.source, (*item.path, "limits"))
    if expr is None:
        return None
    key: n.Expr | None = None
    if isinstance(expr, n.Index) and isinstance(expr.obj, n.Name):
        name, key = expr.obj.name, expr.index
    elif isinstance(expr, n.Name):
        name = expr.name
    else:
        ctx.error("E160", "'limits' names a `quota of …` parameter, looked up by a key when it is keyed: "
                  "kurva[group.predikat_organisasi]", item.source.value_span((*item.path, "limits")))
        return None
    param = params.get(name)
    if param is None or not is_quota(param.type):
        quotas = [p for p, v in params.items() if is_quota(v.type)]
        ctx.error("E160", f"{name!r} is not a `quota of …` parameter{did_you_mean(name, quotas)}",
                  item.source.value_span((*item.path, "limits")))
        return None
    if param.key is not None and key is None:
        ctx.error("E160", f"quota parameter {name!r} is keyed by {param.key}; write {name}[key]",
                  item.source.value_span((*item.path, "limits")))
        return None
    if param.key is None and key is not None:
        ctx.error("E160", f"quota parameter {name!r} is not keyed; write {name}",
                  item.source.value_span((*item.path, "limits")))
        return None
    assert param.type.item is not None
    return name, key, param.type.item


def check_population(ctx: Context, items: dict[str, dict[str, Item]], declared: Declared, scope: Scope,  # noqa: C901
                     notes: Annotations, definitions: dict[str, Definition], tables: dict[str, Table],
                     params: dict[str, Param]) -> Population | None:
    """Check every expression of the stage and split the definitions into before and after it."""
    parts = items["population"]
    grouping = parts.get("grouping")
    if grouping is None or declared.type is None or declared.data is None:
        return None
    after = _after(definitions, tables)
    before_defs = [name for name in definitions if name not in after and "@" not in name]
    members_type = t.list_of(Type(kind=Kind.RECORD, name="member", fields=(
        *scope.inputs.items(), *((name, t.exact(definitions[name].type)) for name in before_defs))))
    group_env = {"group": declared.group_type, "members": members_type, "size": t.INTEGER}
    group_scope = Scope({}, scope.params, scope.tables, scope.functions, {}, lambda name: None, lambda: [])
    deps: set[tuple[str, str]] = set()
    used_members = False

    def check(item: Item, key: str | tuple[str, int], text: object, expected: Type | None, what: str,
              env: dict[str, Type] | None = None, on: Scope = scope,
              expr: n.Expr | None = None) -> tuple[n.Expr | None, Type]:
        nonlocal used_members
        where = (*item.path, *((key,) if isinstance(key, str) else key))
        node = expr if expr is not None else ctx.parse(text, item.source, where)
        if node is None:
            return None, t.ANY
        checker = Checker(on, notes)
        try:
            got = checker.expect(node, expected, env or {}, what) if expected is not None else \
                checker.check(node, None, env or {})
        except TypeProblem as exc:
            ctx.problem(exc, item.source, where)
            return None, t.ANY
        late = sorted(name for kind, name in checker.deps if kind == "def" and name in after)
        if ("population", "") in checker.deps or late:
            through = f" (through {', '.join(late)})" if late else ""
            ctx.error("E162", f"{what} reads `population`{through}, which the population stage decides; "
                      "it may read only what is decided before it", item.source.value_span(where))
            return None, t.ANY
        used_members = used_members or _reads(node, "members")
        deps.update(checker.deps)
        return node, got

    g = grouping.spec
    by: list[tuple[str, n.Expr]] = []
    for i, text in enumerate(g.by):
        node, got = check(grouping, ("by", i), text, None, f"grouping expression {text!r}")
        if node is not None and (got.kind not in (Kind.TEXT, Kind.INTEGER, Kind.ENUM, Kind.DATE) or got.optional):
            ctx.error("E161", f"a grouping expression names a group by text, an integer, a date or an enumeration; "
                      f"{text!r} is {got}", grouping.source.value_span((*grouping.path, "by", i)))
        elif node is not None:
            by.append((str(text).strip(), node))
    if not g.by:
        ctx.error("E160", "'by' lists at least one expression (unit_kerja)", ctx.at(grouping, "by"))
    member, got = check(grouping, "member", g.member, None, "the member expression")
    if member is not None and (got.kind not in (Kind.TEXT, Kind.INTEGER) or got.optional):
        ctx.error("E161", f"the member expression names a member by text or an integer, not {got}",
                  grouping.source.value_span((*grouping.path, "member")))
        member = None
    order: list[Ordering] = []
    for i, text in enumerate(g.order):
        match = _ORDER_RE.match(str(text))
        if match is None:
            ctx.error("E160", f"order item {text!r} ends with desc or asc (`capaian_skp desc`: highest first)",
                      grouping.source.value_span((*grouping.path, "order", i)))
            continue
        node = ctx.parse(match.group(1), grouping.source, (*grouping.path, "order", i))
        node, got = check(grouping, ("order", i), None, None, f"order item {text!r}", expr=node) if node is not None \
            else (None, t.ANY)
        if node is not None and got.kind not in ORDERABLE:
            ctx.error("E161", f"order item {text!r} must be a number, a date, text, a boolean or an enumeration, "
                      f"not {got}", grouping.source.value_span((*grouping.path, "order", i)))
        elif node is not None:
            order.append(Ordering(node, match.group(1).strip(), match.group(2) == "desc"))
    data_key = 0
    if g.data_key is not None:
        texts = [text for text, _ in by]
        if g.data_key not in texts:
            ctx.error("E160", f"'data_key' is one of the 'by' expressions{did_you_mean(g.data_key, texts)}",
                      grouping.source.value_span((*grouping.path, "data_key")))
        else:
            data_key = texts.index(g.data_key)

    quotas: list[Quota] = []
    for i, (qname, item) in enumerate(quota_parts(parts)):
        found = _limits(ctx, item, params) if i else None  # the first's, declared already (its errors said there)
        limits_name, limits_key, category = found or (declared.limits, declared.limits_key, declared.category)
        if limits_name is None or category is None or declared.category is None:
            continue
        if not t.same(category, declared.category):
            ctx.error("E160", f"quota {qname!r} limits {category}, and the policy's first quota "
                      f"{declared.category}: the quotas of one policy judge one category", ctx.at(item, "limits"))
            continue
        quota = _quota(ctx, qname, item, limits_name, limits_key, category, params, check, group_env, group_scope)
        if quota is not None:
            quotas.append(quota)
    quota = quotas[0] if quotas else None

    assignment = None
    if "assignment" in parts and declared.seat_type is not None and not _broken(declared.seat_type):
        item = parts["assignment"]
        a = item.spec
        seat_env = {"seat": declared.seat_type}
        eligible, _ = check(item, "eligible", a.eligible, t.BOOLEAN, "the assignment's 'eligible'", seat_env)
        score, got = check(item, "score", a.score, None, "the assignment's 'score'", seat_env)
        if score is not None and (not got.numeric or got.optional):
            ctx.error("E161", f"the assignment's score is a number, not {got}",
                      item.source.value_span((*item.path, "score")),
                      "give a fallback with `??` when it may be null")
            score = None
        if a.method not in METHODS:
            ctx.error("E160", f"method {a.method!r} is priority or optimal{did_you_mean(a.method, METHODS)}",
                      item.source.value_span((*item.path, "method")))
        elif not 0 <= a.shortlist <= MAX_SHORTLIST:
            ctx.error("E160", f"'shortlist' is between 0 and {MAX_SHORTLIST}",
                      item.source.value_span((*item.path, "shortlist")))
        elif eligible is not None and score is not None:
            assignment = Assignment(eligible=eligible, eligible_text=a.eligible.strip(), score=score,
                                    score_text=a.score.strip(), method=a.method, shortlist=a.shortlist,
                                    cite=a.cite, doc=a.doc)

    values: dict[str, GroupValue] = {}
    for name, item in items["group_definitions"].items() if not _broken(declared.group_type) else ():
        kind = declared.value_types.get(name)
        if kind is None:
            continue
        v = item.spec
        node, _ = check(item, "expr", v.expr, kind, f"group definition {name!r}", group_env, group_scope)
        if v.instead_of is not None and v.instead_of not in scope.inputs:
            ctx.error("E160", f"'instead_of' names an input{did_you_mean(v.instead_of, list(scope.inputs))}",
                      item.source.value_span((*item.path, "instead_of")))
        elif node is not None:
            values[name] = GroupValue(name=name, type=kind, expr=node, text=v.expr, instead_of=v.instead_of,
                                      cite=v.cite, doc=v.doc)

    if ctx.diags or member is None:
        return None
    needed = set(before_defs) if used_members else _closure(deps, definitions, tables)
    return Population(
        by=tuple(by), member=member, member_text=g.member.strip(), order=tuple(order), data_key=data_key,
        data=declared.data, seats=declared.seats, quota=quota, quotas=tuple(quotas), assignment=assignment,
        values=values,
        type=declared.type, group_type=declared.group_type, members_type=members_type,
        seat_type=declared.seat_type, before=tuple(name for name in definitions if name in needed),
        members_used=used_members, cite=g.cite, doc=g.doc, deps=frozenset(deps))


def _broken(kind: Type) -> bool:
    """Whether a declared type holds a part that failed (reported where it is declared)."""
    return kind.kind == Kind.ANY or (kind.item is not None and _broken(kind.item)) or any(
        _broken(f) for _, f in kind.fields)


def _after(definitions: dict[str, Definition], tables: dict[str, Table]) -> set[str]:
    """The definitions decided after the population stage: those that read `population`, directly,
    through another such definition or through a table whose rows do."""
    late_tables: set[str] = set()
    after: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, table in tables.items():
            if name not in late_tables and _late(table.deps, after, late_tables):
                late_tables.add(name)
                changed = True
        for name, d in definitions.items():
            if name not in after and _late(d.deps, after, late_tables):
                after.add(name)
                changed = True
    return after


def _late(deps: frozenset[tuple[str, str]], after: set[str], late_tables: set[str]) -> bool:
    return any(kind == "population" or kind == "def" and name in after or kind == "table" and name in late_tables
               for kind, name in deps)


def _closure(deps: set[tuple[str, str]], definitions: dict[str, Definition], tables: dict[str, Table]) -> set[str]:
    """The definitions `deps` read, directly or through definitions and tables."""
    found: set[str] = set()
    seen_tables: set[str] = set()
    todo = list(deps)
    while todo:
        kind, name = todo.pop()
        if kind == "def" and name not in found and name in definitions:
            found.add(name)
            todo.extend(definitions[name].deps)
        elif kind == "table" and name not in seen_tables and name in tables:
            seen_tables.add(name)
            todo.extend(tables[name].deps)
    return found


def _reads(node: n.Expr, name: str) -> bool:
    """Whether an expression names `name` anywhere (a variable of the population stage)."""
    stack: list[object] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, n.Name) and current.name == name:
            return True
        if isinstance(current, (list, tuple)):
            stack.extend(current)
        elif isinstance(current, n.Node):
            stack.extend(getattr(current, attr) for attr in current.__struct_fields__)
    return False


def quota_parts(parts: dict[str, Item]) -> list[tuple[str, Item]]:
    """The policy's quotas, in the order applied: `quota`, then each under `quotas` as declared."""
    first = [("quota", parts["quota"])] if "quota" in parts else []
    return first + [(name.split(".", 1)[1], item) for name, item in parts.items() if name.startswith("quotas.")]


def _quota(ctx: Context, qname: str, item: Item, limits_name: str, limits_key: n.Expr | None, category: Type,
           params: dict[str, Param], check: Any, group_env: dict[str, Type], group_scope: Scope) -> Quota | None:
    """One quota checked: its `of`, the key of its limits and its mode (over the group), its rounding."""
    q = item.spec
    what = "the quota" if qname == "quota" else f"quota {qname!r}"
    of, _ = check(item, "of", q.of, category, f"{what}'s 'of'")
    key_node = None
    if limits_key is not None:
        param = params[limits_name]
        assert param.key is not None
        key_node, _ = check(item, "limits", None, param.key, f"the key of {limits_name!r}", group_env,
                            group_scope, expr=limits_key)
    mode, got = check(item, "mode", q.mode, None, f"{what}'s mode", group_env, group_scope)
    if mode is not None and not (got.kind == Kind.ENUM and set(got.values) <= {"report", "enforce", "propose"}
                                 and not got.optional):
        ctx.error("E161", f"{what}'s mode is an enumeration of report, enforce and propose, not {got}",
                  item.source.value_span((*item.path, "mode")),
                  "declare e.g. `mode_kuota: {values: [report, enforce, propose]}` under types")
        return None
    if q.rounding not in ROUNDINGS:
        ctx.error("E160", f"rounding {q.rounding!r} is one of {', '.join(ROUNDINGS)}"
                  f"{did_you_mean(q.rounding, ROUNDINGS)}", item.source.value_span((*item.path, "rounding")))
        return None
    if of is None or mode is None or (key_node is None and limits_key is not None):
        return None
    return Quota(name=qname, of=of, of_text=q.of.strip(), category=category, limits=limits_name, key=key_node,
                 key_text=q.limits.strip(), mode=mode, mode_text=q.mode.strip(), rounding=q.rounding, cite=q.cite,
                 doc=q.doc)


def quota_parameters(params: dict[str, Param]) -> frozenset[str]:
    return frozenset(name for name, p in params.items() if is_quota(p.type))


def param_scope_types(params: dict[str, Param]) -> dict[str, Type | Keyed]:
    """The parameters an expression can read (a quota's limits are read by the quota only)."""
    return {p.name: (Keyed(p.key, p.type) if p.key is not None else p.type)
            for p in params.values() if not is_quota(p.type)}
