from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from kinerja_pengaduan import median_jam_respons, pengaduan_terbuka, persen_respons_tepat_waktu

from kinerja_rules import Engine, EvaluationError, discover

DAFTAR = [
    {"diterima": "2025-03-03T08:00:00+08:00", "direspons": "2025-03-03T10:00:00+08:00",
     "selesai": "2025-03-04T08:00:00+08:00"},                                             # 2 h
    {"diterima": "2025-03-03T08:00:00+08:00", "direspons": "2025-03-04T08:00:00+08:00"},  # 24 h, open
    {"diterima": "2025-03-05T01:00:00+00:00", "direspons": "2025-03-05T13:00:00+08:00"},  # 4 h across offsets, open
]


def test_worked_example() -> None:
    assert persen_respons_tepat_waktu(DAFTAR, Decimal(4)) == Decimal("66.67")
    assert median_jam_respons(DAFTAR) == Decimal("4.00")
    assert pengaduan_terbuka(DAFTAR) == 2


def test_even_count_median_and_empty_list() -> None:
    assert median_jam_respons(DAFTAR[:2]) == Decimal("13.00")
    assert median_jam_respons([]) is None
    assert persen_respons_tepat_waktu([], Decimal(24)) == Decimal("100.00")


def test_errors_name_the_complaint() -> None:
    bad = [DAFTAR[0], {"diterima": "2025-03-03T10:00:00+08:00", "direspons": "2025-03-03T09:00:00+08:00"}]
    with pytest.raises(ValueError, match="complaint 2: the response .* is before the complaint"):
        median_jam_respons(bad)
    with pytest.raises(ValueError, match="complaint 1: diterima 'kemarin' is not an ISO 8601"):
        pengaduan_terbuka([{"diterima": "kemarin", "direspons": "2025-03-03T09:00:00+08:00"}])
    with pytest.raises(ValueError, match="needs a UTC offset"):
        pengaduan_terbuka([{"diterima": "2025-03-03T08:00:00", "direspons": "2025-03-03T09:00:00"}])


def test_a_policy_calling_pengaduan(tmp_path: Path) -> None:
    (tmp_path / "aduan.yaml").write_text("""
policy: aduan
effective: 2024-01-01
types:
  aduan:
    fields:
      nomor: text
      diterima: text
      direspons: text
      selesai: optional text
inputs:
  pengaduan: {type: list of aduan, default: []}
outputs:
  tepat_waktu: {type: decimal, expr: "persen_respons_tepat_waktu(pengaduan, 4)"}
  median: {type: optional decimal, expr: median_jam_respons(pengaduan)}
  terbuka: {type: integer, expr: pengaduan_terbuka(pengaduan)}
""")
    engine = Engine.from_paths([tmp_path], discover())
    when = dt.date(2025, 3, 31)
    record = {"pengaduan": [{"nomor": str(i), **c} for i, c in enumerate(DAFTAR)]}
    out = engine.evaluate("aduan", record, as_of=when).outputs
    assert out == {"tepat_waktu": Decimal("66.67"), "median": Decimal("4.00"), "terbuka": 2}
    record["pengaduan"][1]["direspons"] = "2025-03-02T08:00:00+08:00"
    with pytest.raises(EvaluationError) as err:
        engine.evaluate("aduan", record, as_of=when)
    assert "plugin 'kinerja_pengaduan'" in err.value.where and "complaint 2" in str(err.value)
