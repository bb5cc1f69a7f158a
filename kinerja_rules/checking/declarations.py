"""Check the declarations: header, references and citations, types, inputs, parameters and names."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from kinerja_rules import nodes as n
from kinerja_rules import types as t
from kinerja_rules._suggest import did_you_mean
from kinerja_rules.assemble import Assembled
from kinerja_rules.checking.model import DATE_RE, Context, Param
from kinerja_rules.documents import FieldSpec, Item
from kinerja_rules.functions import FunctionSpec, IndicatorSpec
from kinerja_rules.loader import Path_
from kinerja_rules.numbers import RANGE_MESSAGE, in_range
from kinerja_rules.population import Limit
from kinerja_rules.schema import Field, SchemaProblem, build_validator, resolve_field
from kinerja_rules.types import Kind, Type

# ---- header, references, citations ---------------------------------------------

def check_header(ctx: Context, policy: Assembled, inputs: dict[str, Type]) -> None:
    src = policy.header_source
    written = isinstance(src.data, dict) and src.data.get("effective") is not None  # but not a date: reported
    if policy.effective is None and not written:
        ctx.error("E030", f"policy {policy.id!r} needs 'effective: YYYY-MM-DD' (the date its rules start)",
                  src.key_span(("policy",)))
    for name in policy.subject or ():
        fields: dict[str, Type] | None = inputs
        kind = None
        for part in name.split("."):
            kind = fields.get(part) if fields is not None else None
            fields = dict(kind.fields) if kind is not None and kind.kind == Kind.RECORD else None
            if kind is None:
                break
        if kind is None or kind.kind in (Kind.LIST, Kind.RECORD):
            ctx.error("E034", f"subject names {name!r}, which is not " + (
                "a single value (a list or record says no one)" if kind is not None else
                f"an input{did_you_mean(name.split('.')[-1], inputs)}"), src.value_span(("subject",)))
    if policy.period is not None:
        ptype = inputs.get(policy.period)
        if ptype is None or ptype.kind not in (Kind.TEXT, Kind.DATE):
            ctx.error("E031", f"'period' must name a text (YYYY-MM) or date input, not {policy.period!r}"
                      f"{did_you_mean(policy.period, inputs)}", src.value_span(("period",)))


def check_references(ctx: Context, items: dict[str, Item]) -> dict[str, dict[str, str]]:
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


def check_cite(ctx: Context, item: Item, references: dict[str, dict[str, str]]) -> None:
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

def check_types(ctx: Context, items: dict[str, Item]) -> dict[str, Field]:
    named: dict[str, Field] = {}
    for name, item in items.items():
        resolved = _type_decl(ctx, name, item, named)
        # a broken type is still known (as `any`), so its uses are not reported as unknown types
        named[name] = resolved or Field(type=Type(kind=Kind.ANY, name=name), spec=FieldSpec(type="any"))
    return named


def _type_decl(ctx: Context, name: str, item: Item, named: dict[str, Field]) -> Field | None:
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
    if decl.highest is not None and decl.values is None:
        ctx.error("E040", f"type {name!r}: 'highest' orders an enumeration's values; a record has none",
                  ctx.at(item, "highest"))
        return None
    try:
        resolved = _resolve_located(spec, named)
    except _Located as exc:
        ctx.error("E041", exc.message, item.source.key_span((*item.path, *exc.path)))
        return None
    return msgspec.structs.replace(resolved, type=msgspec.structs.replace(resolved.type, name=name,
                                                                           highest=decl.highest or ""))


def inputs_field(ctx: Context, items: dict[str, Item], named: dict[str, Field]) -> Field:
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
    record = Type(kind=Kind.RECORD, name="record", fields=tuple((k, f.type) for k, f in fields))
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

class BarePercent(ValueError):
    """A bare number above 1 where a percent is expected: 10 would silently mean 1000 %."""

    def __init__(self, value: Any) -> None:
        super().__init__(f"a bare {value} here means {value * 100}%")
        self.hint = f"write {value}% for {value} percent (a bare fraction such as 0.6 means 60%)"


def bare_percent(node: n.Expr | None) -> Any:
    """The value of a bare numeric literal above 1 (where a percent is expected), else None."""
    if isinstance(node, n.Literal) and node.kind in (Kind.INTEGER, Kind.DECIMAL) and node.value > 1:
        return node.value
    return None


QUOTA_PREFIX = "quota of "


def quota_type(text: str, named: dict[str, Type]) -> Type | None:
    """`quota of <enumeration>`: the limits a population quota puts on each category, or None when
    the text is another type."""
    if not text.startswith(QUOTA_PREFIX):
        return None
    category = t.parse_type(text[len(QUOTA_PREFIX):].strip(), named)
    if category.kind != Kind.ENUM or category.optional:
        raise t.TypeSyntaxError(f"a quota is of an enumeration (its categories, best first), not {category}")
    return Type(kind=Kind.ANY, name="quota", item=category)


def is_quota(kind: Type) -> bool:
    return kind.kind == Kind.ANY and kind.name == "quota"


_LIMIT_RE = re.compile(r"^(<=|>=|=)\s*([0-9][0-9_]{0,12}(?:\.[0-9]{1,6})?)\s*(%?)$")


def quota_value(raw: Any, kind: Type) -> tuple[Limit, ...]:
    """One date's (or key's) limits: `{category or category: "<= 70%" | ">= 1" | "= 0"}`."""
    assert kind.item is not None
    categories = kind.item.values
    if not isinstance(raw, dict) or not raw:
        raise ValueError('quota limits are a mapping of categories to bounds, e.g. {baik: "<= 70%"}')
    out: list[Limit] = []
    for names, bound in raw.items():
        chosen = [part.strip() for part in str(names).split(" or ")]
        for name in chosen:
            if name not in categories:
                raise ValueError(f"{name!r} is not a category of {kind.item.name}{did_you_mean(name, categories)}")
        match = _LIMIT_RE.match(str(bound).strip()) if isinstance(bound, (str, int)) else None
        if match is None or isinstance(bound, bool):
            raise ValueError(f"bound {bound!r} of {names}: write <=, >= or = and a share (70%) or a head count (1)")
        op, number, percent = match.groups()
        amount = Decimal(number.replace("_", ""))
        if percent:
            share = amount / 100
            if share > 1:
                raise ValueError(f"bound {bound!r} of {names}: a share is at most 100%")
            bounds = {"<=": ("max",), ">=": ("min",), "=": ("max", "min") if share else ("max",)}[op]
            out += [Limit(categories=frozenset(chosen), bound=b, share=share) for b in bounds]  # type: ignore[arg-type]
        else:
            if amount != amount.to_integral_value():
                raise ValueError(f"bound {bound!r} of {names}: a head count is whole (or write a share with %)")
            bounds = {"<=": ("max",), ">=": ("min",), "=": ("max", "min") if amount else ("max",)}[op]
            out += [Limit(categories=frozenset(chosen), bound=b, count=int(amount)) for b in bounds]  # type: ignore[arg-type]
    return tuple(out)


def _field_of(kind: Type) -> Field:
    """A Field that validates a value of `kind` (a parameter's value), lists and records included."""
    return Field(type=kind, spec=FieldSpec(type=str(kind)),
                 items=_field_of(kind.item) if kind.kind == Kind.LIST and kind.item is not None else None,
                 fields=tuple((name, _field_of(sub)) for name, sub in kind.fields) if kind.kind == Kind.RECORD
                 else ())


def scalar_value(raw: Any, kind: Type) -> Any:  # noqa: C901
    if is_quota(kind):
        return quota_value(raw, kind)
    if kind.kind == Kind.PERCENT and isinstance(raw, (int, Decimal)) and not isinstance(raw, bool) and raw > 1:
        raise BarePercent(raw)
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
        if kind.kind == Kind.INTEGER and raw == raw.to_integral_value():
            raw = int(raw)
    if raw is None and kind.optional:
        return None
    if kind.kind == Kind.ENUM:
        if raw not in kind.values:
            raise ValueError(f"{raw!r} is not a value of {kind.name}{did_you_mean(str(raw), kind.values)}")
        return raw
    field = _field_of(kind.required())
    problems: list[Any] = []
    value = build_validator(field)(raw, "", problems)
    if problems:
        raise ValueError(problems[0].message)
    if kind.kind == Kind.MONEY and value == value.to_integral_value():
        return int(value)  # whole rupiah stay integers, so money arithmetic stays in int where it can
    return value


def _key_value(raw: str, key: Type) -> Any:
    if key.kind == Kind.INTEGER:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"key {raw!r} is not a whole number") from None
    if key.kind == Kind.ENUM:
        if raw not in key.values:
            raise ValueError(f"key {raw!r} is not a value of {key.name}{did_you_mean(raw, key.values)}")
        return raw
    return raw


def check_parameters(ctx: Context, items: dict[str, Item], named: dict[str, Field],  # noqa: C901
                     policy: Assembled) -> dict[str, Param]:
    named_types = {k: f.type for k, f in named.items()}
    out: dict[str, Param] = {}
    for name, item in items.items():
        spec = item.spec
        if spec.type is None:
            ctx.error("E050", f"parameter {name!r} needs a 'type'", ctx.at(item))
            continue
        try:
            ptype = quota_type(spec.type, named_types) or t.parse_type(spec.type, named_types)
            key = t.parse_type(spec.key, named_types) if spec.key is not None else None
        except t.TypeSyntaxError as exc:
            ctx.error("E050", str(exc), ctx.at(item, "type" if "key" not in str(exc) else "key"))
            continue
        if key is not None and key.kind not in (Kind.INTEGER, Kind.ENUM, Kind.TEXT):
            ctx.error("E050", f"a parameter key must be integer, text or an enumeration, not {key}",
                      ctx.at(item, "key"))
            continue
        dated: list[tuple[dt.date, Any]] = []
        ok = True
        for date_text, raw in spec.values.items():
            vpath = (*item.path, "values", date_text)
            if not DATE_RE.match(date_text):
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
                    value = scalar_value(raw, ptype)
                else:
                    if not isinstance(raw, dict):
                        raise _Bad("a keyed parameter needs a mapping of key: value for each date", vpath)
                    value = {}
                    for k, v in raw.items():
                        try:
                            value[_key_value(str(k), key)] = scalar_value(v, ptype)
                        except BarePercent as exc:
                            ctx.error("E057", f"parameter {name!r} on {date_text}, key {k}: {exc}",
                                      item.source.value_span((*vpath, k)), exc.hint)
                            ok = False
                        except ValueError as exc:
                            raise _Bad(str(exc), (*vpath, k)) from None
            except BarePercent as exc:
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


def _key_coverage(ctx: Context, item: Item, name: str, key: Type, dated: list[tuple[dt.date, Any]]) -> None:
    first_keys = set(dated[0][1])
    for when, table in dated:
        keys = set(table)
        if key.kind == Kind.ENUM:
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


def check_indicator_source(ctx: Context, policy: Assembled, spec: IndicatorSpec, inputs: dict[str, Type]) -> None:
    """A used indicator needs its source in the record, with the type the plugin expects."""
    head, *rest = spec.source.split(".")
    current: Type | None = inputs.get(head)
    for part in rest:
        current = current.required().field(part) if current is not None and current.kind == Kind.RECORD else None
    want = t.parse_type(spec.source_type, {})
    if current is None or not t.assignable(current.required(), want.required()):
        found = f"it is {current}" if current is not None else "the policy has no such input"
        ctx.error("E056", f"indicator {spec.name!r} of plugin {spec.plugin!r} reads input {spec.source!r} as "
                  f"{want}, but {found}", policy.header_source.key_span(("policy",)))


def check_names(ctx: Context, policy: Assembled, inputs: dict[str, Type], sections: dict[str, set[str]],
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
