"""The kurva distribusi as guidance: the engine proposes (`propose`), the unit's leader fixes the
predikat in a penetapan sent with the group data, and the calibration workbook carries it between."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from openpyxl import load_workbook

from kinerja_rules import Engine, GroupReport, PopulationInputError
from kinerja_rules.population import Limit, Member, apply_quota
from kinerja_rules.server import create_app
from kinerja_rules.server.decisions import Recorder
from kinerja_rules.store import SQLiteStore
from tests.conftest import BASE_RECORD, POLICIES, ROOT
from tests.test_cli import kinerja

UNIT = "Dinas Kesehatan"
PREDIKAT = ["sangat_baik", "baik", "butuh_perbaikan", "kurang", "sangat_kurang"]
SIGNED = {"nomor": "800/12/DINKES/2025", "tanggal": "2025-04-02", "ditetapkan_oleh": "197001011995031001"}


def _twelve() -> list[dict[str, Any]]:
    """A unit of 12, all rated baik by their numbers, ranked by capaian (the first best)."""
    people = []
    for i in range(12):
        record: dict[str, Any] = copy.deepcopy(BASE_RECORD)
        record["nip"] = f"19850712201001{i:04d}"
        record["skp"] = {"indikator": [{"nama": "Laporan", "target": 1000, "realisasi": 1090 - 10 * i}]}
        people.append(record)
    return people


def _groups(**penetapan: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"predikat_organisasi": "baik"}
    if penetapan:
        data["penetapan"] = {**SIGNED, **penetapan}
    return {UNIT: data}


def _run(engine: Engine, groups: dict[str, Any], records: list[dict[str, Any]] | None = None) -> tuple[
        list[Any], GroupReport]:
    results = list(engine.evaluate_population("nasional", records or _twelve(), groups))
    [report] = [r for r in results if isinstance(r, GroupReport)]
    return [r for r in results if not isinstance(r, GroupReport)], report


# ---- the arithmetic ----

def test_propose_moves_nobody_and_its_usulan_meets_maximums_and_minimums() -> None:
    members = [Member(key=f"m{i}", category="baik", order=(i,)) for i in range(10)]
    limits = [Limit(categories=frozenset({"baik"}), bound="max", share=Decimal("0.7")),
              Limit(categories=frozenset({"butuh_perbaikan", "kurang"}), bound="min", count=1)]
    result = apply_quota(members, PREDIKAT, limits, "propose")
    assert set(result.final.values()) == {"baik"} and len(result.violations) == 2  # reported as they stand
    assert [result.proposed[f"m{i}"] for i in range(10)] == ["baik"] * 7 + ["butuh_perbaikan"] * 3
    enforced = apply_quota(members, PREDIKAT, limits, "enforce")
    assert enforced.final == result.proposed  # the same moves enforce makes, here already meeting the minimum
    low = [Member(key=f"m{i}", category="sangat_baik" if i < 2 else "baik", order=(i,)) for i in range(3)]
    only_min = apply_quota(low, PREDIKAT, limits[1:], "propose")
    assert only_min.proposed == {"m0": "sangat_baik", "m1": "sangat_baik", "m2": "butuh_perbaikan"}  # the lowest
    assert only_min.infeasible == []


# ---- the unit of 12 ----

def test_nasional_proposes_and_the_predikat_stays_until_a_penetapan(engine: Engine) -> None:
    decisions, report = _run(engine, _groups())
    assert report.mode == "propose" and report.moved == []
    assert [d.outputs["evaluasi"]["predikat"] for d in decisions] == ["baik"] * 12
    usulan = report.usulan
    assert isinstance(usulan, list) and [u["usulan"] for u in usulan] == ["baik"] * 8 + ["butuh_perbaikan"] * 4
    assert usulan[-1]["why"] == "rank 12 of 12; baik: at most floor(70 % × 12) = 8"
    assert "why" not in usulan[0]


def test_a_leader_departs_for_one_member_with_an_alasan_and_tpp_follows(engine: Engine) -> None:
    kept = "198507122010010009"  # the usulan is butuh perbaikan (rank 10); the leader keeps baik
    predikat = {p["nip"]: "baik" for p in _twelve()[:8]} | {p["nip"]: "butuh_perbaikan" for p in _twelve()[8:]}
    predikat[kept] = "baik"
    decisions, report = _run(engine, _groups(predikat=predikat, alasan={kept: "Tugas tambahan penanganan KLB"}))
    final = {d.population["member"]: d for d in decisions}
    assert final[kept].outputs["evaluasi"]["predikat"] == "baik"
    assert final[kept].outputs["tpp"]["diterima"] == 4_500_000
    lowered = final["198507122010010011"]
    assert lowered.outputs["evaluasi"]["predikat"] == "butuh_perbaikan"
    assert lowered.outputs["evaluasi"]["predikat_awal"] == "baik"
    assert lowered.outputs["tpp"]["komponen_kinerja"] == 2_025_000  # 75 % of 2,700,000
    assert final[kept].population["penetapan"] == {**SIGNED, "tanggal": dt.date(2025, 4, 2),
                                                   "alasan": "Tugas tambahan penanganan KLB"}
    assert report.penetapan["departures"] == [  # type: ignore[index]
        {"member": kept, "usulan": "butuh_perbaikan", "predikat": "baik", "alasan": "Tugas tambahan penanganan KLB"}]
    assert report.counts_after["baik"] == 9 and report.violations == ["baik: at most floor(70 % × 12) = 8, but 9"]
    explained = list(engine.evaluate_population("nasional", _twelve(), _groups(
        predikat=predikat, alasan={kept: "Tugas tambahan penanganan KLB"}), explain=True))
    story = next(d for d in explained if not isinstance(d, GroupReport) and d.population["member"] == kept)
    assert story.trace["population"]["quota"]["penetapan"]["alasan"] == "Tugas tambahan penanganan KLB"
    assert story.trace["population"]["quota"]["penetapan"]["nomor"] == SIGNED["nomor"]


def test_a_departure_without_an_alasan_refuses_the_run_naming_the_member(engine: Engine) -> None:
    predikat = {p["nip"]: "baik" for p in _twelve()}  # four above the usulan, no alasan
    with pytest.raises(PopulationInputError) as caught:
        _run(engine, _groups(predikat=predikat))
    [error] = caught.value.errors
    assert error.path == 'groups["Dinas Kesehatan"].penetapan.alasan'
    assert "198507122010010011 (butuh_perbaikan -> baik)" in error.message and error.message.count("->") == 4


def test_over_http_the_run_is_a_422_before_any_decision_and_a_good_one_replays(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    app = create_app(Engine.from_paths([folder]), policies=[folder], recorder=Recorder(SQLiteStore(tmp_path / "d")))
    with TestClient(app) as client:
        bad = client.post("/v1/policies/nasional/evaluate/population", json={
            "records": _twelve(), "groups": _groups(predikat={p["nip"]: "baik" for p in _twelve()})})
        assert bad.status_code == 422 and bad.json()["type"] == "/problems/invalid-population"
        assert "needs an alasan" in bad.json()["errors"][0]["message"]
        assert client.get("/v1/decisions/", params={"policy": "nasional"}).json()["decisions"] == []
        fixed = {p["nip"]: "baik" for p in _twelve()[:8]} | {p["nip"]: "butuh_perbaikan" for p in _twelve()[8:]}
        good = client.post("/v1/policies/nasional/evaluate/population", json={
            "records": _twelve(), "groups": _groups(predikat=fixed)})
        assert good.status_code == 200, good.text
        results = good.json()["results"]
        assert [r["outputs"]["evaluasi"]["predikat"] for r in results][-4:] == ["butuh_perbaikan"] * 4
        last = results[-1]["decision_id"]
        assert client.post(f"/v1/decisions/{last}/replay").json() == {"decision_id": last, "identical": True}


@pytest.mark.parametrize(("penetapan", "path", "words"), [
    ({"predikat": {"198507122010010000": "bagus"}}, '.predikat["198507122010010000"]', "'bagus' is not a predikat"),
    ({"tanggal": "2025-02-30"}, ".tanggal", "YYYY-MM-DD"),
    ({"nomor": ""}, ".nomor", "1 to 200"),
    ({"ditetapkan_oleh": 7}, ".ditetapkan_oleh", "1 to 200"),
    ({"predikat": []}, ".predikat", "an object"),
    ({"predikat": {"x" * 100: "baik"}}, ".predikat", "longer than 64"),
    ({"alasan": {"198507122010010000": "x" * 2001}}, '.alasan["198507122010010000"]', "1 to 2000"),
    ({"diputus": 1}, ".diputus", "not a field of a penetapan"),
])
def test_a_malformed_penetapan_is_refused_naming_its_field(engine: Engine, penetapan: dict[str, Any], path: str,
                                                           words: str) -> None:
    given = {**SIGNED, "predikat": {p["nip"]: "baik" for p in _twelve()}, **penetapan}
    with pytest.raises(PopulationInputError) as caught:
        engine.evaluate_population("nasional", _twelve(), {UNIT: {"predikat_organisasi": "baik", "penetapan": given}})
    found = [e for e in caught.value.errors if e.path == 'groups["Dinas Kesehatan"].penetapan' + path]
    assert found and words in found[0].message, caught.value.errors


def test_members_missing_or_unknown_and_a_unit_not_in_the_run_are_refused(engine: Engine) -> None:
    predikat = {p["nip"]: "baik" for p in _twelve()[:8]} | {p["nip"]: "butuh_perbaikan" for p in _twelve()[8:11]}
    predikat["199912312020121001"] = "baik"
    groups = {**_groups(predikat=predikat), "Dinas Pendidikan": {
        "predikat_organisasi": "baik", "penetapan": {**SIGNED, "predikat": {"198507122010010000": "baik"}}}}
    with pytest.raises(PopulationInputError) as caught:
        list(engine.evaluate_population("nasional", _twelve(), groups))
    messages = [str(e) for e in caught.value.errors]
    assert any("does not fix the predikat of 198507122010010011" in m for m in messages), messages
    assert any("199912312020121001 is not a member of the unit in this run" in m for m in messages), messages
    assert any("unit 'Dinas Pendidikan' has no member in this run" in m for m in messages), messages


# ---- the calibration workbook ----

def test_the_workbook_round_trip_through_the_cli(tmp_path: Path) -> None:
    records, groups = tmp_path / "pegawai.jsonl", tmp_path / "groups.json"
    records.write_text("".join(json.dumps(p) + "\n" for p in _twelve()))
    groups.write_text(json.dumps(_groups()))
    sheet = tmp_path / "kalibrasi.xlsx"
    made = kinerja("eval", "nasional", "-i", str(records), "--groups", str(groups), "--calibration", str(sheet))
    assert made.returncode == 0, made.stderr
    book = load_workbook(sheet)
    rows = list(book["Kalibrasi"].iter_rows(values_only=True))
    assert rows[0] == ("Unit kerja", "Periode", "Peringkat", "NIP", "Predikat awal", "Usulan", "Alasan usulan",
                       "Predikat ditetapkan", "Alasan")
    assert [r[5] for r in rows[1:]] == ["Baik"] * 8 + ["Butuh Perbaikan"] * 4
    assert rows[12][6] == "Peringkat 12 dari 12; Baik: paling banyak 70 % dari 12 orang (dibulatkan ke bawah: 8 orang)"
    assert book["Kalibrasi"].freeze_panes == "A2" and book["Kalibrasi"].auto_filter.ref == "A1:I13"
    [(curve,)] = [r[3:] for r in book["Kurva"].iter_rows(min_row=2, values_only=True)]
    assert curve == ("Baik: paling banyak 70 % dari 12 orang (dibulatkan ke bawah: 8 orang), tetapi ada 12 orang. "
                     "Butuh Perbaikan atau Kurang: paling sedikit 1 orang, tetapi ada 0 orang.")
    assert book.sheetnames == ["Kalibrasi", "Kurva", "Petunjuk", "_kinerja"]
    assert book["_kinerja"].sheet_state == "hidden"
    signed = ["--groups", str(groups), "--nomor", "800/12/DINKES/2025", "--tanggal", "2025-04-02", "--oleh",
              "197001011995031001"]
    empty = kinerja("penetapan", str(sheet), *signed)
    assert empty.returncode == 1 and "Kalibrasi!H2 (Predikat ditetapkan): empty" in empty.stderr
    page = book["Kalibrasi"]
    for row in range(2, 14):
        page[f"H{row}"] = page[f"F{row}"].value
    page["H11"] = "baik"  # a departure without an alasan (a code reads as its label does)
    page["H12"] = "bagus"
    book.save(sheet)
    wrong = kinerja("penetapan", str(sheet), *signed)
    assert wrong.returncode == 1
    assert ("Kalibrasi!I11 (Alasan): 198507122010010009 departs from the usulan (butuh_perbaikan -> baik)"
            in wrong.stderr)
    assert "Kalibrasi!H12 (Predikat ditetapkan): 'bagus' is not a predikat" in wrong.stderr
    page["I11"] = "Tugas tambahan penanganan KLB"
    page["H12"] = " butuh   PERBAIKAN "  # a label however it is spaced or cased
    book.save(sheet)
    out = tmp_path / "groups-ditetapkan.json"
    done = kinerja("penetapan", str(sheet), *signed, "-o", str(out))
    assert done.returncode == 0, done.stderr
    decided = kinerja("eval", "nasional", "-i", str(records), "--groups", str(out))
    assert decided.returncode == 0, decided.stderr
    predikat = [json.loads(line)["outputs"]["evaluasi"]["predikat"] for line in decided.stdout.splitlines()]
    assert predikat == ["baik"] * 8 + ["butuh_perbaikan", "baik", "butuh_perbaikan", "butuh_perbaikan"]
    data = json.loads(out.read_text())
    del data[UNIT]["penetapan"]["alasan"]["198507122010010009"]
    out.write_text(json.dumps(data))
    refused = kinerja("eval", "nasional", "-i", str(records), "--groups", str(out))
    assert refused.returncode == 1 and refused.stdout == "" and "needs an alasan" in refused.stderr


def test_a_file_that_is_not_a_calibration_workbook_is_refused(tmp_path: Path) -> None:
    groups = ROOT / "examples" / "groups.json"
    for name, content in (("kosong.xlsx", b""), ("teks.xlsx", b"PK\x03\x04 not really"), ("groups.xlsx", None)):
        path = tmp_path / name
        if content is None:
            from openpyxl import Workbook
            Workbook().save(path)
        else:
            path.write_bytes(content)
        result = kinerja("penetapan", str(path), "--groups", str(groups), "--nomor", "1", "--tanggal", "2025-04-02",
                         "--oleh", "197001011995031001")
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert str(path) in result.stderr
    bad_nip = kinerja("penetapan", "x.xlsx", "--groups", str(groups), "--nomor", "1", "--tanggal", "2025-04-02",
                      "--oleh", "12")
    assert bad_nip.returncode == 2 and "is not a NIP" in bad_nip.stderr


def test_the_readable_trace_tells_the_usulan_and_the_penetapan(engine: Engine) -> None:
    from kinerja_rules.evaluation.tracing import explain_text

    kept = "198507122010010009"
    predikat = {p["nip"]: "baik" for p in _twelve()[:8]} | {p["nip"]: "butuh_perbaikan" for p in _twelve()[8:]}
    predikat[kept] = "baik"
    proposed = [d for d in engine.evaluate_population("nasional", _twelve(), _groups(), explain=True)
                if not isinstance(d, GroupReport)]
    assert "usulan butuh_perbaikan: rank 12 of 12; baik: at most floor(70 % × 12) = 8" in explain_text(proposed[-1])
    fixed = [d for d in engine.evaluate_population("nasional", _twelve(), _groups(
        predikat=predikat, alasan={kept: "Tugas tambahan"}), explain=True) if not isinstance(d, GroupReport)]
    assert ("penetapan 800/12/DINKES/2025 of 2025-04-02 by 197001011995031001: baik (Tugas tambahan)"
            in explain_text(fixed[9]))


def _calibration(tmp_path: Path, *extra: str) -> Path:
    records, groups = tmp_path / "pegawai.jsonl", tmp_path / "groups.json"
    records.write_text("".join(json.dumps(p) + "\n" for p in _twelve()))
    groups.write_text(json.dumps(_groups()))
    sheet = tmp_path / "kalibrasi.xlsx"
    made = kinerja("eval", "nasional", "-i", str(records), "--groups", str(groups), "--calibration", str(sheet),
                   *extra)
    assert made.returncode == 0, made.stderr
    return sheet


def _fix(tmp_path: Path, sheet: Path) -> dict[str, Any]:
    out = tmp_path / "ditetapkan.json"
    done = kinerja("penetapan", str(sheet), "--groups", str(tmp_path / "groups.json"), "--nomor", "1",
                   "--tanggal", "2025-04-02", "--oleh", "197001011995031001", "-o", str(out))
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())[UNIT]["penetapan"]  # type: ignore[no-any-return]


def test_the_workbook_in_english_reads_back_its_english_labels_with_columns_moved(tmp_path: Path) -> None:
    sheet = _calibration(tmp_path, "--lang", "en")
    book = load_workbook(sheet)
    assert book.sheetnames == ["Kalibrasi", "Curve", "Instructions", "_kinerja"]
    page = book["Kalibrasi"]
    assert [c.value for c in page[1]][2:] == ["Rank", "NIP", "Initial rating", "Proposal", "Reason for the proposal",
                                              "Rating fixed", "Reason"]
    assert page["F13"].value == "Needs improvement"
    page.move_range("H1:I13", cols=2)  # the leader's columns moved to the right: found by their headers
    for row in range(2, 14):
        page[f"J{row}"] = page[f"F{row}"].value
    page["J13"] = "Good"
    page["K13"] = "Ditugaskan penanganan KLB"
    book.save(sheet)
    fixed = _fix(tmp_path, sheet)
    assert fixed["predikat"] == {p["nip"]: "baik" for p in _twelve()[:8]} | {
        p["nip"]: "butuh_perbaikan" for p in _twelve()[8:11]} | {_twelve()[11]["nip"]: "baik"}
    assert fixed["alasan"] == {_twelve()[11]["nip"]: "Ditugaskan penanganan KLB"}


def test_a_workbook_written_before_labels_still_reads(tmp_path: Path) -> None:
    """Headers that are the column names and predikat as codes (an older workbook) read as before."""
    from openpyxl import Workbook

    book = Workbook()
    page = book.active
    page.title = "Kalibrasi"
    page.append(["unit_kerja", "periode", "peringkat", "nip", "predikat_awal", "usulan", "alasan_usulan",
                 "predikat_ditetapkan", "alasan"])
    for i, person in enumerate(_twelve(), start=1):
        usulan = "baik" if i <= 8 else "butuh_perbaikan"
        page.append([UNIT, "2025-03", i, person["nip"], "baik", usulan, None, usulan, None])
    about = book.create_sheet("_kinerja")
    for row in (["policy", "nasional"], ["predikat", *PREDIKAT], ["groups", "unit_kerja", "periode"],
                ["data_key", "unit_kerja"]):
        about.append(row)
    sheet = tmp_path / "lama.xlsx"
    book.save(sheet)
    (tmp_path / "groups.json").write_text(json.dumps(_groups()))
    assert list(_fix(tmp_path, sheet)["predikat"].values()) == ["baik"] * 8 + ["butuh_perbaikan"] * 4


def test_a_hostile_hidden_sheet_is_refused_by_cell_not_crashed_on(tmp_path: Path) -> None:
    sheet = _calibration(tmp_path)
    book = load_workbook(sheet)
    about = book["_kinerja"]
    about.append(["label", "baik", "x" * 100_000])  # a label longer than any: cut, never matched whole
    about.append(["label", "tidak_ada", "Bagus"])  # a label for a predikat the policy lacks: ignored
    for row in range(2, 14):
        book["Kalibrasi"][f"H{row}"] = "Bagus"
    book.save(sheet)
    refused = kinerja("penetapan", str(sheet), "--groups", str(tmp_path / "groups.json"), "--nomor", "1",
                      "--tanggal", "2025-04-02", "--oleh", "197001011995031001")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "Kalibrasi!H2 (Predikat ditetapkan): 'Bagus' is not a predikat" in refused.stderr
    book = load_workbook(sheet)
    book["Kalibrasi"]["A1"] = "Unit"  # a header renamed: the column it named is lacking, by its header
    book.save(sheet)
    lacking = kinerja("penetapan", str(sheet), "--groups", str(tmp_path / "groups.json"), "--nomor", "1",
                      "--tanggal", "2025-04-02", "--oleh", "197001011995031001")
    assert lacking.returncode == 1 and "the header lacks Unit kerja" in lacking.stderr, lacking.stderr


# ---- the group report as a workbook ----

def test_the_group_report_workbook_says_each_violation_and_move_as_a_sentence(tmp_path: Path) -> None:
    records, groups = tmp_path / "pegawai.jsonl", tmp_path / "groups.json"
    records.write_text("".join(json.dumps(p) + "\n" for p in _twelve()))
    groups.write_text(json.dumps(_groups()))
    proposed = kinerja("eval", "nasional", "-i", str(records), "--groups", str(groups), "--report",
                       str(tmp_path / "usulan.xlsx"))
    assert proposed.returncode == 0, proposed.stderr
    book = load_workbook(tmp_path / "usulan.xlsx")
    assert book.sheetnames == ["Ringkasan", "Pelanggaran kurva", "Usulan", "Tentang"]
    [summary] = list(book["Ringkasan"].iter_rows(min_row=2, values_only=True))
    head = [c.value for c in book["Ringkasan"][1]]
    row = dict(zip(head, summary, strict=True))
    assert row["Unit kerja"] == UNIT and row["Jumlah pegawai"] == 12 and row["Sebelum: Baik"] == 12
    assert row["Jumlah pelanggaran"] == 2 and row["Cara"].startswith("usulkan")
    assert [r[2] for r in book["Pelanggaran kurva"].iter_rows(min_row=2, values_only=True)] == [
        "Baik: paling banyak 70 % dari 12 orang (dibulatkan ke bawah: 8 orang), tetapi ada 12 orang.",
        "Butuh Perbaikan atau Kurang: paling sedikit 1 orang, tetapi ada 0 orang."]
    usulan = list(book["Usulan"].iter_rows(min_row=2, values_only=True))
    assert [u[5] for u in usulan] == ["Baik"] * 8 + ["Butuh Perbaikan"] * 4 and usulan[0][6] is None
    assert book["Ringkasan"].freeze_panes == "A2" and book["Usulan"].auto_filter.ref == "A1:G13"

    shutil.copytree(POLICIES, tmp_path / "policies")
    (tmp_path / "policies" / "daerah.yaml").write_text(
        "policy: daerah\nextends: nasional\nparameters:\n  mode_kurva_distribusi: {override: true, type: mode_kuota, "
        "values: {2024-01-01: enforce}}\n")
    enforced = kinerja("eval", "daerah", "--policies", str(tmp_path / "policies"), "-i", str(records), "--groups",
                       str(groups), "--report", str(tmp_path / "laporan.xlsx"), "--lang", "en")
    assert enforced.returncode == 0, enforced.stderr
    book = load_workbook(tmp_path / "laporan.xlsx")
    assert book.sheetnames == ["Summary", "Curve violations", "Moves", "About"]
    assert [r[2] for r in book["Curve violations"].iter_rows(min_row=2, values_only=True)] == [
        "Every group meets the distribution curve."]
    moves = list(book["Moves"].iter_rows(min_row=2, values_only=True))
    assert [(m[3], m[4], m[5]) for m in moves] == [(rank, "Good", "Needs improvement") for rank in (12, 11, 10, 9)]
    assert moves[0][6] == "Rank 12 of 12; Good: at most 70 % of 12 people (rounded down: 8)"
    refused = kinerja("eval", "nasional", "-i", str(records), "--groups", str(groups), "--report",
                      str(tmp_path / "laporan.txt"))
    assert refused.returncode == 2 and "written as JSON Lines (.jsonl) or as a workbook (.xlsx)" in refused.stderr


@pytest.mark.parametrize("written, passes", [
    ('reason: "rank 4 of 4; baik: at most floor(70 % × 4) = 2"}', True),  # the limit left out: not compared
    ('reason: "rank 4 of 4; baik: at most floor(70 % × 4) = 2", limit: {bound: max, needed: 2}}', True),
    ('reason: "rank 4 of 4; baik: at most floor(70 % × 4) = 2", limit: {bound: max, needed: 3}}', False),
    ('reason: "rank 4 of 4", limit: {bound: max, needed: 2}}', False),
    ('reason: "rank 4 of 4; baik: at most floor(70 % × 4) = 2", ditambah: 1}', False),  # a key the report lacks
])
def test_a_case_compares_a_report_on_what_it_writes(tmp_path: Path, written: str, passes: bool) -> None:
    shutil.copytree(POLICIES, tmp_path / "policies")
    cases = tmp_path / "policies" / "plaju" / "tests.yaml"
    text = cases.read_text()
    old = 'reason: "rank 4 of 4; baik: at most floor(70 % × 4) = 2"}'
    assert text.count(old) == 1
    cases.write_text(text.replace(old, written))
    result = kinerja("test", "--policies", str(tmp_path / "policies"), str(tmp_path / "policies" / "plaju"))
    assert (result.returncode == 0) is passes, result.stdout
    assert passes or "FAIL plaju::kurva_diterapkan_2025" in result.stdout and "report 1 moved" in result.stdout
