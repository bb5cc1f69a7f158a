"""The national baseline follows today's law: the rater's ratings beside the legacy numeric path,
PP 94/2021's discipline cut as written, TPP withheld and paid later."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import BASE_RECORD, bundled
from tests.test_authoring import region


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(BASE_RECORD)
    record.update(changes)
    return record


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 1300), st.integers(0, 100), st.lists(st.integers(0, 100), max_size=3))
def test_the_ratings_path_agrees_with_the_numbers_when_the_ratings_are_what_the_numbers_give(
        realisasi: int, atasan: int, rekan: list[int]) -> None:
    engine = bundled()
    record = _record(perilaku={"atasan": atasan, "rekan_kerja": rekan})
    record["skp"]["indikator"][0]["realisasi"] = realisasi
    numeric = engine.decide("nasional", record).outputs["evaluasi"]
    rated = engine.decide("nasional", {**record, "penilaian": {
        "rating_hasil_kerja": numeric["hasil_kerja"], "rating_perilaku": numeric["perilaku_kerja"]}}).outputs
    assert numeric["dasar_penilaian"] == "capaian_skp" and rated["evaluasi"]["dasar_penilaian"] == "rating_penilai"
    assert rated["evaluasi"]["predikat"] == numeric["predikat"]


def test_a_region_on_the_legacy_path_decides_by_the_numbers_even_with_ratings(tmp_path: Path) -> None:
    engine = region(tmp_path, "parameters:\n  metode_penilaian: {override: true, type: metode_penilaian, "
                              "values: {2024-01-01: capaian}}\n")
    record = _record(penilaian={"rating_hasil_kerja": "di_atas_ekspektasi", "rating_perilaku": "di_atas_ekspektasi"})
    outputs = engine.decide("region", record).outputs["evaluasi"]
    assert outputs["dasar_penilaian"] == "capaian_skp" and outputs["predikat"] == "baik"
    assert bundled().decide("nasional", record).outputs["evaluasi"]["predikat"] == "sangat_baik"


def test_a_region_that_forfeits_tpp_for_a_missing_asset_report_pays_nothing_and_withholds_nothing(
        tmp_path: Path) -> None:
    engine = region(tmp_path, "parameters:\n  akibat_lhkpn_tidak_dilaporkan: {override: true, type: akibat_kewajiban, "
                              "values: {2024-01-01: hapus}}\n")
    tpp = engine.decide("region", _record(lhkpn_dilaporkan=False, penangguhan_terutang=[
        {"periode": "2025-01", "jumlah": 4_500_000}])).outputs["tpp"]
    assert (tpp["diterima"], tpp["ditangguhkan"], tpp["pembayaran_penangguhan"], tpp["dibayar"]) == (0, 0, 4_500_000,
                                                                                                     4_500_000)
    nasional = bundled().decide("nasional", _record(lhkpn_dilaporkan=False)).outputs["tpp"]
    assert (nasional["diterima"], nasional["ditangguhkan"], nasional["dibayar"]) == (4_500_000, 4_500_000, 0)


def test_a_region_adds_a_duty_tpp_waits_for(tmp_path: Path) -> None:
    engine = region(tmp_path, "inputs:\n  skp_tahunan_selesai: {type: boolean, default: true}\ndefinitions:\n"
                              "  kewajiban_terpenuhi:\n    override: true\n    type: boolean\n"
                              "    expr: parent(kewajiban_terpenuhi) and skp_tahunan_selesai\n")
    tpp = engine.decide("region", _record(skp_tahunan_selesai=False)).outputs["tpp"]
    assert (tpp["diterima"], tpp["ditangguhkan"], tpp["dibayar"]) == (4_500_000, 4_500_000, 0)


def test_impact_and_rapel_report_what_is_paid_beside_the_entitlement(tmp_path: Path) -> None:
    from kinerja_rules.impact import impact

    base = bundled()
    records = [_record(nip=f"1985071220100110{i:02d}", lhkpn_dilaporkan=i != 0) for i in range(3)]
    # the proposal as nasional's next version (forfeit, not withhold), decided beside the one in service
    text = (Path(__file__).parent.parent / "policies" / "nasional.yaml").read_text().replace(
        "values: {2024-01-01: tangguhkan}", "values: {2024-01-01: hapus}")
    (tmp_path / "usul").mkdir()
    (tmp_path / "usul" / "nasional.yaml").write_text(text)
    from kinerja_rules import Engine

    usul = Engine.from_paths([tmp_path / "usul"])
    report = impact(base, usul, "nasional", list(enumerate(records, start=1)), None, None, None, False).report()
    assert (report["tpp"]["before"], report["tpp"]["after"]) == (3 * 4_500_000, 2 * 4_500_000)  # diterima
    assert (report["tpp_dibayar"]["before"], report["tpp_dibayar"]["after"]) == (2 * 4_500_000, 2 * 4_500_000)


KONDISI = """parameters:
  bagian_komponen_tpp:
    extend: true
    values: {2025-01-01: {kondisi_kerja: 15%}}
  penerima_kondisi_kerja:
    override: true
    type: list of text
    values: {2024-01-01: [], 2025-01-01: [perawat_icu, operator_alat_berat]}
"""


def test_a_region_pays_kondisi_kerja_to_two_posts_beside_the_basic_tpp(tmp_path: Path) -> None:
    engine = region(tmp_path, KONDISI)
    for post, paid in (("perawat_icu", True), ("operator_alat_berat", True), ("staf_umum", False), (None, False)):
        record = _record()
        record["jabatan"] = {**record["jabatan"], **({"nama": post} if post else {})}
        tpp = engine.decide("region", record).outputs["tpp"]
        jenis = [k["jenis"] for k in tpp["komponen"]]
        if paid:
            assert jenis == ["beban_kerja", "prestasi_kerja", "kondisi_kerja"]
            assert tpp["komponen"][2] == {"jenis": "kondisi_kerja", "pagu": 675_000, "diterima": 675_000}
            assert tpp["diterima"] == 4_500_000 + 675_000 and tpp["pagu"] == 5_175_000 and tpp["potongan"] == 0
        else:
            assert jenis == ["beban_kerja", "prestasi_kerja"] and tpp["diterima"] == 4_500_000
        assert sum(k["diterima"] for k in tpp["komponen"]) == tpp["diterima"]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 17), st.lists(st.integers(1, 200), max_size=4), st.sampled_from(["pns", "cpns"]),
       st.integers(0, 1200))
def test_the_components_always_add_up_to_what_is_received(kelas: int, late: list[int], status: str,
                                                         realisasi: int) -> None:
    record = _record(status=status)
    record["jabatan"] = {"jenis": "pelaksana", "kelas": kelas, "nama": "perawat_icu"}
    record["presensi"] = {"hari_kerja": 21, "terlambat_menit": late}
    record["skp"]["indikator"][0]["realisasi"] = realisasi
    tpp = bundled().decide("nasional", record).outputs["tpp"]
    assert sum(k["diterima"] for k in tpp["komponen"]) == tpp["diterima"]
    assert all(k["diterima"] >= 0 for k in tpp["komponen"])


def test_a_record_written_in_an_expression_is_checked_against_its_type() -> None:
    from tests.test_authoring import diagnose

    head = ("policy: region\nextends: nasional\noutputs:\n  region.k:\n"
            "    type: 'record {jenis: jenis_komponen_tpp, pagu: money}'\n    expr: '")
    assert diagnose(head + "{jenis: kondisi_kerja, pagu: 5}'\n") == []
    for body, said in (("{jenis: kondisi_kerja, pagu: 5, lain: 1}", "has no field 'lain'"),
                       ("{jenis: kondisi_kerja}", "needs pagu"),
                       ("{jenis: kondisi_kerja, jenis: beban_kerja, pagu: 1}", "given twice"),
                       ("{jenis: kondisi_kerjaa, pagu: 5}", "did you mean 'kondisi_kerja'")):
        problems = diagnose(head + body + "'\n")
        assert len(problems) == 1 and said in problems[0], (body, problems)
