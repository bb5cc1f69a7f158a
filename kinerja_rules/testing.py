"""Run the test cases a policy carries, and describe a failure readably."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from kinerja_rules.checker import Case
from kinerja_rules.decision import Decision, ErrorResult, to_json
from kinerja_rules.errors import EvaluationError, RecordError
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.population_run import GroupReport, run_population


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
        return len(expected) == len(actual) and all(_same(a, b) for a, b in zip(expected, actual, strict=True))
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
    if case.members is not None:
        return _run_population_case(policy, case, where)
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
                      "outputs differ:\n" + "\n".join(lines) + "\n\n" + explain_text(decision, failed_outputs, policy))


def _population_value(result: Decision | ErrorResult, name: str) -> Any:
    """An expected value of one member: `error` (its message and fields), `warnings` (their paths),
    `population.rank`, or an output."""
    if isinstance(result, ErrorResult):
        if name == "error":
            return "; ".join([result.error.message, result.error.where, *(str(f) for f in result.error.fields)])
        raise KeyError(f"the record was not decided: {_population_value(result, 'error')}")
    if name == "error":
        return None
    if name == "warnings":
        return [w.path for w in result.warnings]
    if name.startswith("population."):
        block = result.population if isinstance(result.population, dict) else {}
        return block.get(name.split(".", 1)[1])
    return result.get(name)


def _run_population_case(policy: CompiledPolicy, case: Case, where: str) -> CaseResult:  # noqa: C901
    assert case.members is not None
    labels = list(case.members)
    try:
        out = list(run_population(policy, list(case.members.values()), case.groups, case.seats, case.as_of,
                                  explain=True))
    except (RecordError, ValueError) as exc:
        if case.expect_error is not None and case.expect_error in str(exc):
            return CaseResult(policy.id, case.name, True, where)
        return CaseResult(policy.id, case.name, False, where, f"the population run failed: {exc}")
    if case.expect_error is not None:
        return CaseResult(policy.id, case.name, False, where,
                          f"expected an error containing {case.expect_error!r}, got decisions")
    results = [r for r in out if not isinstance(r, GroupReport)]
    reports = [msgspec.to_builtins(r, builtin_types=(Decimal, dt.date)) for r in out if isinstance(r, GroupReport)]
    lines = []
    for label, expected in (case.expect or {}).items():
        result = results[labels.index(label)]
        for name, want in expected.items():
            try:
                got = _population_value(result, name)
            except KeyError as exc:
                lines.append(f"  {label}: {exc.args[0]}")
                break
            matches = isinstance(want, str) and isinstance(got, str) and name == "error" and want in got
            if not matches and not _same(want, got):
                lines.append(f"  {label} {name}:\n    expected {_show(want)}\n    actual   {_show(got)}")
    for i, want_report in enumerate(case.expect_reports or []):
        if i >= len(reports):
            lines.append(f"  report {i + 1}: expected, but the run made {len(reports)}")
            continue
        for key, want in want_report.items():
            got = reports[i].get(key)
            if not _same(want, got):
                lines.append(f"  report {i + 1} {key}:\n    expected {_show(want)}\n    actual   {_show(got)}")
    if not lines:
        return CaseResult(policy.id, case.name, True, where)
    return CaseResult(policy.id, case.name, False, where, "the population run differs:\n" + "\n".join(lines))


def _population_story(story: dict[str, Any] | None) -> list[str]:
    """The population part of a trace as lines: the rank in its group, what the quota did, the seat."""
    if not story:
        return []
    if story.get("applied") is False:
        return ["population: none applied (the record was decided alone)"]
    group = ", ".join(f"{k} {_json(v)}" for k, v in story["group"].items())
    out = [f"population: rank {story['rank']} of {story['size']} in {group}, by {', '.join(story['order'])}"]
    quota = story.get("quota")
    if quota is not None:
        out.append(f"  quota on {quota['of']} ({quota['mode']}): {'; '.join(quota['limits'])}")
        out += [f"  moved {line}" for line in quota.get("moved", ())]
        out += [f"  not met: {line}" for line in quota.get("violations", ())]
        out.append(f"  {quota['of']} {quota['before']}, after the quota {quota['after']}")
    seat = story.get("assignment")
    if seat is not None:
        against = ", ".join(f"{e['member']} ({_json(e['score'])})" for e in seat.get("against", ()))
        got = f"seat {seat['seat']} with score {_json(seat['score'])}" if seat["seat"] is not None else "no seat"
        out.append(f"  assignment ({seat['method']}): {got}" + (f", against {against}" if against else "")
                   + f"; eligible for {', '.join(seat['eligible_for']) or 'none'}")
    return out


def explain_text(decision: Decision, only: list[str] | None = None, policy: CompiledPolicy | None = None) -> str:  # noqa: C901
    """A decision trace as text a policy author can read: each output with everything it was
    reached through (definitions, table hits, parameters, rules, plugin functions, inputs read).
    With the `policy` that made it, the expressions and the cited references are written out too."""
    import msgspec

    trace = msgspec.json.Decoder(float_hook=Decimal).decode(to_json(decision))["trace"]
    texts = policy.expressions() if policy is not None else {}
    cite = policy.cite_text if policy is not None else str
    defs, tables, rules = trace.get("definitions", {}), trace.get("tables", {}), trace.get("rules", {})
    indicators = trace.get("indicators", {})
    params: dict[str, tuple[str, Any]] = {name: (since, value) for since, group in trace.get("parameters", {}).items()
                                         for name, value in group.items()}

    def cited(entry: dict[str, Any]) -> str:
        return f"   [{cite(entry['cite'])}]" if entry.get("cite") else ""

    def plugins(entry: dict[str, Any], out: list[str]) -> None:
        for f in entry.get("plugins", ()):
            version = f" {f['version']}" if f.get("version") else ""
            out.append(f"      by function {f['function']} of plugin {f['plugin']}{version}{cited(f)}")

    out = [f"as of {trace['as_of']}", *_population_story(trace.get("population"))]
    for name, entry in trace["outputs"].items():
        if only is not None and name not in only:
            continue
        out.append(f"\n{name} = {_json(entry['value'])}")
        expr = texts.get("outputs", {}).get(name)
        if expr:
            out.append(f"  from: {_one_line(expr)}")
        if entry.get("cite"):
            out.append(f"  cites: {cite(entry['cite'])}")
        plugins(entry, out)
        reached = _reached(entry, defs, tables, rules, indicators, params)
        reads = set(entry.get("reads", ()))
        for kind, used in reached:
            if kind == "definition":
                d = defs[used]
                exact = f" (exactly {d['exact']})" if "exact" in d else ""
                expr = texts.get("definitions", {}).get(used)
                out.append(f"  · {used} = {_json(d['value'])}{exact}" + (f"   ← {_one_line(expr)}" if expr else "")
                           + cited(d))
                plugins(d, out)
                reads |= set(d.get("reads", ()))
            elif kind == "table":
                t = tables[used]
                for hit in t["hits"]:
                    args = ", ".join(f"{k}={_json(v)}" for k, v in hit["inputs"].items())
                    note = f" ({hit['note']})" if hit.get("note") else ""
                    out.append(f"  · table {used}({args}) → row {hit['row']} → {_json(hit['output'])}{note}{cited(t)}")
                if t.get("omitted"):
                    out.append(f"  · … and {t['omitted']} more lookups of {used}, not shown")
            elif kind == "parameter":
                since, value = params[used]
                if isinstance(value, dict):
                    for pair in value["values"]:
                        out.append(f"  · parameter {used}[{_json(pair['key'])}] = {_json(pair['value'])} "
                                   f"(in force since {since})")
                    if value.get("omitted"):
                        out.append(f"  · … and {value['omitted']} more lookups of {used}, not shown")
                else:
                    out.append(f"  · parameter {used} = {_json(value)} (in force since {since})")
            elif kind == "indicator":
                i = indicators[used]
                version = f" {i['version']}" if i.get("version") else ""
                out.append(f"  · indicator {used} = {_json(i['value'])} from {i['source']}, by plugin "
                           f"{i['plugin']}{version}{cited(i)}")
                reads.add(i["source"])
        for rule_name in entry.get("rules", ()):
            r = rules[rule_name]
            when = texts.get("rules", {}).get(rule_name)
            mark = "fired" if r["fired"] else "not fired"
            out.append(f"  · rule {rule_name} ({mark}" + (f": {_one_line(when)}" if when else "") +
                       f") adds {_json(r['adds'].get(name, []))}: {r['reason']}{cited(r)}")
            reads |= set(r.get("reads", ()))
        if reads:
            out.append(f"  inputs read: {', '.join(sorted(reads))}")
    return "\n".join(out)


def _reached(entry: dict[str, Any], defs: dict[str, Any], tables: dict[str, Any], rules: dict[str, Any],
             indicators: dict[str, Any], params: dict[str, Any]) -> list[tuple[str, str]]:
    """Everything an output's value was reached through, each once, dependencies first (a table
    this record did not hit, or a keyed parameter it did not look up, is not shown)."""
    order: list[tuple[str, str]] = []
    seen: set[str] = set()
    pending = [entry, *(rules[r] for r in entry.get("rules", ()))]

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        if name in defs:
            for used in defs[name].get("uses", ()):
                visit(used)
            order.append(("definition", name))
        elif name in tables:
            for used in tables[name].get("uses", ()):
                visit(used)
            order.append(("table", name))
        elif name in indicators:
            order.append(("indicator", name))
        elif name in params:
            order.append(("parameter", name))

    for item in pending:
        for used in item.get("uses", ()):
            visit(used)
    return order


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
