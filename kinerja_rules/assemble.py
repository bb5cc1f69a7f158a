"""Merge the files of each policy and resolve `extends` into one flat set of items.

A policy may span several files (same `policy:` id). A child policy inherits every
item of its parent; an item marked `override: true` replaces the parent's item of
that name and must exist there, and an unmarked item must be new. So a typo can
neither silently add a rule nor silently replace one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import msgspec

from kinerja_rules._suggest import did_you_mean
from kinerja_rules.documents import SECTIONS, Item, PolicyFile, RowSpec, TableSpec
from kinerja_rules.errors import Diagnostic
from kinerja_rules.loader import SourceFile

INHERITED = ("references", "types", "inputs", "parameters", "definitions", "tables", "outputs", "rules", "fixtures")
OVERRIDABLE = ("types", "inputs", "parameters", "definitions", "tables", "outputs", "rules")


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
    chain: tuple[str, ...]
    sources: tuple[SourceFile, ...]
    items: dict[str, dict[str, Item]]
    rows: dict[str, list[RowItem]]  # table name -> ordered rows
    header_source: SourceFile


def _merge_files(policy_id: str, files: list[PolicyFile]) -> tuple[dict[str, Any], dict[str, dict[str, Item]], list[Diagnostic]]:
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


def assemble(files: Iterable[PolicyFile]) -> tuple[dict[str, Assembled], list[Diagnostic]]:
    """Group files by policy id and resolve every policy's `extends` chain."""
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

    def resolve(pid: str, stack: tuple[str, ...]) -> Assembled | None:
        if pid in done:
            return done[pid]
        if pid in failed:
            return None
        header, items, pfs = merged[pid]
        head_file = next((pf for pf in pfs if "extends" in pf.header or "title" in pf.header), pfs[0])
        parent_id = header.get("extends")
        parent: Assembled | None = None
        if parent_id is not None:
            parent_id = str(parent_id)
            span = head_file.source.value_span(("extends",))
            if parent_id in stack or parent_id == pid:
                diags.append(Diagnostic(code="E023",
                                        message=f"policy {pid!r} extends itself through {' -> '.join((*stack, pid, parent_id))}",
                                        span=span))
                failed.add(pid)
                return None
            if parent_id not in merged:
                diags.append(Diagnostic(code="E024", message=f"policy {pid!r} extends unknown policy {parent_id!r}"
                                        f"{did_you_mean(parent_id, merged)}", span=span))
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
                inherited = out_items[section].get(name)
                span = item.source.key_span(item.path)
                if section in OVERRIDABLE and override:
                    if parent is None:
                        diags.append(Diagnostic(code="E021", message=f"{name!r} says 'override: true' but policy "
                                                f"{pid!r} extends nothing", span=span))
                        continue
                    if inherited is None:
                        known = list(out_items[section])
                        diags.append(Diagnostic(code="E021",
                                                message=f"{_singular(section)} {name!r} overrides nothing: {parent.id!r} has no "
                                                        f"such name{did_you_mean(name, known)}", span=span))
                        continue
                    if section == "tables":
                        rows[name] = _merge_rows(rows.get(name, []), item, diags)
                        item = msgspec.structs.replace(item, spec=_merge_table(inherited.spec, item.spec))
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
        if len(diags) > before:
            failed.add(pid)
            return None
        sources = tuple(pf.source for pf in pfs) + (parent.sources if parent else ())
        result = Assembled(
            id=pid,
            title=str(header.get("title") or (parent.title if parent else pid)),
            version=str(header.get("version") or "0"),
            doc=str(header.get("doc") or ""),
            extends=parent_id,
            effective=header.get("effective") or (parent.effective if parent else None),
            period=header.get("period") or (parent.period if parent else None),
            chain=(pid, *(parent.chain if parent else ())),
            sources=sources,
            items=out_items,
            rows=rows,
            header_source=head_file.source,
        )
        done[pid] = result
        return result

    for pid in merged:
        resolve(pid, ())
    return done, diags


def _singular(section: str) -> str:
    return {"types": "type", "inputs": "input", "parameters": "parameter", "definitions": "definition",
            "tables": "table", "outputs": "output", "rules": "rule"}.get(section, section)


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
