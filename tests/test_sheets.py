"""Tables people make, read as records: a workbook, a CSV as Excel writes it with Indonesian
settings, columns named by the policy's labels, and the SKP indicators from a sheet of their own."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from kinerja_rules.decision import ENCODER
from kinerja_rules.sheets import id_number
from tests.conftest import BASE_RECORD, POLICIES, ROOT


def _kinerja(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kinerja_rules.cli", *args, "--policies", str(POLICIES)], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def _people() -> list[dict[str, Any]]:
    people = []
    given = [(Decimal("85.5"), Decimal("987.5")), (70, 1000), (Decimal("92.25"), 1100)]
    for i, (atasan, realisasi) in enumerate(given):
        record = copy.deepcopy(BASE_RECORD)
        record["nip"] = f"19850712201001{i:04d}"
        record["perilaku"] = {"atasan": atasan}
        record["skp"] = {"indikator": [{"nama": "Laporan", "target": 1000, "realisasi": realisasi},
                                       {"nama": "Layanan", "target": 4500000, "realisasi": 4500000}]}
        people.append(record)
    return people


def _as_json(tmp_path: Path) -> list[Any]:
    (tmp_path / "orang.jsonl").write_bytes(b"\n".join(ENCODER.encode(p) for p in _people()) + b"\n")
    done = _kinerja("eval", "nasional", "-i", "orang.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


COLUMNS = ["NIP", "Periode", "status", "unit_kerja", "jabatan.jenis", "jabatan.kelas", "perilaku.atasan",
           "presensi.hari_kerja", "riwayat_predikat", "tahun_dalam_pangkat"]


def _row(record: dict[str, Any], number: Any) -> list[Any]:
    return [record["nip"], record["periode"], record["status"], record["unit_kerja"], record["jabatan"]["jenis"],
            record["jabatan"]["kelas"], number(record["perilaku"]["atasan"]), record["presensi"]["hari_kerja"],
            json.dumps(record["riwayat_predikat"]), record["tahun_dalam_pangkat"]]


def _id(value: Any) -> str:
    """A number as Excel writes it with Indonesian settings."""
    whole, _, part = f"{value}".partition(".")
    grouped = f"{int(whole):,}".replace(",", ".")
    return grouped + ("," + part if part else "")


def test_a_semicolon_csv_with_decimal_commas_and_an_indicator_file_decide_as_json(tmp_path: Path) -> None:
    people = _people()
    lines = [";".join(COLUMNS)] + [";".join(str(c) for c in _row(p, _id)) for p in people]
    (tmp_path / "orang.csv").write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    items = ["nip;periode;nama;target;realisasi"] + [
        f"{p['nip']};{p['periode']};{k['nama']};{_id(k['target'])};{_id(k['realisasi'])}"
        for p in people for k in p["skp"]["indikator"]]
    (tmp_path / "indikator.csv").write_text("\n".join(items) + "\n")
    done = _kinerja("eval", "nasional", "-i", "orang.csv", "--input-list", "skp.indikator=indikator.csv",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == _as_json(tmp_path)


def test_a_workbook_with_labelled_columns_and_an_indicator_sheet_decides_as_json(tmp_path: Path) -> None:
    people = _people()
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Pegawai"
    sheet.append(COLUMNS)
    for p in people:
        sheet.append(_row(p, float))  # a spreadsheet's numbers are binary floats
    items = book.create_sheet("Indikator")
    items.append(["NIP", "Periode", "nama", "target", "realisasi"])
    for p in people:
        for k in p["skp"]["indikator"]:
            items.append([p["nip"], p["periode"], k["nama"], float(k["target"]), float(k["realisasi"])])
    book.save(tmp_path / "orang.xlsx")
    done = _kinerja("eval", "nasional", "-i", "orang.xlsx", "--input-list", "skp.indikator=orang.xlsx#Indikator",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == _as_json(tmp_path)
    named = _kinerja("eval", "nasional", "-i", "orang.xlsx", "--sheet", "Indikator", cwd=tmp_path)
    assert named.returncode == 1 and "is required" in named.stdout  # that sheet is read: its rows are no records
    missing = _kinerja("eval", "nasional", "-i", "orang.xlsx", "--sheet", "Tidak ada", cwd=tmp_path)
    assert missing.returncode == 2 and "has no sheet 'Tidak ada'; it has Pegawai, Indikator" in missing.stderr


def test_a_nip_excel_took_for_a_number_is_its_records_error(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["nip", "periode"])
    book.active.append([198507122010011003, "2025-03"])
    book.save(tmp_path / "nip.xlsx")
    done = _kinerja("eval", "nasional", "-i", "nip.xlsx", cwd=tmp_path)
    error = json.loads(done.stdout)["error"]
    assert done.returncode == 1 and error["fields"][0]["path"] == "nip"
    assert "write it as text (Excel keeps only 15 digits" in error["fields"][0]["message"]


@pytest.mark.parametrize("text, number", [
    ("85,5", Decimal("85.5")), ("4.500.000", 4500000), ("1.000,5", Decimal("1000.5")), ("-12", -12), ("1.5", None),
    ("1.000,5.2", None), ("1.00", None), ("4500.000", None), ("", None), ("1e5", None)])
def test_an_indonesian_number_is_read_only_as_written_so(text: str, number: Any) -> None:
    assert id_number(text) == number


def test_a_cell_that_is_no_indonesian_number_is_its_records_error_naming_the_cell(tmp_path: Path) -> None:
    person = _people()[0]
    lines = [";".join(COLUMNS), ";".join(str(c) for c in _row(person, lambda _: "1.000,5.2"))]
    (tmp_path / "orang.csv").write_text("\n".join(lines) + "\n")
    done = _kinerja("eval", "nasional", "-i", "orang.csv", cwd=tmp_path)
    result = json.loads(done.stdout)
    assert done.returncode == 1 and result["subject"] == {"nip": person["nip"], "periode": person["periode"]}
    assert result["error"]["fields"] == [{"path": "perilaku.atasan", "message": "'1.000,5.2' is not a number as "
                                          "Excel writes one with Indonesian settings (85,5 or 4.500.000)"}]
    wrong = _kinerja("eval", "nasional", "-i", "orang.csv", "--csv-dialect", "excel", cwd=tmp_path)
    assert wrong.returncode == 2 and "the header line is split by ';'" in wrong.stderr


def test_the_form_filled_in_decides_as_the_same_records_sent_as_json(tmp_path: Path) -> None:
    made = _kinerja("template", "nasional", "--output", "formulir.xlsx", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    book = openpyxl.load_workbook(tmp_path / "formulir.xlsx")
    assert book.sheetnames[0] == "Pegawai" and "skp.indikator" in book.sheetnames and "Petunjuk" in book.sheetnames
    records = book["Pegawai"]
    header = [c.value for c in records[1]]
    assert header[:2] == ["NIP", "Periode"]
    drop_downs = {str(v.sqref): v for v in records.data_validations.dataValidation}
    status = drop_downs[f"{openpyxl.utils.get_column_letter(header.index('status') + 1)}2:"
                        f"{openpyxl.utils.get_column_letter(header.index('status') + 1)}5000"]
    assert status.type == "list" and status.formula1.startswith("'_daftar'!")
    people = _people()
    people[1]["penilaian"] = {"rating_hasil_kerja": "sesuai_ekspektasi", "rating_perilaku": "di_atas_ekspektasi"}
    labels = {"sesuai_ekspektasi": "Sesuai ekspektasi", "di_atas_ekspektasi": "Di atas ekspektasi"}
    for person in people:  # as an officer fills it: labels from the drop-downs, numbers as numbers
        cells = {"NIP": person["nip"], "Periode": person["periode"], "status": person["status"],
                 "unit_kerja": person["unit_kerja"], "jabatan.jenis": person["jabatan"]["jenis"],
                 "jabatan.kelas": person["jabatan"]["kelas"], "Nilai perilaku dari atasan":
                 float(person["perilaku"]["atasan"]), "presensi.hari_kerja": person["presensi"]["hari_kerja"],
                 "riwayat_predikat": "; ".join(["Baik"] * len(person["riwayat_predikat"])),
                 "tahun_dalam_pangkat": person["tahun_dalam_pangkat"]}
        if "penilaian" in person:
            cells["penilaian.rating_hasil_kerja"] = labels[person["penilaian"]["rating_hasil_kerja"]]
            cells["penilaian.rating_perilaku"] = labels[person["penilaian"]["rating_perilaku"]]
        records.append([cells.get(h) for h in header])
        for item in person["skp"]["indikator"]:
            book["skp.indikator"].append([person["nip"], person["periode"], item["nama"], float(item["target"]),
                                          float(item["realisasi"])])
    book.save(tmp_path / "terisi.xlsx")
    (tmp_path / "orang.jsonl").write_bytes(b"\n".join(ENCODER.encode(p) for p in people) + b"\n")
    expected = _kinerja("eval", "nasional", "-i", "orang.jsonl", cwd=tmp_path)
    filled = _kinerja("eval", "nasional", "-i", "terisi.xlsx", cwd=tmp_path)
    assert filled.returncode == expected.returncode == 0, filled.stdout[:500] + filled.stderr
    assert [json.loads(line) for line in filled.stdout.splitlines()] == \
        [json.loads(line) for line in expected.stdout.splitlines()]
    english = _kinerja("template", "nasional", "--output", "form.xlsx", "--lang", "en", cwd=tmp_path)
    assert english.returncode == 0 and openpyxl.load_workbook(tmp_path / "form.xlsx").sheetnames[0] == "Employees"
    refused = _kinerja("template", "nasional", "--output", "formulir.csv", cwd=tmp_path)
    assert refused.returncode == 2 and "a form is a workbook" in refused.stderr
