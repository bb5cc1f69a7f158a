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


def check_cases(ctx: Context, fixtures: dict[str, Item], tests: dict[str, Item], outputs: dict[str, Output]) -> dict[str, Case]:
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
