"""Language features beyond what the nasional baseline uses, evaluated end to end."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from kinerja_rules import Engine, check_paths
from tests.conftest import POLICIES

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def fitur() -> Engine:
    return Engine.from_paths([HERE / "policies"])


def test_features(fitur: Engine) -> None:
    record = {"periode": "2025-03", "mulai": "2020-03-15", "skor": 85, "nilai": [3, 1, 2],
              "kejadian": [{"jenis": "a", "menit": 10}, {"jenis": "b", "menit": 45}, {"jenis": "c", "menit": 70}]}
    out = fitur.evaluate("fitur", record).outputs
    assert out["masa_kerja_bulan"] == 59  # 2020-03-15 to 2025-03-01: not yet 60 whole months
    assert out["masa_kerja_tahun"] == 4
    assert out["akhir_bulan"] == dt.date(2025, 3, 31)
    assert out["tambah"] == dt.date(2024, 2, 29)
    assert out["menit_lama"] == [45, 70]
    assert out["terberat"] == "berat"  # priority: the highest-ranked matching row wins
    assert out["poin"] == 1 + 3 + 3  # collect + sum per incident
    assert out["aturan"] == 1 + 2 + 2  # collect + count
    assert out["rata"] == Decimal(2) and out["terkecil"] == 1
    assert out["label"] == "tanpa catatan!"
    assert out["kelas"] == "A"
    assert out["biaya"] == Decimal("20.00")  # 2% in force on 2025-03-01
    assert out["semua_lama"] is False and out["ada_lama"] is True
    assert out["bulat_bawah"] == Decimal("-2")


def test_dated_parameter_before_change_and_empty_lists(fitur: Engine) -> None:
    record = {"periode": "2024-12", "mulai": "2024-12-01", "skor": 10, "catatan": "ok"}
    out = fitur.evaluate("fitur", record).outputs
    assert out["biaya"] == Decimal("10.00")
    assert out["terberat"] is None and out["poin"] == 0 and out["menit_lama"] == []
    assert out["semua_lama"] is True and out["ada_lama"] is False
    assert out["label"] == "ok!" and out["kelas"] == "B"


def test_a_policy_split_across_files_merges(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("policy: dua\neffective: 2024-01-01\ninputs:\n  x: integer\n")
    (tmp_path / "b.yaml").write_text("policy: dua\noutputs:\n  y: {type: integer, expr: x + 1}\n")
    engine = Engine.from_paths([tmp_path])
    assert engine.evaluate("dua", {"x": 1}, as_of=dt.date(2024, 2, 1)).outputs == {"y": 2}


def test_a_name_defined_in_two_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("policy: dua\neffective: 2024-01-01\ndefinitions:\n  x: {expr: '1'}\n")
    (tmp_path / "b.yaml").write_text("policy: dua\ndefinitions:\n  x: {expr: '2'}\n")
    report = check_paths([tmp_path])
    assert [d.code for d in report.errors] == ["E020"]
    assert "defined twice" in report.errors[0].message and report.errors[0].span.file.endswith("b.yaml")


def test_row_override_and_removal_in_a_child(tmp_path: Path) -> None:
    (tmp_path / "anak.yaml").write_text("""
policy: anak
extends: nasional
tables:
  potongan_per_kejadian:
    override: true
    rows:
      tl4: {override: true, when: {menit: ">= 91"}, then: 3%}
""")
    engine = Engine.from_paths([POLICIES, tmp_path])
    record = {"nip": "198507122010011003", "periode": "2025-03", "status": "pns", "unit_kerja": "x",
              "jabatan": {"jenis": "pelaksana", "kelas": 9}, "skp": {"indikator": [{"nama": "a", "target": 1,
              "realisasi": 1}]}, "perilaku": {"atasan": 80}, "presensi": {"hari_kerja": 20,
              "terlambat_menit": [100]}, "tahun_dalam_pangkat": 1}
    assert engine.evaluate("anak", record).outputs["tpp"]["komponen_disiplin"] == 2_231_000  # 3% off 2,300,000
    assert engine.evaluate("nasional", record).outputs["tpp"]["komponen_disiplin"] == 2_254_000  # 2%
