from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from kinerja_layanan import capaian_layanan, pertumbuhan_layanan

from kinerja_rules import Engine, discover


@pytest.mark.parametrize("realisasi,target,arah,expected", [
    (450, 500, "naik", "90.00"),        # patients served against target
    (700, 500, "naik", "120.00"),       # capped at 120
    (40, 50, "turun", "120.00"),        # waiting time below target: 2 - 0.8
    (60, 50, "turun", "80.00"),
    (150, 50, "turun", "0.00"),         # clamped at 0
    (2, 3, "naik", "66.67"),            # half-up
])
def test_capaian(realisasi: int, target: int, arah: str, expected: str) -> None:
    assert capaian_layanan(Decimal(realisasi), Decimal(target), arah) == Decimal(expected)


@pytest.mark.parametrize("now,before,arah,expected", [
    (1100, 1000, "naik", "10.00"), (900, 1000, "naik", "-10.00"), (45, 50, "turun", "10.00"), (1, 3, "naik", "-66.67"),
])
def test_pertumbuhan(now: int, before: int, arah: str, expected: str) -> None:
    assert pertumbuhan_layanan(Decimal(now), Decimal(before), arah) == Decimal(expected)


def test_bad_inputs_are_clear() -> None:
    with pytest.raises(ValueError, match="arah must be"):
        capaian_layanan(Decimal(1), Decimal(1), "atas")
    with pytest.raises(ValueError, match="target must be > 0"):
        capaian_layanan(Decimal(1), Decimal(0), "naik")
    with pytest.raises(ValueError, match="previous period must be > 0"):
        pertumbuhan_layanan(Decimal(1), Decimal(0), "naik")


def test_a_policy_calling_layanan(tmp_path: Path) -> None:
    (tmp_path / "puskesmas.yaml").write_text("""
policy: puskesmas
effective: 2024-01-01
inputs:
  pasien: {type: decimal, min: 0}
  target: {type: decimal, greater_than: 0}
  pasien_lalu: {type: decimal, greater_than: 0}
outputs:
  capaian: {type: decimal, expr: 'capaian_layanan(pasien, target, "naik")'}
  tumbuh: {type: decimal, expr: 'pertumbuhan_layanan(pasien, pasien_lalu, "naik")'}
""")
    engine = Engine.from_paths([tmp_path], discover())
    out = engine.evaluate("puskesmas", {"pasien": 480, "target": 400, "pasien_lalu": 400}, as_of=dt.date(2024, 2, 1))
    assert out.outputs == {"capaian": Decimal("120.00"), "tumbuh": Decimal("20.00")}
