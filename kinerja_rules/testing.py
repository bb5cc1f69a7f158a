"""Run the test cases a policy carries, and describe a failure readably."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from kinerja_rules.catalogue import say, translate_record_message
from kinerja_rules.checker import Case
from kinerja_rules.decision import Decision, ErrorResult
from kinerja_rules.errors import EvaluationError, RecordError
from kinerja_rules.evaluation.decide import decide_record
from kinerja_rules.evaluation.tracing import explain_text
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
    """A value as a failure report shows it: JSON's way (texts quoted, so items with commas or spaces
    stay apart), exact decimals in full, dates as ISO dates."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_show(str(k))}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def run_case(policy: CompiledPolicy, case: Case, lang: str = "en") -> CaseResult:
    """Evaluate one case and compare every expected output; what differs is said in `lang`."""
    where = str(case.origin)
    if case.members is not None:
        return _run_population_case(policy, case, where, lang)
    try:
        decision = decide_record(policy, case.record, case.as_of, explain=True)
    except (RecordError, EvaluationError) as exc:
        if case.expect_error is not None and case.expect_error in str(exc):
            return CaseResult(policy.id, case.name, True, where)
        want = (say("test.want_error", lang, text=repr(case.expect_error)) if case.expect_error
                else say("test.want_decision", lang))
        return CaseResult(policy.id, case.name, False, where, say(
            "test.got_error", lang, want=want, error=translate_record_message(str(exc), lang)))
    if case.expect_error is not None:
        return CaseResult(policy.id, case.name, False, where,
                          say("test.got_decision", lang, text=repr(case.expect_error)))
    lines = []
    failed_outputs = []
    for name, expected in (case.expect or {}).items():
        actual = decision.get(name)
        if not _same(expected, actual):
            lines.append(f"  {name}:\n" + _differ(expected, actual, lang))
            failed_outputs.append(name)
    if not lines:
        return CaseResult(policy.id, case.name, True, where)
    return CaseResult(policy.id, case.name, False, where, say("test.differ", lang) + "\n" + "\n".join(lines)
                      + "\n\n" + explain_text(decision, failed_outputs, policy, lang))


def _differ(expected: Any, actual: Any, lang: str) -> str:
    return (say("test.expected", lang, value=_show(expected)) + "\n"
            + say("test.actual", lang, value=_show(actual)))


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


def _run_population_case(policy: CompiledPolicy, case: Case, where: str, lang: str) -> CaseResult:  # noqa: C901
    assert case.members is not None
    labels = list(case.members)
    try:
        out = list(run_population(policy, list(case.members.values()), case.groups, case.seats, case.as_of,
                                  explain=True))
    except (RecordError, ValueError) as exc:
        if case.expect_error is not None and case.expect_error in str(exc):
            return CaseResult(policy.id, case.name, True, where)
        return CaseResult(policy.id, case.name, False, where, say(
            "test.population_failed", lang, error=translate_record_message(str(exc), lang)))
    if case.expect_error is not None:
        return CaseResult(policy.id, case.name, False, where,
                          say("test.got_decisions", lang, text=repr(case.expect_error)))
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
                lines.append(f"  {label} {name}:\n" + _differ(want, got, lang))
    for i, want_report in enumerate(case.expect_reports or []):
        if i >= len(reports):
            lines.append(say("test.no_report", lang, number=i + 1, count=len(reports)))
            continue
        for key, want in want_report.items():
            got = reports[i].get(key)
            if not _same(want, _as_written(want, got)):
                lines.append(say("test.report_key", lang, number=i + 1, key=key) + "\n" + _differ(want, got, lang))
    if not lines:
        return CaseResult(policy.id, case.name, True, where)
    return CaseResult(policy.id, case.name, False, where, say("test.population_differs", lang) + "\n"
                      + "\n".join(lines))


def _as_written(want: Any, got: Any) -> Any:
    """What a report holds, cut to the shape a case writes: an object on the keys it writes (a key
    it lacks stays lacking), a list item by item (extra items kept), so a case need not spell out
    every detail a report gives, and a report that gains one leaves written cases passing."""
    if isinstance(want, dict) and isinstance(got, dict):
        return {k: _as_written(w, got[k]) for k, w in want.items() if k in got}
    if isinstance(want, list) and isinstance(got, list):
        return [_as_written(w, g) for w, g in zip(want, got, strict=False)] + got[len(want):]
    return got


def run_all(policy: CompiledPolicy, lang: str = "en") -> list[CaseResult]:
    return [run_case(policy, case, lang) for case in policy.checked.cases.values()]
