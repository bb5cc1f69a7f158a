"""The public satisfaction index (Indeks Kepuasan Masyarakat) of PermenPANRB 14/2017.

Nine survey elements, each answered 1-4. Per element NRR is the mean answer;
IKM = (sum of NRR / 9) x 25, with the exact 1/9 weight, rounded half-up to 2 places.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from kinerja_rules import FunctionSpec, hookimpl

__version__ = "1.0.0"

ELEMENTS = ("persyaratan", "prosedur", "waktu", "biaya_tarif", "produk", "kompetensi_pelaksana",
            "perilaku_pelaksana", "penanganan_pengaduan", "sarana_prasarana")
# (lowest IKM of the grade, mutu, kinerja), highest first
GRADES = ((Decimal("88.31"), "A", "sangat_baik"), (Decimal("76.61"), "B", "baik"),
          (Decimal("65.00"), "C", "kurang_baik"), (Decimal("0"), "D", "tidak_baik"))


def ikm(survei: list[list[Any]]) -> dict[str, Any]:
    """Score a survey: a list of respondents, each nine answers 1-4 in the regulation's order."""
    if not survei:
        raise ValueError("the survey has no respondents")
    totals = [0] * len(ELEMENTS)
    for r, answers in enumerate(survei, start=1):
        if len(answers) != len(ELEMENTS):
            raise ValueError(f"respondent {r} gave {len(answers)} answers; the survey has {len(ELEMENTS)} elements")
        for e, answer in enumerate(answers):
            if type(answer) is not int or not 1 <= answer <= 4:
                raise ValueError(f"respondent {r}, element {e + 1} ({ELEMENTS[e]}): answer {answer} is outside 1-4")
            totals[e] += answer
    count = len(survei)
    nrr_sum = sum(Decimal(total) / count for total in totals)
    nilai = (nrr_sum / 9 * 25).quantize(Decimal("0.01"), ROUND_HALF_UP)
    mutu, kinerja = next((m, k) for low, m, k in GRADES if nilai >= low)
    return {"nilai": nilai, "mutu": mutu, "kinerja": kinerja, "responden": count}


@hookimpl
def kinerja_register_functions() -> list[FunctionSpec]:
    return [FunctionSpec(
        name="ikm", params=(("survei", "list of list of integer"),),
        returns="record {nilai: decimal, mutu: text, kinerja: text, responden: integer}",
        impl=ikm, description="Public satisfaction index (IKM) of a survey: value, grade A-D and label.",
        cite="PermenPANRB 14/2017")]
