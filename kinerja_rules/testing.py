"""Run the test cases a policy carries, and describe a failure readably."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from kinerja_rules.checker import Case
from kinerja_rules.decision import Decision, to_json
from kinerja_rules.errors import EvaluationError, RecordError
from kinerja_rules.policy import CompiledPolicy


@dataclass(frozen=True)
class CaseResult:
    policy: str
    case: str
    ok: bool
    where: str
    report: str = ""


_PERCENT = re.compile(r"(-?[0-9]{1,20}(?:\.[0-9]{1,20})?)\s*%")


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, str) and isinstance(actual, (int, Decimal)) and (match := _PERCENT.fullmatch(expected)):
        return Decimal(match.group(1)) / 100 == Decimal(actual)  # `60%` expects the fraction 0.6
    if isinstance(expected, (int, Decimal)) and isinstance(actual, (int, Decimal)):
        return Decimal(expected) == Decimal(actual)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(_same(a, b) for a, b in zip(expected, actual))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(_same(expected[k], actual[k]) for k in expected)
    if isinstance(expected, dt.date) and isinstance(actual, str):
        return expected.isoformat() == actual
    return bool(expected == actual)


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def run_case(policy: CompiledPolicy, case: Case) -> CaseResult:
    """Evaluate one case and compare every expected output."""
    where = str(case.origin)
    try:
        decision = policy.evaluate(case.record, case.as_of, explain=True)
    except (RecordError, EvaluationError) as exc:
        if case.expect_error is not None and case.expect_error in str(exc):
            return CaseResult(policy.id, case.name, True, where)
        want = f"an error containing {case.expect_error!r}" if case.expect_error else "a decision"
        return CaseResult(policy.id, case.name, False, where, f"expected {want}, got error: {exc}")
    if case.expect_error is not None:
        return CaseResult(policy.id, case.name, False, where,
                          f"expected an error containing {case.expect_error!r}, got a decision")
    lines = []
    failed_outputs = []
    for name, expected in (case.expect or {}).items():
        actual = decision.get(name)
        if not _same(expected, actual):
            lines.append(f"  {name}:\n    expected {_show(expected)}\n    actual   {_show(actual)}")
            failed_outputs.append(name)
    if not lines:
        return CaseResult(policy.id, case.name, True, where)
    return CaseResult(policy.id, case.name, False, where,
                      "outputs differ:\n" + "\n".join(lines) + "\n\n" + explain_text(decision, failed_outputs))


def explain_text(decision: Decision, only: list[str] | None = None) -> str:
    """A decision trace as text a policy author can read."""
    import msgspec

    trace = msgspec.json.Decoder(float_hook=Decimal).decode(to_json(decision))["trace"]
    out = [f"as of {trace['as_of']}"]
    for name, entry in trace["outputs"].items():
        if only is not None and name not in only:
            continue
        out.append(f"\n{name} = {_json(entry['value'])}")
        if entry.get("expr"):
            out.append(f"  from: {_one_line(entry['expr'])}")
        if entry.get("cite"):
            out.append(f"  cites: {entry['cite']}")
        for d in entry["definitions"]:
            cite = f"   [{d['cite']}]" if d.get("cite") else ""
            exact = f" (exactly {d['exact']})" if "exact" in d else ""
            out.append(f"  · {d['name']} = {_json(d['value'])}{exact}   ← {_one_line(d['expr'])}{cite}")
        for row in entry["tables"]:
            args = ", ".join(f"{k}={_json(v)}" for k, v in row["inputs"].items())
            cite = f"   [{row['cite']}]" if row.get("cite") else ""
            out.append(f"  · table {row['table']}({args}) → row {row['row']} → {_json(row['output'])}{cite}")
        for p in entry["parameters"]:
            key = f"[{p['key']}]" if "key" in p else ""
            cite = f"   [{p['cite']}]" if p.get("cite") else ""
            out.append(f"  · parameter {p['name']}{key} = {_json(p['value'])} (in force since {p['effective']}){cite}")
        for used, more in entry.get("omitted", {}).items():
            out.append(f"  · … and {more} more lookups of {used}, not shown")
        for r in entry.get("rules", []):
            mark = "fired" if r["fired"] else "not fired"
            cite = f"   [{r['cite']}]" if r.get("cite") else ""
            out.append(f"  · rule {r['rule']} ({mark}: {r['when']}) adds {r['adds']}: {r['reason']}{cite}")
        if entry.get("inputs"):
            out.append(f"  inputs read: {', '.join(entry['inputs'])}")
    return "\n".join(out)


_TEXT_ENCODER = msgspec.json.Encoder(decimal_format="number")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):  # as the decision's JSON writes it, never Python's repr
        return _TEXT_ENCODER.encode(value).decode()
    return str(value)


def run_all(policy: CompiledPolicy) -> list[CaseResult]:
    return [run_case(policy, case) for case in policy.checked.cases.values()]
