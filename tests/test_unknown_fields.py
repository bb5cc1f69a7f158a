"""Fields a record holds that the policy does not declare: a near miss is an error with 'did you
mean', any other is a warning in the decision, and the policy or the server sets the rule."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from kinerja_rules import Engine, ErrorResult, RecordError
from kinerja_rules.engine import validate_files
from kinerja_rules.server import Limits, create_app
from tests.conftest import BASE_RECORD, bundled
from tests.test_cli import kinerja

SANCTIONED = {**BASE_RECORD, "hukuman_disiplin": {"tingkat": "sedang"}}  # PP 94/2021: the 25 % cut
MISSPELT = {**BASE_RECORD, "hukuman_displin": {"tingkat": "sedang"}}  # one letter off


def _with(**extra: Any) -> dict[str, Any]:
    return {**copy.deepcopy(BASE_RECORD), **extra}


def test_a_misspelt_field_is_an_error_that_names_the_field_it_meant() -> None:
    engine = bundled()
    assert engine.evaluate("nasional", SANCTIONED).get("tpp.diterima") == 3_375_000
    with pytest.raises(RecordError) as caught:
        engine.evaluate("nasional", MISSPELT)
    [error] = caught.value.errors
    assert error.path == "hukuman_displin"
    assert error.message == "is not a field of this record; did you mean 'hukuman_disiplin'?"


@pytest.mark.parametrize(("path", "record", "meant"), [
    ("jabatan.klas", _with(jabatan={"jenis": "pelaksana", "klas": 7, "kelas": 7}), "jabatan.kelas"),  # short: 1
    ("skp.indikator[0].targte", _with(skp={"indikator": [{"nama": "a", "targte": 1, "target": 1, "realisasi": 1}]}),
     "skp.indikator[0].target"),  # a swap counts one
    ("Status", _with(Status="pns"), "status"),  # case alone
])
def test_near_misses_are_found_at_every_level(path: str, record: dict[str, Any], meant: str) -> None:
    result = bundled().evaluate_safely("nasional", record)
    assert isinstance(result, ErrorResult), result
    assert [(f.path, f.message) for f in result.error.fields] == [
        (path, f"is not a field of this record; did you mean {meant!r}?")]


def test_other_unknown_fields_are_warnings_and_change_nothing() -> None:
    engine = bundled()
    plain = engine.evaluate("nasional", BASE_RECORD)
    fed = engine.evaluate("nasional", _with(sumber_data="e-kinerja",
                                            jabatan={"jenis": "pelaksana", "kelas": 7, "eselon": "x"},
                                            nip_lama="12345", kelas=9))  # 'kelas' is jabatan's field, not the record's
    assert fed.outputs == plain.outputs
    assert [(w.path, w.message) for w in fed.warnings] == [
        (path, "is not a field of this record; it was not read") for path in ("sumber_data", "nip_lama", "kelas",
                                                                              "jabatan.eselon")]
    assert "warnings" not in json.loads(msgspec.json.encode(plain))  # a clean record's decision is as it was


def test_the_rule_is_the_policys_inherited_and_the_callers_override_wins() -> None:
    strict = ("policy: ketat\nextends: nasional\nversion: '1'\nunknown_fields: error\n")
    child = "policy: anak\nextends: ketat\nversion: '1'\n"
    loose = "policy: longgar\nextends: nasional\nversion: '1'\nunknown_fields: ignore\n"
    report = validate_files({"ketat.yaml": strict, "anak.yaml": child, "longgar.yaml": loose},
                            base_sources=bundled().sources())
    assert report.ok, report.problems
    engine = Engine(report.policies)
    extra = _with(sumber_data="e-kinerja")
    for pid in ("ketat", "anak"):
        result = engine.evaluate_safely(pid, extra)
        assert isinstance(result, ErrorResult)
        assert [(f.path, f.message) for f in result.error.fields] == [
            ("sumber_data", "is not a field of this record (unknown_fields: error)")]
    assert engine.evaluate("longgar", extra).warnings == []
    assert engine.evaluate("longgar", MISSPELT).get("tpp.diterima") == 4_500_000
    assert engine.evaluate("ketat", extra, unknown_fields="warn").warnings[0].path == "sumber_data"
    assert isinstance(engine.evaluate_safely("longgar", MISSPELT, unknown_fields="warn"), ErrorResult)


def test_a_bad_rule_in_a_policy_is_a_diagnostic_with_a_suggestion() -> None:
    report = validate_files({"x.yaml": "policy: x\nextends: nasional\nunknown_fields: eror\n"},
                            base_sources=bundled().sources())
    [problem] = report.errors
    assert problem.code == "E010" and "'unknown_fields' must be warn, error or ignore; did you mean 'error'?" \
        in problem.message and problem.span is not None and problem.span.line == 3


def test_a_record_with_thousands_of_unknown_keys_is_refused_quickly() -> None:
    engine = bundled()
    many = _with(**{f"kolom_{i}": i for i in range(5000)})
    start = time.perf_counter()
    result = engine.evaluate_safely("nasional", many)
    assert time.perf_counter() - start < 2
    assert isinstance(result, ErrorResult)
    assert result.error.fields[0].message == "has 5000 fields this policy does not declare; at most 500 are taken"
    within = engine.evaluate("nasional", _with(**{f"kolom_{i}": i for i in range(300)}, **{"x" * 100_000: 1}))
    assert len(within.warnings) == 101 and within.warnings[-1].message == "and 201 more unknown fields"
    assert all(len(w.path) <= 64 for w in within.warnings)


def test_the_server_answers_422_for_a_near_miss_and_lists_the_rest() -> None:
    with TestClient(create_app(bundled())) as client:
        near = client.post("/v1/policies/nasional/evaluate", json={"record": MISSPELT})
        assert near.status_code == 422, near.text
        assert near.json()["errors"] == [{"path": "hukuman_displin",
                                          "message": "is not a field of this record; did you mean "
                                                     "'hukuman_disiplin'?"}]
        far = client.post("/v1/policies/nasional/evaluate", json={"record": _with(sumber="x")})
        assert far.status_code == 200 and far.json()["warnings"] == [
            {"path": "sumber", "message": "is not a field of this record; it was not read"}]
        batch = client.post("/v1/policies/nasional/evaluate/batch", json={"records": [MISSPELT, _with(sumber="x")]})
        first, second = batch.json()["results"]
        assert first["error"]["fields"][0]["path"] == "hukuman_displin" and second["warnings"][0]["path"] == "sumber"
        described = client.get("/v1/policies/nasional").json()
        assert described["unknown_fields"] == "warn" and "additionalProperties" not in described["input_schema"]


def test_kinerja_serve_unknown_fields_overrides_every_policy() -> None:
    with TestClient(create_app(bundled(), limits=Limits(unknown_fields="error"))) as client:
        answer = client.post("/v1/policies/nasional/evaluate", json={"record": _with(sumber="x")})
        assert answer.status_code == 422 and answer.json()["errors"][0]["path"] == "sumber"
        schema = client.get("/v1/policies/nasional").json()
        assert schema["unknown_fields"] == "error" and schema["input_schema"]["additionalProperties"] is False
        assert schema["input_schema"]["properties"]["jabatan"]["additionalProperties"] is False
    with TestClient(create_app(bundled(), limits=Limits(unknown_fields="ignore"))) as client:
        answer = client.post("/v1/policies/nasional/evaluate", json={"record": MISSPELT})
        assert answer.status_code == 200 and "warnings" not in answer.json()
    wrong = kinerja("serve", "--unknown-fields", "strict", "--port", "0")
    assert wrong.returncode == 2 and "--unknown-fields" in wrong.stderr and "'strict'" in wrong.stderr


def test_kinerja_eval_gives_the_record_its_error_and_decides_the_rest() -> None:
    lines = "\n".join(json.dumps(r) for r in (MISSPELT, _with(sumber="x"))) + "\n"
    result = kinerja("eval", "nasional", stdin=lines)
    assert result.returncode == 1
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["error"]["line"] == 1 and "did you mean 'hukuman_disiplin'" in first["error"]["fields"][0]["message"]
    assert second["warnings"][0]["path"] == "sumber" and second["outputs"]["tpp"]["diterima"] == 4_500_000
    strict = kinerja("eval", "nasional", "--unknown-fields", "error", stdin=lines)
    assert json.loads(strict.stdout.splitlines()[1])["error"]["fields"][0]["path"] == "sumber"


def test_a_key_that_is_not_a_plain_name_is_quoted_in_its_path() -> None:
    decided = bundled().evaluate("nasional", _with(**{"a.b": 1, "": 2, "jabatan": {
        "jenis": "pelaksana", "kelas": 7, "x y": 3}}))
    assert [w.path for w in decided.warnings] == ['["a.b"]', '[""]', 'jabatan["x y"]']
