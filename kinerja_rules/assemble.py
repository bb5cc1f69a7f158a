"""Merge the files of each policy and resolve `extends` into one flat set of items.

A policy may span several files (same `policy:` id). A child policy inherits every
item of its parent; an item marked `override: true` replaces the parent's item of
that name and must exist there, and an unmarked item must be new. So a typo can
neither silently add a rule nor silently replace one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

import msgspec

from kinerja_rules._suggest import did_you_mean
from kinerja_rules.documents import (
    FROM_PARENT,
    FROM_PARENT_NUMBER,
    SECTIONS,
    DefinitionSpec,
    Item,
    PolicyFile,
    RowSpec,
    TableSpec,
    TypeDecl,
)
from kinerja_rules.errors import Diagnostic
from kinerja_rules.loader import SourceFile

INHERITED = ("references", "types", "inputs", "parameters", "definitions", "tables", "outputs", "rules",
             "checks", "dapat_diubah", "group_data", "seats", "group_definitions", "population", "fixtures")
OVERRIDABLE = ("types", "inputs", "parameters", "definitions", "tables", "outputs", "rules", "checks", "dapat_diubah",
               "group_data", "seats", "group_definitions", "population")


class RowItem(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    spec: RowSpec | list[Any]
    source: SourceFile
    path: tuple[str | int, ...]


class Assembled(msgspec.Struct, kw_only=True):
    """A policy with its parents folded in; what the checker reads."""

    id: str
    title: str
    version: str
    doc: str
    extends: str | None
    effective: dt.date | None
    period: str | None
    unknown_fields: str | None
    subject: tuple[str, ...] | None = None  # the inputs naming whom a decision is for (None: the default)
    chain: tuple[str, ...]
    sources: tuple[SourceFile, ...]
    items: dict[str, dict[str, Item]]
    rows: dict[str, list[RowItem]]  # table name -> ordered rows
    header_source: SourceFile
    own_files: frozenset[str] = frozenset()  # the policy's own files, not its parents'
    allow: tuple[tuple[str, str | None, str], ...] = ()  # warnings acknowledged: (code, output, reason), own+inherited
    flawed: bool = False  # assembling it found errors: it is checked for the others, never compiled


def _merge_files(policy_id: str, files: list[PolicyFile]) -> tuple[dict[str, Any], dict[str, dict[str, Item]],
                                                                   list[Diagnostic]]:
    diags: list[Diagnostic] = []
    header: dict[str, Any] = {}
    header_from: dict[str, PolicyFile] = {}
    items: dict[str, dict[str, Item]] = {s: {} for s in SECTIONS}
    for pf in files:
        for key, value in pf.header.items():
            if key == "policy":
                continue
            if key in header and header[key] != value:
                other = header_from[key].source.key_span((key,))
                diags.append(Diagnostic(code="E020", message=f"{key!r} is set differently in {other}",
                                        span=pf.source.key_span((key,))))
            header[key] = value
            header_from[key] = pf
        for section, entries in pf.items.items():
            for item in entries:
                first = items[section].get(item.name)
                if first is not None:
                    diags.append(Diagnostic(
                        code="E020",
                        message=f"{section[:-1] if section.endswith('s') else section} {item.name!r} "
                                f"is defined twice (first at {first.source.key_span(first.path)})",
                        span=item.source.key_span(item.path)))
                    continue
                items[section][item.name] = item
    return header, items, diags


def _rows_of(item: Item) -> list[RowItem]:
    spec: TableSpec = item.spec
    return [RowItem(name=name, spec=row, source=item.source, path=(*item.path, "rows", name))
            for name, row in spec.rows.items()]


def _merge_rows(parent: list[RowItem], child: Item, diags: list[Diagnostic]) -> list[RowItem]:
    rows = list(parent)
    index = {r.name: i for i, r in enumerate(rows)}
    for row in _rows_of(child):
        spec = row.spec
        flags = spec if isinstance(spec, RowSpec) else RowSpec()
        span = row.source.key_span(row.path)
        existing = index.get(row.name)
        if flags.override or flags.remove:
            if existing is None:
                diags.append(Diagnostic(
                    code="E021",
                    message=f"row {row.name!r} overrides a row the parent table does not have"
                            f"{did_you_mean(row.name, index)}", span=span))
                continue
            if flags.remove:
                rows[existing] = msgspec.structs.replace(rows[existing], name="")
            else:
                rows[existing] = row
            continue
        if existing is not None:
            diags.append(Diagnostic(code="E022",
                                    message=f"row {row.name!r} already exists in the parent table; "
                                            "add 'override: true' to replace it", span=span))
            continue
        if flags.before is not None:
            at = index.get(flags.before)
            if at is None:
                diags.append(Diagnostic(code="E021", message=f"'before' names an unknown row {flags.before!r}"
                                        f"{did_you_mean(flags.before, index)}", span=span))
                continue
            rows.insert(at, row)
        else:
            rows.append(row)
        index = {r.name: i for i, r in enumerate(rows)}
    return [r for r in rows if r.name]


def assemble(files: Iterable[PolicyFile], broken: Iterable[str] = (),  # noqa: C901
             known: Iterable[str] = ()) -> tuple[dict[str, Assembled], list[Diagnostic]]:
    """Group files by policy id and resolve every policy's `extends` chain.

    A `broken` policy (one of its files did not load) is left out with its children, silently:
    the load error is the one diagnostic. `known` names policies elsewhere, for suggestions.
    """
    broken = set(broken)
    elsewhere = set(known)  # policies elsewhere (the policies folder), for suggesting a misspelled parent
    diags: list[Diagnostic] = []
    by_id: dict[str, list[PolicyFile]] = {}
    for pf in files:
        by_id.setdefault(pf.policy_id, []).append(pf)
    merged: dict[str, tuple[dict[str, Any], dict[str, dict[str, Item]], list[PolicyFile]]] = {}
    for pid, pfs in by_id.items():
        header, items, problems = _merge_files(pid, pfs)
        diags += problems
        merged[pid] = (header, items, pfs)

    done: dict[str, Assembled] = {}
    failed: set[str] = set()

    def resolve(pid: str, stack: tuple[str, ...]) -> Assembled | None:  # noqa: C901
        if pid in done:
            return done[pid]
        if pid in failed or pid in broken:
            return None
        header, items, pfs = merged[pid]
        head_file = next((pf for pf in pfs if "extends" in pf.header or "title" in pf.header), pfs[0])
        parent_id = header.get("extends")
        parent: Assembled | None = None
        if parent_id is not None:
            parent_id = str(parent_id)
            span = head_file.source.value_span(("extends",))
            if parent_id in stack or parent_id == pid:
                cycle = " -> ".join((*stack, pid, parent_id))
                diags.append(Diagnostic(code="E023", message=f"policy {pid!r} extends itself through {cycle}",
                                        span=span))
                failed.add(pid)
                return None
            if parent_id in broken:
                failed.add(pid)
                return None
            if parent_id not in merged:
                diags.append(Diagnostic(code="E024", message=f"policy {pid!r} extends unknown policy {parent_id!r}"
                                        f"{did_you_mean(parent_id, set(merged) | elsewhere)}", span=span,
                                        hint="a region's parents are found in the policies folder (--policies DIR)"))
                failed.add(pid)
                return None
            parent = resolve(parent_id, (*stack, pid))
            if parent is None:
                failed.add(pid)
                return None
        out_items: dict[str, dict[str, Item]] = {s: {} for s in SECTIONS}
        rows: dict[str, list[RowItem]] = {}
        if parent is not None:
            for section in INHERITED:
                out_items[section] = dict(parent.items[section])
            rows = {k: list(v) for k, v in parent.rows.items()}
        before = len(diags)
        for section, entries in items.items():
            for name, item in entries.items():
                override = bool(getattr(item.spec, "override", False))
                extend = bool(getattr(item.spec, "extend", False))
                inherited = out_items[section].get(name)
                span = item.source.key_span(item.path)
                if section in OVERRIDABLE and (override or extend):
                    word = "override" if override else "extend"
                    if override and extend:
                        diags.append(Diagnostic(code="E025", message=f"{name!r} says both 'override' and 'extend'; "
                                                "override replaces the parent's item, extend adds to it: pick one",
                                                span=span))
                        continue
                    if parent is None:
                        diags.append(Diagnostic(code="E021", message=f"{name!r} says '{word}: true' but policy "
                                                f"{pid!r} extends nothing", span=span))
                        continue
                    if inherited is None:
                        known = list(out_items[section])
                        diags.append(Diagnostic(code="E021", span=span,
                                                message=f"{_singular(section)} {name!r} {word}s nothing: "
                                                        f"{parent.id!r} has no such name{did_you_mean(name, known)}"))
                        if section == "tables":
                            rows[name] = _rows_of(item)
                        out_items[section][name] = item  # kept, so its uses are not reported as unknown
                        continue
                    if extend:
                        extended = _extend(section, name, inherited, item, diags)
                        if extended is None:
                            continue
                        item = extended
                    else:
                        if section == "parameters":
                            diags.extend(_dropped(name, inherited, item))
                        item = msgspec.structs.replace(item, spec=keep_words(inherited.spec, item.spec))
                    if section == "tables":
                        rows[name] = _merge_rows(rows.get(name, []), item, diags)
                        item = msgspec.structs.replace(item, spec=_merge_table(inherited.spec, item.spec))
                    if section == "population" and override:  # the fields it leaves out are the parent's
                        item = msgspec.structs.replace(item, spec=msgspec.structs.replace(item.spec, **{
                            f: getattr(inherited.spec, f) for f in item.spec.__struct_fields__
                            if getattr(item.spec, f) in (FROM_PARENT, FROM_PARENT_NUMBER, [FROM_PARENT])}))
                    if section in ("definitions", "outputs"):
                        item = msgspec.structs.replace(item, replaces=f"{name}@{parent.id}")
                elif inherited is not None and section in OVERRIDABLE:
                    diags.append(Diagnostic(code="E022",
                                            message=f"{_singular(section)} {name!r} is already defined by {parent.id!r}"  # type: ignore[union-attr]
                                                    "; add 'override: true' to replace it", span=span))
                    continue
                elif inherited is not None and section == "references" and inherited.spec != item.spec:
                    diags.append(Diagnostic(code="E022", message=f"reference {name!r} is already defined by "
                                            f"{parent.id!r} with another text", span=span))  # type: ignore[union-attr]
                    continue
                elif section == "tables":
                    rows[name] = _rows_of(item)
                out_items[section][name] = item
        if parent is not None:  # each parent(x) the policy's own items read: the parent's x, as `x@parent`
            for name in sorted({named for entries in items.values() for item in entries.values()
                                for named in _parent_reads(item.spec)}):
                inherited = parent.items["definitions"].get(name) or parent.items["outputs"].get(name)
                if inherited is not None:
                    key = f"{name}@{parent.id}"
                    out_items["definitions"][key] = _as_definition(inherited, key)
        flawed = len(diags) > before or (parent is not None and parent.flawed)
        sources = tuple(pf.source for pf in pfs) + (parent.sources if parent else ())
        result = Assembled(
            id=pid,
            title=str(header.get("title") or (parent.title if parent else pid)),
            version=str(header.get("version") or "0"),
            doc=str(header.get("doc") or ""),
            extends=parent_id,
            effective=header.get("effective") or (parent.effective if parent else None),
            period=header.get("period") or (parent.period if parent else None),
            subject=header.get("subject") or (parent.subject if parent else None),
            unknown_fields=header.get("unknown_fields") or (parent.unknown_fields if parent else None),
            allow=tuple(header.get("allow", ())) + (parent.allow if parent else ()),
            chain=(pid, *(parent.chain if parent else ())),
            sources=sources,
            items=out_items,
            rows=rows,
            header_source=head_file.source,
            own_files=frozenset(pf.source.name for pf in pfs),
            flawed=flawed,
        )
        done[pid] = result
        return result

    for pid in merged:
        resolve(pid, ())
    return done, diags


_PARENT_READ = re.compile(r"\bparent\s*\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)")


def _parent_reads(spec: Any) -> set[str]:
    """The names an item's expressions read with parent(…)."""
    texts = [getattr(spec, attr, None) for attr in ("expr", "when")]
    return {m.group(1) for text in texts if isinstance(text, str) for m in _PARENT_READ.finditer(text)}


def _as_definition(item: Item, key: str) -> Item:
    """The parent's definition or output under its `name@parent` key, so an override can read it."""
    spec = item.spec
    if not isinstance(spec, DefinitionSpec):
        spec = DefinitionSpec(expr=spec.expr if spec.expr is not None else "null", type=spec.type, cite=spec.cite,
                              doc=spec.doc)
    return msgspec.structs.replace(item, section="definitions", name=key, spec=spec)


def _extend(section: str, name: str, inherited: Item, item: Item, diags: list[Diagnostic]) -> Item | None:
    """The child's `extend: true` item merged with the parent's: an enumeration's values or a keyed parameter's keys."""
    span = item.source.key_span(item.path)
    where = inherited.source.key_span(inherited.path)
    if section == "types":
        parent_values, added = inherited.spec.values, item.spec.values or []
        worded = item.spec.label is not None or item.spec.penjelasan is not None
        if parent_values is None or not (added or worded) or item.spec.fields is not None:
            what = "a record" if parent_values is None else "it"
            diags.append(Diagnostic(code="E025", message=f"type {name!r}: 'extend' adds 'values' to an enumeration "
                                    f"(the parent's {name!r} at {where} is {what})", span=span))
            return None
        again = [v for v in added if v in parent_values]
        if again:
            diags.append(Diagnostic(code="E025", message=f"type {name!r} already has {', '.join(map(str, again))} "
                                    f"(at {where}); list only the values you add", span=span))
            return None
        spec = TypeDecl(values=[*parent_values, *added], doc=item.spec.doc or inherited.spec.doc, extend=True,
                        highest=inherited.spec.highest,  # an ordered one's new values extend its order
                        label=item.spec.label, penjelasan=item.spec.penjelasan)
        spec = keep_words(inherited.spec, spec)
        return msgspec.structs.replace(item, spec=spec, extends_from=where, added=tuple(map(str, added)))
    if section == "parameters":
        parent_spec, child = inherited.spec, item.spec
        if parent_spec.key is None:
            diags.append(Diagnostic(code="E025", message=f"parameter {name!r}: 'extend' changes some keys of a keyed "
                                    f"parameter, and the parent's at {where} has no 'key'; use 'override: true'",
                                    span=span))
            return None
        for attr in ("type", "key"):
            if getattr(child, attr) is not None and getattr(child, attr) != getattr(parent_spec, attr):
                diags.append(Diagnostic(code="E025", message=f"parameter {name!r}: an extension keeps the parent's "
                                        f"{attr} {getattr(parent_spec, attr)!r}", span=span))
                return None
        merged = _merge_keyed(parent_spec.values, child.values)
        if merged is None:
            diags.append(Diagnostic(code="E025", message=f"parameter {name!r}: each date of an extension maps keys "
                                    "to values, e.g. {2025-07-01: {9: 6_000_000}}", span=span))
            return None
        spec = msgspec.structs.replace(parent_spec, values=merged, cite=child.cite or parent_spec.cite,
                                       doc=child.doc or parent_spec.doc, override=False, extend=True,
                                       label=child.label or parent_spec.label,
                                       penjelasan=child.penjelasan or parent_spec.penjelasan)
        return msgspec.structs.replace(item, spec=spec, extends_from=where)
    diags.append(Diagnostic(code="E025", message=f"{_singular(section)} {name!r}: 'extend' applies to an enumeration "
                            "(types) or a keyed parameter; use 'override: true' (and parent(name)) here", span=span))
    return None


def keep_words(inherited: Any, spec: Any) -> Any:
    """An override's texts for people (`label`, `penjelasan`): its own, else the parent's; an
    enumeration's by value, for the values it still has."""
    changes: dict[str, Any] = {}
    for name in ("label", "penjelasan"):
        if name not in getattr(spec, "__struct_fields__", ()) or name not in inherited.__struct_fields__:
            continue
        own, parents = getattr(spec, name), getattr(inherited, name)
        if isinstance(own, dict) or isinstance(parents, dict):
            values = set(getattr(spec, "values", None) or ())
            merged = {**{k: v for k, v in (parents or {}).items() if k in values}, **(own or {})}
            changes[name] = merged or None
        elif own is None and parents is not None:
            changes[name] = parents
    return msgspec.structs.replace(spec, **changes) if changes else spec


def _merge_keyed(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any] | None:
    """Every date of either; on each, the parent's values then in force with the child's keys set since."""
    if not all(isinstance(v, dict) for v in child.values()) or not all(isinstance(v, dict) for v in parent.values()):
        return None
    merged: dict[str, Any] = {}
    for date in sorted(set(parent) | set(child), key=str):
        base: dict[Any, Any] = next((parent[d] for d in sorted(parent, key=str, reverse=True) if str(d) <= str(date)),
                                    {})
        value = {str(k): v for k, v in base.items()}
        for d in sorted(child, key=str):
            if str(d) <= str(date):
                for k, v in child[d].items():
                    value[str(k)] = _merge_map(value.get(str(k)), v)
        merged[str(date)] = value
    return merged


def _dropped(name: str, inherited: Item, item: Item) -> list[Diagnostic]:
    """A warning for each entry of an inherited map value (a quota's limit of a category) that an
    override of a keyed parameter leaves out on a date, at the override's line for that key."""
    parent, child = inherited.spec.values, item.spec.values
    if inherited.spec.key is None or not isinstance(parent, dict) or not isinstance(child, dict):
        return []
    out: list[Diagnostic] = []
    for date, keyed in child.items():
        if not isinstance(keyed, dict):
            continue
        base = next((parent[d] for d in sorted(parent, key=str, reverse=True) if str(d) <= str(date)), None)
        if not isinstance(base, dict):
            continue
        for key, value in keyed.items():
            was = base.get(key, base.get(str(key)))
            if not isinstance(was, dict) or not isinstance(value, dict):
                continue
            gone = [str(k) for k in was if k not in value]
            if gone:
                out.append(Diagnostic(
                    code="W025", severity="warning", span=item.source.key_span((*item.path, "values", date, key)),
                    message=f"parameter {name!r} on {date} leaves out {', '.join(map(repr, gone))} of key "
                            f"{key!r}, which the parent gives; restate it, or give it as null to drop it on "
                            "purpose (with 'extend: true' only what you name changes)"))
    return out


def _merge_map(inherited: Any, given: Any) -> Any:
    """A key's value as extended: a map (a quota's limits by category) keeps every inherited entry
    the extension does not name, and drops one it gives as null; any other value is replaced."""
    if not isinstance(given, dict) or not isinstance(inherited, dict):
        return given
    merged = dict(inherited)
    for name, value in given.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def _singular(section: str) -> str:
    return {"types": "type", "inputs": "input", "parameters": "parameter", "definitions": "definition",
            "tables": "table", "outputs": "output", "rules": "rule", "checks": "check",
            "group_data": "group data field", "seats": "seat field", "group_definitions": "group definition",
            "population": "population part"}.get(section, section)


def _merge_table(parent: TableSpec, child: TableSpec) -> TableSpec:
    """A table override keeps every attribute it does not restate."""
    changes: dict[str, Any] = {}
    for field in ("inputs", "output", "hit", "aggregate", "priority"):
        value = getattr(child, field)
        changes[field] = value if value is not None else getattr(parent, field)
    changes["default"] = child.default if child.default is not msgspec.UNSET else parent.default
    changes["cite"] = child.cite or parent.cite
    changes["doc"] = child.doc or parent.doc
    return msgspec.structs.replace(parent, **changes)
