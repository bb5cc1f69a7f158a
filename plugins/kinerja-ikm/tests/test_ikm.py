from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from kinerja_ikm import ikm

from kinerja_rules import Engine, EvaluationError, discover


def test_all_fours_is_100_and_all_ones_is_25() -> None:
    assert ikm([[4] * 9]) == {"nilai": Decimal("100.00"), "mutu": "A", "kinerja": "sangat_baik", "responden": 1}
    assert ikm([[1] * 9])["nilai"] == Decimal("25.00") and ikm([[1] * 9])["mutu"] == "D"


def test_exact_ninth_weight() -> None:
    # one element at 3, eight at 4: (8 x 4 + 3) / 9 x 25 = 97.2222... -> 97.22
    assert ikm([[4] * 8 + [3]])["nilai"] == Decimal("97.22")


@pytest.mark.parametrize("answers,nilai,mutu", [
    # 100 respondents; k of the 900 answers are 3 instead of 4 shifts IKM by k x 25 / 900
    # IKM = 100 - k/36 : k=421 -> 88.305... -> 88.31 (A); k=422 -> 88.277... -> 88.28 (B)
    (421, Decimal("88.31"), "A"), (422, Decimal("88.28"), "B"),
])
def test_boundary_a_b(answers: int, nilai: Decimal, mutu: str) -> None:
    flat = [3] * answers + [4] * (900 - answers)
    survey = [flat[i * 9:(i + 1) * 9] for i in range(100)]
    out = ikm(survey)
    assert out["nilai"] == nilai and out["mutu"] == mutu


@pytest.mark.parametrize("threes,twos,nilai,mutu,kinerja", [
    # all answers 3 -> 75.00 (C); with 2s among the 3s the value falls
    (900, 0, Decimal("75.00"), "C", "kurang_baik"),
])
def test_middle_grades(threes: int, twos: int, nilai: Decimal, mutu: str, kinerja: str) -> None:
    flat = [3] * threes + [2] * twos
    out = ikm([flat[i * 9:(i + 1) * 9] for i in range(len(flat) // 9)])
    assert (out["nilai"], out["mutu"], out["kinerja"]) == (nilai, mutu, kinerja)


@pytest.mark.parametrize("nilai,mutu", [
    (Decimal("88.31"), "A"), (Decimal("88.30"), "B"), (Decimal("76.61"), "B"), (Decimal("76.60"), "C"),
    (Decimal("65.00"), "C"), (Decimal("64.99"), "D"),
])
def test_grade_boundaries(nilai: Decimal, mutu: str) -> None:
    from kinerja_ikm import GRADES

    assert next(m for low, m, _ in GRADES if nilai >= low) == mutu


def test_errors_name_respondent_and_element() -> None:
    with pytest.raises(ValueError, match="no respondents"):
        ikm([])
    with pytest.raises(ValueError, match=r"respondent 2, element 3 \(waktu\): answer 5 is outside 1-4"):
        ikm([[4] * 9, [4, 4, 5, 4, 4, 4, 4, 4, 4]])
    with pytest.raises(ValueError, match="respondent 1 gave 8 answers"):
        ikm([[4] * 8])


def test_a_policy_calling_ikm(tmp_path: Path) -> None:
    (tmp_path / "layanan.yaml").write_text("""
policy: layanan_publik
effective: 2024-01-01
inputs:
  survei: list of list of integer
outputs:
  ikm: {type: decimal, expr: ikm(survei).nilai}
  mutu: {type: text, expr: ikm(survei).mutu}
""")
    engine = Engine.from_paths([tmp_path], discover())
    out = engine.evaluate("layanan_publik", {"survei": [[4] * 9, [3] * 9]}, as_of=dt.date(2024, 6, 1)).outputs
    assert out == {"ikm": Decimal("87.50"), "mutu": "B"}
    with pytest.raises(EvaluationError) as err:
        engine.evaluate("layanan_publik", {"survei": []}, as_of=dt.date(2024, 6, 1))
    assert "plugin 'kinerja_ikm'" in err.value.where and "no respondents" in str(err.value)
