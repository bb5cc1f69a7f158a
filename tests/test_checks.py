"""`checks:`: conditions a record must meet before anything is decided, each failure an error for
that record naming the field or the list item, and the SKP segments of `nasional` that use them."""

from __future__ import annotations

import copy
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from kinerja_rules import Engine
from kinerja_rules.errors import FieldError, RecordError
from kinerja_rules.population_run import GroupReport
from kinerja_rules.server import create_app
from tests.conftest import BASE_RECORD
from tests.test_authoring import diagnose, region
from tests.test_cli import kinerja

TRANSFER = [
    {"dari": "2025-01-01", "sampai": "2025-01-31", "unit_kerja": "Dinas Kesehatan",
     "indikator": [{"nama": "Laporan", "target": 100, "realisasi": 80}]},
    {"dari": "2025-02-01", "sampai": "2025-03-31", "unit_kerja": "Dinas Pendidikan",
     "indikator": [{"nama": "Pelayanan", "target": 100, "realisasi": 110}]},
]


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(BASE_RECORD)
    record.update(changes)
    return record


def _segments(segments: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    return _record(**{"skp": {"segmen": segments}, "periode": "2025-03", "jenis_penilaian": "triwulan_i", **changes})


def _errors(engine: Engine, policy: str, record: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(RecordError) as caught:
        engine.evaluate(policy, record)
    return list(caught.value.errors)


# ---- the language ----

def test_a_check_names_the_field_and_each_failing_item_of_a_list(tmp_path: Path) -> None:
    engine = region(tmp_path, """checks:
  kelas_wajar:
    require: jabatan.kelas <= 15 or jabatan.jenis = jpt
    at: jabatan.kelas
    message: a kelas above 15 is only for a JPT post
  rekan_bukan_nol:
    for: x in perilaku.rekan_kerja
    require: x > 0
    message: a peer's score of 0 is no score
""")
    record = _record(jabatan={"jenis": "pelaksana", "kelas": 16},
                     perilaku={"atasan": 80, "rekan_kerja": [80, 0, 70, 0]})
    assert _errors(engine, "region", record) == [
        FieldError(path="jabatan.kelas", message="a kelas above 15 is only for a JPT post", check="kelas_wajar"),
        FieldError(path="perilaku.rekan_kerja[1]", message="a peer's score of 0 is no score", check="rekan_bukan_nol"),
        FieldError(path="perilaku.rekan_kerja[3]", message="a peer's score of 0 is no score", check="rekan_bukan_nol")]
    fine = _record(jabatan={"jenis": "jpt", "kelas": 16}, perilaku={"atasan": 80, "rekan_kerja": [80]})
    assert engine.evaluate("region", fine).outputs["evaluasi"]["predikat"] == "baik"


def test_a_region_overrides_an_inherited_check_and_must_say_so(tmp_path: Path) -> None:
    text = """checks:
  segmen_tidak_tumpang_tindih:
    {override}for: s in skp.segmen
    require: "true"
    message: overlaps are allowed here
"""
    problems = diagnose("policy: region\nextends: nasional\n" + text.replace("{override}", ""))
    assert any(p.startswith("E02") and "override" in p for p in problems), problems
    engine = region(tmp_path, text.replace("{override}", "override: true\n    "))
    overlapping = copy.deepcopy(TRANSFER)
    overlapping[1]["dari"] = "2025-01-20"
    assert engine.evaluate("region", _segments(overlapping)).outputs["evaluasi"]["capaian_skp"] > 0
    assert [e.check for e in _errors(engine, "nasional", _segments(overlapping))] == [
        "segmen_tidak_tumpang_tindih", "segmen_tidak_tumpang_tindih"]


@pytest.mark.parametrize(("check", "expected"), [
    ("for: s in skp\n    require: 'true'", "E145"),  # not a list
    ("for: s skp.segmen\n    require: 'true'", "E145"),  # no `in`
    ("for: s in [1, 2]\n    require: 'true'", "E145"),  # not of the record
    ("require: capaian_skp > 0", "E145"),  # a definition: decided after the checks
    ("require: presensi.hari_kerja > 0\n    at: presensi.hari", "E145"),  # no such field
    ("for: s in skp.segmen\n    require: 'true'\n    at: sampe", "E145"),  # no such field of an item
    ("require: presensi.hari_kerja", "E102"),  # not a condition
    ("require: presensi.hari_kerja >", "E100"),
    ("for: s in skp.segmen\n    require: s.dari <= s.sampai\n    cite: no-such-ref", "E033"),
])
def test_a_check_that_cannot_run_is_refused_where_it_is_written(check: str, expected: str) -> None:
    problems = diagnose(f"policy: region\nextends: nasional\nchecks:\n  uji:\n    {check}\n    message: m\n")
    assert [p.split()[0] for p in problems if p.startswith("E")] == [expected], problems
    assert all(":" in p.split()[1] for p in problems)  # each at its line and column


def test_a_fault_inside_a_check_is_an_evaluation_error_naming_the_check(tmp_path: Path) -> None:
    engine = region(tmp_path, "checks:\n  bagi:\n    require: 10 / presensi.tanpa_keterangan_hari > 1\n"
                              "    message: m\n")
    [result] = engine.decide_many("region", [_record()])
    assert result.error.kind == "evaluation" and result.error.where == "check 'bagi'"  # type: ignore[union-attr]
    assert result.error.paths == ["presensi.tanpa_keterangan_hari"]  # type: ignore[union-attr]


def test_a_population_member_failing_a_check_gets_its_error_and_the_others_are_decided(engine: Engine) -> None:
    bad = _segments([TRANSFER[1], TRANSFER[1]])
    people = [_record(nip=f"1985071220100100{i:02d}") for i in range(3)] + [bad]
    groups = {"Dinas Kesehatan": {"predikat_organisasi": "baik"}}
    results = [r for r in engine.evaluate_population("nasional", people, groups) if not isinstance(r, GroupReport)]
    assert [getattr(r, "error", None) is None for r in results] == [True, True, True, False]
    assert [f.path for f in results[3].error.fields] == ["skp.segmen[0]", "skp.segmen[1]"]  # type: ignore[union-attr]


# ---- the segments of nasional, through HTTP and the CLI ----

def test_segments_over_http_combine_by_days_and_a_bad_one_is_422_naming_it(engine: Engine) -> None:
    with TestClient(create_app(engine)) as client:
        answer = client.post("/v1/policies/nasional/evaluate", json={"record": _segments(TRANSFER)})
        assert answer.status_code == 200, answer.text
        evaluasi = answer.json()["outputs"]["evaluasi"]
        assert evaluasi["capaian_skp"] == 99.67  # (31 × 80 + 59 × 110) / 90
        assert [s["hari"] for s in evaluasi["segmen_skp"]] == [31, 59]
        outside = copy.deepcopy(TRANSFER)
        outside[1]["sampai"] = "2025-04-30"
        problem = client.post("/v1/policies/nasional/evaluate", json={"record": _segments(outside)}).json()
        assert problem["type"] == "/problems/invalid-record"
        assert problem["errors"] == [{"path": "skp.segmen[1]", "check": "segmen_dalam_periode", "message": (
            "the segment lies outside the period evaluated (the month; the quarter of triwulan_i-iii; "
            "the year of triwulan_iv_akhir)")}]
        described = client.get("/v1/policies/nasional").json()["checks"]
        assert described["segmen_tidak_tumpang_tindih"]["at"] == "skp.segmen[*]"
        assert described["skp_indikator_atau_segmen"]["at"] == "skp.indikator"


def test_the_annual_evaluation_takes_segments_across_the_year(engine: Engine) -> None:
    year = [{**TRANSFER[0], "dari": "2025-01-01", "sampai": "2025-06-30"},
            {**TRANSFER[1], "dari": "2025-07-01", "sampai": "2025-12-31"}]
    annual = _segments(year, periode="2025-12", jenis_penilaian="triwulan_iv_akhir")
    outputs = engine.evaluate("nasional", annual).outputs["evaluasi"]
    assert outputs["periode_penilaian"] == "2025-TW4"
    assert outputs["capaian_skp"] == (Decimal(181 * 80 + 184 * 110) / 365).quantize(Decimal("0.01"), ROUND_HALF_UP)
    quarter = _segments(year, periode="2025-12", jenis_penilaian="triwulan_iii")
    assert [e.path for e in _errors(engine, "nasional", quarter)] == ["skp.segmen[0]", "skp.segmen[1]"]


def test_a_region_taking_the_last_segment(tmp_path: Path) -> None:
    engine = region(tmp_path, "parameters:\n  kombinasi_segmen_skp: {override: true, type: kombinasi_segmen_skp, "
                              "values: {2024-01-01: segmen_terakhir}}\n")
    assert engine.evaluate("region", _segments(TRANSFER)).outputs["evaluasi"]["capaian_skp"] == 110
    rated = copy.deepcopy(TRANSFER)
    rated[0]["penilaian"] = {"rating_hasil_kerja": "di_atas_ekspektasi", "rating_perilaku": "di_atas_ekspektasi"}
    rated[1]["penilaian"] = {"rating_hasil_kerja": "di_bawah_ekspektasi", "rating_perilaku": "sesuai_ekspektasi"}
    evaluasi = engine.evaluate("region", _segments(rated)).outputs["evaluasi"]
    assert (evaluasi["hasil_kerja"], evaluasi["dasar_penilaian"]) == ("di_bawah_ekspektasi", "rating_penilai")


def test_segments_through_the_cli(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_segments(TRANSFER)))
    bad.write_text(json.dumps(_segments([TRANSFER[0], {**TRANSFER[1], "dari": "2025-03-10", "sampai": "2025-03-01"}])))
    done = kinerja("eval", "nasional", "-i", str(good))
    assert done.returncode == 0 and json.loads(done.stdout)["outputs"]["evaluasi"]["capaian_skp"] == 99.67
    failed = kinerja("eval", "nasional", "-i", str(bad))
    assert failed.returncode != 0
    [field] = json.loads(failed.stdout)["error"]["fields"]
    assert field["path"] == "skp.segmen[1].sampai" and field["check"] == "segmen_berurutan"


def test_hostile_segments_are_bounded_before_any_check_runs(engine: Engine) -> None:
    many = [TRANSFER[0]] * 25  # more segments than a period can hold
    errors = _errors(engine, "nasional", _segments(many))
    assert [e.path for e in errors] == ["skp.segmen"] and errors[0].check is None
    odd = _segments([{**TRANSFER[0], "dari": "2025-02-30"}])
    assert [e.path for e in _errors(engine, "nasional", odd)] == ["skp.segmen[0].dari"]


# ---- the unit's data in a population run ----

@pytest.mark.parametrize("by", [None, "[unit_induk, periode]"])
def test_a_unit_heads_hasil_kerja_follows_the_groups_predikat_organisasi(tmp_path: Path, by: str | None) -> None:
    """Grouped by a record path the data is read first; grouped by a definition, the stage runs again."""
    text = "definitions:\n  unit_induk: {type: text, expr: unit_kerja}\n"
    if by is not None:
        text += f"population:\n  grouping: {{override: true, by: {by}}}\n"
    engine = region(tmp_path, text)
    head = _record(nip="198507122010011099", jabatan={"jenis": "administrator", "kelas": 9, "kepala_unit": True},
                   penilaian={"rating_hasil_kerja": "sesuai_ekspektasi", "rating_perilaku": "di_atas_ekspektasi"})
    for unit, hasil in (("istimewa", "di_atas_ekspektasi"), ("kurang", "di_bawah_ekspektasi")):
        [decision] = [r for r in engine.evaluate_population("region", [head, _record()], {
            "Dinas Kesehatan": {"predikat_organisasi": unit}}) if not isinstance(r, GroupReport)][:1]
        assert decision.outputs["evaluasi"]["hasil_kerja"] == hasil, unit  # type: ignore[union-attr]
    alone = engine.evaluate("region", head).outputs["evaluasi"]
    assert alone["hasil_kerja"] == "sesuai_ekspektasi"  # decided alone: the record's own (none here)
