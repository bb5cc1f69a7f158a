"""The input JSON Schema a policy publishes accepts exactly the records the server accepts.

Records are drawn from the published schema itself, valid ones and ones with a single change
(a wrong type, a bound passed, a key dropped or added, a date or code in another form); the
`jsonschema` package and the server must give each the same verdict.
"""

from __future__ import annotations

import datetime as dt
import string
from decimal import Decimal
from typing import Any

import jsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from kinerja_rules import Engine
from kinerja_rules.engine import validate_text
from kinerja_rules.server import Limits, create_app
from tests.conftest import bundled

ASCII = st.characters(codec="ascii")
ODD_VALUES = ["x", "", "2025-02-30", "20250301", "2025-W01-1", "2025-03-01\n", True, None, 1.5, -1, 0, 10 ** 30,
              "1e3", [], {}, [1], {"a": 1}, Decimal("0.125"), 7]
_JSON = msgspec.json.Encoder(decimal_format="number")

SAMPLER = """\
policy: contoh
effective: 2024-01-01
inputs:
  kode: {type: text, pattern: "[A-Z]{2}-[0-9]{3}"}
  tanggal: {type: date}
  mulai: {type: optional date}
  jenis: {type: enum, values: [a, b]}
  jumlah: {type: integer, min: 0, max: 50, default: 3}
  nilai: {type: decimal, greater_than: 0}
  bagian: {type: percent}
  aktif: {type: optional boolean}
  rincian:
    type: list
    min_items: 1
    max_items: 3
    items:
      type: record
      fields:
        nama: {type: text}
        hari: {type: optional integer, less_than: 31}
outputs:
  ada: {type: integer, expr: "1"}
"""


def _bound(schema: dict[str, Any], low: int, high: int) -> tuple[Any, Any]:
    lo = schema.get("minimum", schema.get("exclusiveMinimum", low))
    hi = schema.get("maximum", schema.get("exclusiveMaximum", high))
    return max(lo, low), min(hi, high)


def values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema accepts (in the ranges records hold), drawn from the schema alone."""
    if "anyOf" in schema:
        return st.one_of(*(values(s) for s in schema["anyOf"]))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema["type"]
    if kind == "object":
        props, required = schema["properties"], set(schema.get("required", ()))
        return st.fixed_dictionaries({k: values(v) for k, v in props.items() if k in required},
                                     optional={k: values(v) for k, v in props.items() if k not in required})
    if kind == "array":
        return st.lists(values(schema["items"]), min_size=schema.get("minItems", 0),
                        max_size=min(schema["maxItems"], 3))
    if kind == "string" and schema.get("format") == "date":
        return st.dates(dt.date(1950, 1, 1), dt.date(2100, 12, 31)).map(dt.date.isoformat)
    if kind == "string":
        pattern = schema.get("pattern")
        return st.from_regex(pattern, fullmatch=True, alphabet=ASCII) if pattern else st.text(ASCII, max_size=12)
    if kind == "integer":
        low, high = _bound(schema, -10 ** 6, 10 ** 6)
        return st.integers(low + ("exclusiveMinimum" in schema), high - ("exclusiveMaximum" in schema))
    if kind == "number":
        low, high = _bound(schema, -10 ** 6, 10 ** 6)
        return st.decimals(low, high, places=3).filter(lambda d: (d != low or "exclusiveMinimum" not in schema)
                                                       and (d != high or "exclusiveMaximum" not in schema))
    if kind == "null":
        return st.none()
    assert kind == "boolean", schema
    return st.booleans()


def _places(record: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(record, dict):
        for key, value in record.items():
            out += _places(value, (*at, key))
    elif isinstance(record, list):
        for i, value in enumerate(record):
            out += _places(value, (*at, i))
    return out


@st.composite
def changed(draw: st.DrawFn, schema: dict[str, Any]) -> Any:
    """A valid record with one thing changed: it may or may not still be valid."""
    record = draw(values(schema))
    place = draw(st.sampled_from(_places(record)))
    if not place:
        return draw(st.sampled_from(ODD_VALUES))
    *parent_path, last = place
    parent: Any = record
    for step in parent_path:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "drop", "add"]))
    if action == "drop" and isinstance(parent, dict):
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(st.sampled_from(["sumber_data", "zz", "keterangan_lain"]))] = draw(st.sampled_from(ODD_VALUES))
    else:
        parent[last] = draw(st.sampled_from(ODD_VALUES) | st.text(string.printable, max_size=6))
    return record


def _verdicts(client: TestClient[Any], policy_id: str, schema: dict[str, Any], effective: str,
              record: Any) -> tuple[bool, bool]:
    by_schema = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).is_valid(record)
    answer = client.post(f"/v1/policies/{policy_id}/evaluate", content=_JSON.encode(
        {"record": record, "as_of": effective}), headers={"content-type": "application/json"})
    assert answer.status_code in (200, 400, 422), answer.text
    problem = answer.json() if answer.status_code != 200 else {}
    # a policy's check (a condition across fields, such as segments that overlap) is beyond JSON Schema:
    # a record failing only checks is one the schema accepts
    by_server = answer.status_code == 200 or problem["type"] == "/problems/evaluation-failed" or (
        problem["type"] == "/problems/invalid-record" and all(e.get("check") for e in problem["errors"]))
    return by_schema, by_server


def _engine() -> Engine:
    report = validate_text(SAMPLER, "contoh.yaml")
    assert report.ok, report.problems
    return Engine({**{p.id: p for p in bundled().policies()}, "contoh": report.policies["contoh"]},
                  bundled().registry)


@pytest.mark.parametrize("mode", ["warn", "error"])
@pytest.mark.parametrize("policy_id", ["contoh", "nasional", "kotalama", "makassar", "plaju", "sawahlunto"])
def test_schema_and_server_give_every_record_the_same_verdict(policy_id: str, mode: str) -> None:
    engine = _engine()
    with TestClient(create_app(engine, limits=Limits(unknown_fields=mode))) as client:
        described = client.get(f"/v1/policies/{policy_id}").json()
        schema, effective = described["input_schema"], described["effective"]
        jsonschema.Draft202012Validator.check_schema(schema)

        @settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(st.one_of(values(schema), changed(schema)))
        def same(record: Any) -> None:
            by_schema, by_server = _verdicts(client, policy_id, schema, effective, record)
            assert by_schema == by_server, (record, by_schema, by_server)

        same()


def test_the_drawn_records_include_both_verdicts() -> None:
    """The property above is not empty: the sampler policy gets valid and invalid records alike."""
    engine = _engine()
    with TestClient(create_app(engine)) as client:
        described = client.get("/v1/policies/contoh").json()
        schema = described["input_schema"]
        seen: set[bool] = set()

        @settings(max_examples=40, deadline=None, database=None)
        @given(changed(schema))
        def collect(record: Any) -> None:
            seen.add(_verdicts(client, "contoh", schema, described["effective"], record)[1])

        collect()
        assert seen == {True, False}


SAMPLE = {"kode": "AB-123", "tanggal": "2025-03-01", "jenis": "a", "nilai": 1, "bagian": 0.5,
          "rincian": [{"nama": "x"}]}


@pytest.mark.parametrize(("change", "accepted"), [
    ({}, True),
    ({"tanggal": "20250301"}, False), ({"tanggal": "2025-W10-1"}, False), ({"tanggal": "2025-02-30"}, False),
    ({"tanggal": "2025-03-01\n"}, False),  # fromisoformat reads all of these; format: date none
    ({"kode": "AB-123\n"}, False),  # a Python validator's `$` matches before a final newline
    ({"jumlah": None}, True),  # null stands for absent where a default fills in
    ({"nilai": 10 ** 25}, False), ({"nilai": 10 ** 25 - 1}, True), ({"bagian": -(10 ** 25)}, False),
    ({"jumlah": 51}, False), ({"nilai": 0}, False), ({"rincian": []}, False),
])
def test_edges_get_the_same_verdict_from_schema_and_server(change: dict[str, Any], accepted: bool) -> None:
    engine = _engine()
    with TestClient(create_app(engine)) as client:
        schema = client.get("/v1/policies/contoh").json()["input_schema"]
        assert _verdicts(client, "contoh", schema, "2024-01-01", {**SAMPLE, **change}) == (accepted, accepted)
