"""Check a policy's test cases and fixtures; their mistakes fail `check`, never service."""

from __future__ import annotations

import re
from typing import Any

from kinerja_rules._suggest import did_you_mean
from kinerja_rules.checking.model import Case, Context, Output
from kinerja_rules.documents import Item

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


def check_cases(ctx: Context, fixtures: dict[str, Item], tests: dict[str, Item],
                outputs: dict[str, Output]) -> dict[str, Case]:
    out: dict[str, Case] = {}
    for name, item in fixtures.items():
        if not isinstance(item.spec, dict):
            ctx.test_error("E150", f"fixture {name!r} must be a record (a mapping)", ctx.at(item))
    for name, item in tests.items():
        spec = item.spec
        if (spec.record is None) == (spec.population is None):
            ctx.test_error("E153", f"test {name!r} needs exactly one of 'record' or 'population'", ctx.at(item))
            continue
        if (spec.expect is None) == (spec.expect_error is None):
            ctx.test_error("E153", f"test {name!r} needs exactly one of 'expect' or 'expect_error'", ctx.at(item))
            continue
        if spec.population is not None:
            case = _population_case(ctx, name, item, fixtures, outputs)
            if case is not None:
                out[name] = case
            continue
        record = _record(ctx, name, item, spec.record, spec.with_, fixtures, ())
        if record is None:
            continue
        if _expected_outputs(ctx, name, item, spec.expect or {}, outputs, ("expect",)) and record is not False:
            out[name] = Case(name=name, record=record, as_of=spec.as_of, expect=spec.expect,
                             expect_error=spec.expect_error, origin=ctx.at(item), doc=spec.doc)
    return out


def _record(ctx: Context, name: str, item: Item, written: Any, changes: dict[str, Any], fixtures: dict[str, Item],
            at: tuple[str, ...]) -> Any:
    """The record a test decides (a fixture or a mapping, with its changes); None when it cannot be
    built, False when a change could not be made (reported)."""
    if isinstance(written, str):
        fixture = fixtures.get(written)
        if fixture is None:
            ctx.test_error("E151", f"test {name!r} uses unknown fixture {written!r}"
                      f"{did_you_mean(written, fixtures)}", item.source.value_span((*item.path, *at, "record")))
            return None
        record = _plain(fixture.spec)
    else:
        record = _plain(written)
    if not isinstance(record, dict):
        return None
    ok = True
    for dotted, value in changes.items():
        try:
            set_path(record, dotted, _plain(value))
        except KeyError as exc:
            ctx.test_error("E152", f"test {name!r}: cannot set {exc.args[0]}", ctx.at(item, *at, "with", dotted))
            ok = False
    return record if ok else False


def _expected_outputs(ctx: Context, name: str, item: Item, expect: dict[str, Any], outputs: dict[str, Output],
                      at: tuple[str, ...], population: bool = False) -> bool:
    ok = True
    for key in expect:
        if population and (key in ("error", "warnings") or key.startswith("population.")):
            continue
        if key not in outputs:
            ctx.test_error("E154", f"test {name!r} expects unknown output {key!r}{did_you_mean(key, outputs)}",
                           ctx.at(item, *at, key))
            ok = False
    return ok


def _population_case(ctx: Context, name: str, item: Item, fixtures: dict[str, Item],
                     outputs: dict[str, Output]) -> Case | None:
    spec = item.spec
    run = spec.population
    members: dict[str, dict[str, Any]] = {}
    for label, member in run.members.items():
        record = _record(ctx, name, item, member.record, member.with_, fixtures, ("population", "members", label))
        if not record:
            return None
        members[label] = record
    ok = True
    for label, expected in (spec.expect or {}).items():
        if label not in members:
            ctx.test_error("E154", f"test {name!r} expects unknown output {label!r}{did_you_mean(label, members)}",
                           ctx.at(item, "expect", label), "a population test expects outputs per member label")
            ok = False
        elif not isinstance(expected, dict):
            ctx.test_error("E154", f"test {name!r} expects unknown output {label!r}", ctx.at(item, "expect", label),
                           "a population test expects outputs per member label: {label: {output: value}}")
            ok = False
        else:
            ok = _expected_outputs(ctx, name, item, expected, outputs, ("expect", label), population=True) and ok
    if not ok:
        return None
    return Case(name=name, record={}, as_of=spec.as_of, expect=spec.expect, expect_error=spec.expect_error,
                origin=ctx.at(item), doc=spec.doc, members=members, groups=_plain(run.groups),
                seats=_plain(run.seats), expect_reports=_plain(spec.expect_reports))
