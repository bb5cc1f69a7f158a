"""Hostile values in every field of every bundled policy's record, through the HTTP app and the CLI.

Whatever a client puts in a field (huge and tiny numbers, numbers Python cannot hold,
boundary and impossible dates, invalid and enormous strings, the wrong type, deep nesting,
a key given twice), the answer is a decision or a problem naming that field: never a 500,
never a traceback, and the other records of a batch are decided.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from kinerja_rules.server import create_app
from tests.conftest import BASE_RECORD, ROOT, bundled

ENGINE = bundled()
MARK = "__hostile__"
PROBLEM = "application/problem+json"
NAMING = {"invalid-record", "duplicate-key", "too-deep", "list-too-long", "invalid-body"}

RAW = [  # JSON texts a hostile or careless client sends
    "1e1000000", "-1e1000000", "1e-1000000", "9" * 5000, "-" + "9" * 400, "1e25", "1e-25", "1E+26", "0e999999999",
    "123456789012345678901234567890", "-0", "0.000000000000000000000000001", "1.5", "-1", "0", "17", "18", "31", "32",
    '"' + "x" * 10_000 + '"', '"\\ud800"', '"\\u0000"', '"0000-01"', '"9999-12"', '"2024-02-30"', '"2025-13"',
    '"zz\\n"', '"\\uff11\\uff12"', '"\\ufeff"', '""', '"baik"', '"pns"', '"1e1000000"',
    "true", "false", "null", "[]", "{}", '"12"', "[1, 2, 3]", '{"a": 1}', '{"a": 1, "a": 2}',
    "[" * 40 + "]" * 40, "[" * 3000 + "]" * 3000, "[" + ",".join(["1"] * 10_001) + "]",
    '{"nama": "x", "target": 1e400, "realisasi": 1}',
]
GENERATED = st.one_of(
    st.sampled_from(RAW),
    st.integers(-10**40, 10**40).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: str(d).replace("E", "e")),
    st.text(max_size=30).map(json.dumps),
    st.dates().map(lambda d: json.dumps(d.isoformat()[:7])),
)


def field_paths(schema: dict[str, Any], path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place of a record the input schema names: objects' fields, and a list's first item."""
    out = [path] if path else []
    for option in schema.get("anyOf", [schema]):
        for name, sub in option.get("properties", {}).items():
            out += field_paths(sub, (*path, name))
        if "items" in option:
            out += field_paths(option["items"], (*path, 0))
    return out


def example(schema: dict[str, Any]) -> Any:
    """A value the schema accepts: every field given, one item per list."""
    kind = next(o for o in schema.get("anyOf", [schema]) if o.get("type") != "null")
    if "enum" in kind:
        return kind["enum"][0]
    if kind.get("type") == "object":
        return {name: example(sub) for name, sub in kind.get("properties", {}).items()}
    if kind.get("type") == "array":
        return [example(kind["items"])]
    if kind.get("type") == "boolean":
        return False
    if kind.get("type") in ("number", "integer"):
        low = kind.get("minimum", kind.get("exclusiveMinimum", 0))
        return low + 1 if "exclusiveMinimum" in kind or low < 1 <= kind.get("maximum", 1) else low
    if "pattern" in kind:  # a text its pattern takes: a NIP, a month
        import re

        return next(c for c in ("198507122010011003", "2025-03", "2025-TW1", "2025-03-03T08:00:00+07:00")
                    if re.fullmatch(kind["pattern"].lstrip("^").rstrip("$"), c))
    if kind.get("format") == "date":
        return "2025-03-03"
    return "2025-03-03T08:00:00+07:00"  # a text any plain text field takes (plugins read some as timestamps)


def full_record(policy_id: str) -> dict[str, Any]:
    """BASE_RECORD with every other field of the policy's record given too, so each can be reached."""
    record = {**example(ENGINE.policy(policy_id).metadata()["input_schema"]), **copy.deepcopy(BASE_RECORD)}
    while True:  # a field a plugin reads more strictly than its schema says stays out
        result = ENGINE.evaluate_safely(policy_id, record)
        if not hasattr(result, "error"):
            return record
        assert result.error.paths and all(p.split(".")[0] not in BASE_RECORD for p in result.error.paths)
        for path in result.error.paths:
            record.pop(path.split(".")[0], None)


BASES = {p.id: full_record(p.id) for p in ENGINE.policies()}


def reachable(base: dict[str, Any], place: tuple[Any, ...]) -> bool:
    """Whether `base` holds the object or list `place` is in (so no other field is missing around it)."""
    node: Any = base
    for part in place[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or not node:
                return False
            node = node[0]
        elif not isinstance(node, dict) or part not in node:
            return False
        else:
            node = node[part]
    return isinstance(node, list if isinstance(place[-1], int) else dict)


PLACES = sorted({(p.id, place) for p in ENGINE.policies()
                 for place in field_paths(p.metadata()["input_schema"]) if reachable(BASES[p.id], place)}, key=repr)


def dotted(place: tuple[Any, ...]) -> str:
    out = ""
    for part in place:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else part
    return out


def with_mark(policy_id: str, place: tuple[Any, ...]) -> dict[str, Any]:
    """The policy's full record with MARK at `place`."""
    record = copy.deepcopy(BASES[policy_id])
    node: Any = record
    for part, following in zip(place, (*place[1:], None), strict=True):
        fresh: Any = MARK if following is None else [] if isinstance(following, int) else {}
        if isinstance(part, int):
            if not isinstance(node, list):
                return record
            if not node:
                node.append(fresh)
            elif following is None:
                node[0] = MARK
            node = node[0]
        else:
            if not isinstance(node, dict):
                return record
            if following is None or part not in node or not isinstance(node[part], (dict, list)):
                node[part] = fresh
            node = node[part]
    return record


def record_text(policy_id: str, place: tuple[Any, ...], raw: str) -> str:
    return json.dumps(with_mark(policy_id, place)).replace(json.dumps(MARK), raw, 1)


def names(error_path: str, field: str) -> bool:
    """Whether an error at `error_path` names `field` (or a place inside it, or the object holding it)."""
    return any(a == b or a.startswith(b + ".") or a.startswith(b + "[") for a, b in ((error_path, field),
                                                                                    (field, error_path)))


def unreadable(raw: str) -> bool:
    try:
        msgspec.json.decode(raw.encode("utf-8", "surrogatepass"))
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return True
    return False


def assert_answer(body: dict[str, Any], field: str, raw: str, prefix: str = "record") -> None:
    """A decision, or an error naming the field (or where a limit of the whole record was passed)."""
    if "outputs" in body:
        return
    error = body.get("error", body)
    kind = error.get("kind") or error["type"].rsplit("/", 1)[-1]
    paths = [f["path"] for f in error.get("fields", error.get("errors", []))]
    if kind in ("evaluation", "evaluation-failed"):  # the policy faulted on odd data: it names what it read
        assert error.get("paths") and error.get("where"), body
    elif kind in {"input", "record"} | NAMING:
        # paths are the record's own (`jabatan.kelas`), or the request's (`records[0].jabatan.kelas`)
        inside = [p.removeprefix(prefix).lstrip(".") if prefix and p.startswith(prefix) else p for p in paths]
        assert any(names(p, field) or p == "" for p in inside) or unreadable(raw), body
    else:
        raise AssertionError(body)


@pytest.fixture(scope="module")
def client() -> Any:
    with TestClient(create_app(ENGINE)) as test_client:
        yield test_client


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(PLACES), GENERATED)
def test_a_hostile_value_in_any_field_gets_a_decision_or_a_problem_naming_it(
        client: TestClient[Litestar], place: tuple[str, tuple[Any, ...]], raw: str) -> None:
    policy, where = place
    field = dotted(where)
    record = record_text(policy, where, raw)
    single = client.post(f"/v1/policies/{policy}/evaluate", content=('{"record": ' + record + "}").encode(),
                         headers={"content-type": "application/json"})
    assert single.status_code < 500, single.text
    if single.status_code == 200:
        assert "outputs" in single.json()
    else:
        assert single.headers["content-type"].startswith(PROBLEM) and single.json()["detail"]
        if single.status_code == 400:
            assert unreadable(raw), single.text  # only text no JSON reader takes is refused whole
        else:
            assert_answer(single.json(), field, raw)
    good = json.dumps(BASES[policy])
    batch = client.post(f"/v1/policies/{policy}/evaluate/batch", headers={"content-type": "application/json"},
                        content=('{"records": [' + record + ", " + good + "]}").encode())
    assert batch.status_code < 500, batch.text
    if batch.status_code == 200:
        first, second = batch.json()["results"]
        assert_answer(first, field, raw, prefix="records[0]")
        assert "outputs" in second  # the other record is decided
    else:
        assert batch.status_code in (400, 413, 422) and (unreadable(raw) or batch.status_code != 400), batch.text


@pytest.mark.slow
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from([p for p in PLACES if p[0] == "nasional"]), GENERATED),
                min_size=40, max_size=60))
def test_kinerja_eval_answers_every_hostile_line_in_order(lines: list[tuple[tuple[str, Any], str]]) -> None:
    good = json.dumps(BASE_RECORD)
    texts = [record_text("nasional", where, raw) for (_, where), raw in lines]
    data = ("\n".join([good, *texts, good]) + "\n").encode("utf-8", "surrogatepass")
    result = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "eval", "nasional"], input=data,
                            capture_output=True, cwd=ROOT, timeout=120)
    assert result.returncode in (0, 1) and b"Traceback" not in result.stderr, result.stderr.decode()
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(texts) + 2 and "outputs" in out[0] and "outputs" in out[-1]
    for answer, ((_, where), raw) in zip(out[1:-1], lines, strict=True):
        if "error" in answer and answer["error"].get("line") is not None:
            assert answer["error"]["line"] == out.index(answer) + 1 or answer["error"]["kind"] != "input"
        if "error" in answer and answer["error"]["kind"] == "input" and not answer["error"].get("fields"):
            assert unreadable(raw), answer  # a line no JSON reader takes: its own error, in its place
            continue
        assert_answer(answer, dotted(where), raw, prefix="")


OBJECTS = sorted({(pid, place[:-1]) for pid, place in PLACES if place and not isinstance(place[-1], int)}, key=repr)
KEYS = st.one_of(st.text(max_size=40), st.sampled_from(["nip ", "NIP", "periode_", "jabtan", "x" * 100_000, "\x00",
                                                        "\ud800", "__proto__", "constructor", "", "cuti[0]", "a.b"]))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(OBJECTS), KEYS, GENERATED)
def test_a_hostile_unknown_key_anywhere_gets_a_decision_with_warnings_or_a_problem(
        client: TestClient[Litestar], where: tuple[str, tuple[Any, ...]], key: str, raw: str) -> None:
    policy, place = where
    record = json.loads(json.dumps(BASES[policy]))
    node: Any = record
    for part in place:
        node = node[part] if isinstance(node, (dict, list)) and (isinstance(part, int) or part in node) else None
    if not isinstance(node, dict) or key in node:
        return
    node[key] = MARK
    text = json.dumps(record, ensure_ascii=False).replace(json.dumps(MARK, ensure_ascii=False), raw, 1)
    body = ('{"record": ' + text + "}").encode("utf-8", "surrogatepass")
    answer = client.post(f"/v1/policies/{policy}/evaluate", content=body, headers={"content-type": "application/json"})
    assert answer.status_code < 500, answer.text
    if answer.status_code == 200:
        assert all(w["path"] and w["message"] for w in answer.json().get("warnings", []))
    elif answer.status_code == 422:
        problem = answer.json()
        assert problem["type"] in {f"/problems/{n}" for n in NAMING | {"evaluation-failed"}}, problem
    else:
        assert answer.status_code == 400 and (unreadable(raw) or "\ud800" in key or not key.isprintable()), answer.text
