"""Records and decisions as tables: CSV, Parquet and XLSX, by the file's extension, one rule both ways."""

from __future__ import annotations

import copy
import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kinerja_rules import formats
from tests.conftest import BASE_RECORD, ROOT, bundled
from tests.test_bulk import kinerja

_JSON = msgspec.json.Decoder(float_hook=Decimal)
_NUMBERS = msgspec.json.Encoder(decimal_format="number")


def _people(count: int) -> list[dict[str, Any]]:
    people = []
    for i in range(count):
        record = copy.deepcopy(BASE_RECORD)
        record["nip"] = f"00850712201001{i:04d}"  # leading zeros: a NIP is text, never a number
        record["perilaku"]["atasan"] = Decimal(60 + i % 40) + Decimal("0.25")
        record["skp"]["indikator"] = [{"nama": "Laporan, \"bulanan\"", "target": 1000, "realisasi": 700 + i % 400},
                                      {"nama": "Rapat", "target": 12, "realisasi": i % 13}]
        if i % 3:
            record["jabatan"]["kelas"] = 5 + i % 8
        people.append(record)
    return people


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(_NUMBERS.encode(r) + b"\n" for r in records)


def _write_csv(path: Path, records: list[dict[str, Any]]) -> None:
    rows = [formats.flatten(r) for r in records]
    names = sorted({name for row in rows for name in row})
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows([formats.csv_cell(row.get(n)) for n in names] for row in rows)


def _write_parquet(path: Path, records: list[dict[str, Any]]) -> None:
    rows = [formats.flatten(r) for r in records]
    names = sorted({name for row in rows for name in row})
    pq.write_table(pa.Table.from_pylist([{n: row.get(n) for n in names} for row in rows]), path)


def test_records_from_csv_and_parquet_are_decided_as_from_json_lines(tmp_path: Path) -> None:
    records = _people(600)
    (tmp_path / "r.jsonl").write_bytes(_jsonl(records))
    _write_csv(tmp_path / "r.csv", records)
    _write_parquet(tmp_path / "r.parquet", records)
    expected = kinerja("eval", "nasional", "-i", str(tmp_path / "r.jsonl"))
    assert expected.returncode == 0, expected.stderr
    for name in ("r.csv", "r.parquet"):
        for jobs in ("1", "2"):
            got = kinerja("eval", "nasional", "-i", str(tmp_path / name), "--jobs", jobs)
            assert got.returncode == 0, got.stderr
            assert got.stdout == expected.stdout, name


def test_a_parquet_float_is_read_as_the_decimal_it_shows(tmp_path: Path) -> None:
    record = formats.flatten(_people(1)[0])
    record["perilaku.atasan"] = 87.1  # a binary float, as a spreadsheet tool would write it
    record["skp.indikator"] = [{"nama": "Laporan", "target": 1000.0, "realisasi": 871.3}]
    pq.write_table(pa.Table.from_pylist([record]), tmp_path / "f.parquet")
    (item,) = formats.parquet_items(str(tmp_path / "f.parquet"))
    assert item[1]["perilaku"]["atasan"] == Decimal("87.1")
    assert item[1]["skp"]["indikator"][0]["realisasi"] == Decimal("871.3")


def _decisions(tmp_path: Path, suffix: str, *flags: str) -> tuple[list[dict[str, Any]], Path]:
    given = _people(300)
    given[7] = {**given[7], "status": "bukan_status"}  # an error row among the decisions
    (tmp_path / "r.jsonl").write_bytes(_jsonl(given))
    lines = kinerja("eval", "plaju", "-i", str(tmp_path / "r.jsonl"), *flags)
    out = tmp_path / f"out{suffix}"
    written = kinerja("eval", "plaju", "-i", str(tmp_path / "r.jsonl"), "-o", str(out), "--jobs", "2", *flags)
    assert written.returncode == lines.returncode == 1 and written.stdout == b"", written.stderr
    return [_JSON.decode(line) for line in lines.stdout.splitlines()], out


def _columns() -> list[str]:
    return formats.columns(bundled().policy("plaju"), False)


def test_decisions_written_as_a_json_array_are_the_json_lines(tmp_path: Path) -> None:
    decisions, out = _decisions(tmp_path, ".json")
    assert _JSON.decode(out.read_bytes()) == decisions
    assert out.read_bytes().startswith(b"[\n{") and out.read_bytes().endswith(b"}\n]\n")


def test_decisions_written_as_csv_read_back_cell_by_cell(tmp_path: Path) -> None:
    decisions, out = _decisions(tmp_path, ".csv")
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == _columns() and len(rows) == 301
    for decision, row in zip(decisions, rows[1:], strict=True):
        flat = formats.flatten(decision)
        assert row == [formats.csv_cell(flat.get(c)) for c in rows[0]]
    assert rows[1][rows[0].index("outputs.tpp.diterima")] == str(decisions[0]["outputs"]["tpp"]["diterima"])
    assert rows[8][rows[0].index("error.line")] == "8" and rows[8][rows[0].index("outputs.tpp.diterima")] == ""
    assert json.loads(rows[1][rows[0].index("outputs.tindak_lanjut.pembinaan")]) == \
        decisions[0]["outputs"]["tindak_lanjut"]["pembinaan"]  # a list: one cell of JSON text


def test_decisions_written_as_parquet_read_back_with_their_types(tmp_path: Path) -> None:
    decisions, out = _decisions(tmp_path, ".parquet")
    table = pq.read_table(out)
    assert table.column_names == _columns() and table.num_rows == 300
    assert table.schema.field("outputs.tpp.diterima").type == pa.int64()
    assert table.schema.field("outputs.tindak_lanjut.pembinaan").type == pa.list_(pa.string())
    for decision, row in zip(decisions, table.to_pylist(), strict=True):
        flat = formats.flatten(decision)
        for column, value in row.items():
            if column in ("warnings", "population", "trace"):
                value = None if value is None else _JSON.decode(value)
            assert value == flat.get(column), column  # decimals equal as numbers: 80.00 == 80.0000000000


def _sheets(out: Path) -> dict[str, list[list[Any]]]:
    book = openpyxl.load_workbook(out)
    return {sheet.title: [[c.value for c in row] for row in sheet.iter_rows()] for sheet in book.worksheets}


def test_decisions_written_as_xlsx_are_a_workbook_people_read(tmp_path: Path) -> None:
    decisions, out = _decisions(tmp_path, ".xlsx")
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Keputusan", "Tidak diputuskan", "Tentang"]
    sheet = book["Keputusan"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:")
    rows = [[c for c in row] for row in sheet.iter_rows()]
    header = [c.value for c in rows[0]]
    assert header[:2] == ["NIP", "Periode"] and "Predikat kinerja" in header
    assert "TPP yang menjadi hak bulan ini" in header
    assert not any("." in h for h in header)  # labels, never dotted names
    decided = [d for d in decisions if "error" not in d]
    assert len(rows) == 1 + len(decided)
    paid, rating = header.index("TPP yang menjadi hak bulan ini"), header.index("Predikat kinerja")
    labels = {"sangat_baik": "Sangat Baik", "baik": "Baik", "butuh_perbaikan": "Butuh Perbaikan", "kurang": "Kurang",
              "sangat_kurang": "Sangat Kurang"}
    for decision, row in zip(decided, rows[1:], strict=True):
        assert [row[0].value, row[1].value] == [decision["subject"]["nip"], decision["subject"]["periode"]]
        assert row[paid].value == decision["outputs"]["tpp"]["diterima"] and row[paid].number_format == "#,##0"
        assert row[rating].value == labels[decision["outputs"]["evaluasi"]["predikat"]]
    failed = [d for d in decisions if "error" in d]
    errors = _sheets(out)["Tidak diputuskan"]
    assert errors[0][:2] == ["NIP", "Periode"] and len(errors) == 1 + len(failed)
    assert errors[1][0] == failed[0]["subject"]["nip"] and errors[1][2] == 8 and "status" in errors[1][4]
    english = tmp_path / "en.xlsx"
    assert kinerja("eval", "plaju", "-i", str(tmp_path / "r.jsonl"), "-o", str(english), "--lang", "en").returncode == 1
    assert "Performance rating" in _sheets(english)["Decisions"][0]


def test_a_text_that_looks_like_a_formula_stays_text(tmp_path: Path) -> None:
    from kinerja_rules.workbook import PeopleXlsx

    assert formats.csv_cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")" and formats.csv_cell(-5) == "-5"
    sink = PeopleXlsx(str(tmp_path / "f.xlsx"), bundled().policy("nasional"))
    sink.write(b'{"subject":{"nip":"=1+1","periode":"ok\\u0007"},"error":{"kind":"record","message":"x"}}\n')
    sink.close()
    cells = list(openpyxl.load_workbook(tmp_path / "f.xlsx")["Tidak diputuskan"].iter_rows(min_row=2))[0]
    assert (cells[0].value, cells[0].data_type, cells[1].value) == ("=1+1", "s", "ok")


def test_a_labelled_csv_for_people_and_an_extension_refused(tmp_path: Path) -> None:
    _decisions(tmp_path, ".csv")
    out = tmp_path / "orang.csv"
    assert kinerja("eval", "plaju", "-i", str(tmp_path / "r.jsonl"), "-o", str(out), "--labels").returncode == 1
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["NIP", "Periode"] and "Predikat kinerja" in rows[0]
    assert rows[1][rows[0].index("Predikat kinerja")] in ("Sangat Baik", "Baik", "Butuh Perbaikan", "Kurang",
                                                           "Sangat Kurang")
    refused = kinerja("eval", "plaju", "-i", str(tmp_path / "r.jsonl"), "--labels")
    assert refused.returncode == 2 and b"--labels writes a CSV for people" in refused.stderr


@pytest.mark.parametrize(("text", "said"), [
    (b"nip,nip\n1,2\n", "a column named twice"),
    (b"nip,\n1,2\n", "a column without a name"),
    (b",".join(b"c%d" % i for i in range(10_001)) + b"\n", "more than 10000 columns"),
])
def test_a_csv_header_that_cannot_be_read_is_the_error(tmp_path: Path, text: bytes, said: str) -> None:
    (tmp_path / "bad.csv").write_bytes(text)
    result = kinerja("eval", "nasional", "-i", str(tmp_path / "bad.csv"))
    assert result.returncode == 1 and said in json.loads(result.stdout)["error"]["message"]


def test_bad_csv_rows_are_their_own_errors_and_the_rest_decided(tmp_path: Path) -> None:
    good = formats.flatten(_people(1)[0])
    names = sorted(good)
    cells = [formats.csv_cell(good[n]) for n in names]
    body = io.StringIO()
    writer = csv.writer(body)
    writer.writerows([names, cells, ["1", "2"], cells])  # the second row has too few cells
    (tmp_path / "rows.csv").write_text(body.getvalue() + '"never closed\n', encoding="utf-8")
    result = kinerja("eval", "nasional", "-i", str(tmp_path / "rows.csv"))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1 and len(lines) == 4
    assert "outputs" in lines[0] and "outputs" in lines[2]
    assert lines[1]["error"]["line"] == 3 and "2 cells, the header names" in lines[1]["error"]["message"]
    assert lines[3]["error"]["kind"] == "input" and lines[3]["error"]["line"] == 5
    clash = io.StringIO()
    csv.writer(clash).writerows([[*names, "jabatan"], [*cells, "x"]])  # jabatan, and jabatan.kelas inside it
    (tmp_path / "clash.csv").write_text(clash.getvalue(), encoding="utf-8")
    said = json.loads(kinerja("eval", "nasional", "-i", str(tmp_path / "clash.csv")).stdout)["error"]
    assert said["line"] == 2 and "column 'jabatan'" in said["message"]


def test_a_huge_csv_cell_stops_the_file_with_an_error(tmp_path: Path) -> None:
    (tmp_path / "huge.csv").write_bytes(b"nip\n" + b"1" * (formats.MAX_CELL_CHARS + 10) + b"\n")
    result = kinerja("eval", "nasional", "-i", str(tmp_path / "huge.csv"))
    assert result.returncode == 1 and "field larger than field limit" in json.loads(result.stdout)["error"]["message"]


def test_files_of_the_wrong_kind_are_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "not.parquet").write_bytes(b"PAR1 not really")
    bad = kinerja("eval", "nasional", "-i", str(tmp_path / "not.parquet"))
    assert bad.returncode == 2 and b"cannot read" in bad.stderr and b"as Parquet" in bad.stderr
    odd = kinerja("eval", "nasional", "-o", str(tmp_path / "out.txt"), stdin=json.dumps(BASE_RECORD).encode())
    assert odd.returncode == 2 and b"one of .jsonl, .json, .csv, .parquet, .xlsx" in odd.stderr
    text = kinerja("eval", "nasional", "--explain-text", "-o", str(tmp_path / "o.csv"), stdin=b"{}")
    assert text.returncode == 2 and b"--explain-text" in text.stderr
    nowhere = kinerja("eval", "nasional", "-o", str(tmp_path / "no" / "such" / "o.csv"), stdin=b"{}")
    assert nowhere.returncode == 2 and b"cannot write" in nowhere.stderr


def test_a_population_run_reads_and_writes_tables_too(tmp_path: Path) -> None:
    records = [json.loads(line) for line in (ROOT / "examples" / "batch.jsonl").read_text().splitlines()]
    _write_csv(tmp_path / "batch.csv", records)
    groups = str(ROOT / "examples" / "groups.json")
    expected = kinerja("eval", "nasional", "-i", str(ROOT / "examples" / "batch.jsonl"), "--groups", groups)
    got = kinerja("eval", "nasional", "-i", str(tmp_path / "batch.csv"), "--groups", groups, "--jobs", "2",
                  "-o", str(tmp_path / "decided.json"))
    assert expected.returncode == got.returncode == 0, got.stderr
    decided = _JSON.decode((tmp_path / "decided.json").read_bytes())
    assert decided == [_JSON.decode(line) for line in expected.stdout.splitlines()]
    assert all(d["population"]["group"] for d in decided)  # decided within their groups


def _row_by_row(path: Path) -> list[Any]:
    """What a Parquet file's rows read as one row at a time (each value made exact, then nested)."""
    return [formats.unflatten({name: formats._exact(value) for name, value in row.items()})
            for row in pq.ParquetFile(path).read().to_pylist()]


def test_a_parquet_file_read_column_by_column_gives_the_records_row_by_row_would(tmp_path: Path) -> None:
    import datetime as dt

    point = pa.struct([("on", pa.date32()), ("score", pa.float64()), ("n", pa.int64())])
    plain = pa.struct([("name", pa.string()), ("n", pa.int32())])
    columns = {
        "nip": pa.array([f"19850712{i:010d}" if i % 4 else None for i in range(10)]),
        "jabatan.kelas": pa.array([i if i % 3 else None for i in range(10)], pa.int16()),
        "jabatan.jenis": pa.array(["pelaksana", "fungsional"] * 5).dictionary_encode(),
        "perilaku.atasan": pa.array([80.1 + i if i != 5 else None for i in range(10)]),
        "perilaku.rekan_kerja": pa.array([[87.5, 90.25]] * 9 + [None], pa.list_(pa.float64())),
        "presensi.terlambat_menit": pa.array([[i, 2 * i] for i in range(10)], pa.list_(pa.int64())),
        "skp.indikator": pa.array([[{"on": dt.date(2025, 1, i + 1), "score": 0.1 * i, "n": i}] for i in range(10)],
                                  pa.list_(point)),
        "skp.ringkas": pa.array([{"name": "a", "n": i} for i in range(10)], plain),
        "skp.nilai": pa.array([Decimal(f"{i}.50") for i in range(10)], pa.decimal128(10, 2)),
        "x.y.z": pa.array([dt.datetime(2025, 3, 1, 8, i) for i in range(10)], pa.timestamp("s")),
        "x.tanggal": pa.array([dt.date(2025, 2, i + 1) for i in range(10)], pa.date32()),
        "x.riwayat": pa.array([[{"on": dt.date(2024, 12, i + 1)}] for i in range(10)],
                              pa.list_(pa.struct([("on", pa.date32())]))),
        "aktif": pa.array([bool(i % 2) for i in range(10)]),
        "berkas": pa.array([b"\x00\x01"] * 10),
        "kosong": pa.nulls(10),
    }
    path = tmp_path / "many.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=4)
    expected = _row_by_row(path)
    assert [item[1] for item in formats.parquet_items(str(path), batch_rows=3)] == expected
    assert expected[5]["perilaku"] == {"rekan_kerja": [Decimal("87.5"), Decimal("90.25")]}
    assert expected[1]["skp"]["indikator"][0] == {"on": "2025-01-02", "score": Decimal("0.1"), "n": 1}
    assert "nip" not in expected[0] and expected[2]["x"]["y"]["z"] == "2025-03-01T08:02:00"
    assert expected[2]["x"]["tanggal"] == "2025-02-03" and expected[2]["x"]["riwayat"] == [{"on": "2024-12-03"}]
    one_group = [item for item in formats.parquet_items(str(path), row_group=1, first=5)]
    assert [line for line, _, _ in one_group] == [5, 6, 7, 8] and [r for _, r, _ in one_group] == expected[4:8]


def test_parquet_columns_that_clash_are_judged_row_by_row(tmp_path: Path) -> None:
    clash = pa.table({"jabatan": pa.array(["x", None, "y"]), "jabatan.kelas": pa.array([5, 6, None]),
                      "nip": pa.array(["1", "2", "3"])})
    pq.write_table(clash, tmp_path / "clash.parquet")
    read = [record for _, record, _ in formats.parquet_items(str(tmp_path / "clash.parquet"))]
    assert isinstance(read[0], formats.ErrorInfo) and read[0].line == 1
    assert "invalid row 1: column 'jabatan.kelas' is inside 'jabatan'" in read[0].message
    assert read[1:] == [{"jabatan": {"kelas": 6}, "nip": "2"}, {"jabatan": "y", "nip": "3"}] == _row_by_row(
        tmp_path / "clash.parquet")[1:]
    twice = pa.Table.from_arrays([pa.array(["1", "3"]), pa.array(["2", None])], names=["nip", "nip"])
    pq.write_table(twice, tmp_path / "twice.parquet")
    assert [r for _, r, _ in formats.parquet_items(str(tmp_path / "twice.parquet"))] == \
        _row_by_row(tmp_path / "twice.parquet")


def test_a_tables_cells_are_what_flatten_makes_of_each_decision(tmp_path: Path) -> None:
    records = _people(40)
    records[3] = {**records[3], "status": "bukan_status"}  # an error
    records[4] = {**records[4], "xyzzy_lain": "x"}  # an unknown field: a warning
    (tmp_path / "r.jsonl").write_bytes(_jsonl(records))
    decisions = []
    for flags in ((), ("--explain",), ("--groups", str(ROOT / "examples" / "groups.json"))):
        run = kinerja("eval", "nasional", "-i", str(tmp_path / "r.jsonl"), "--unknown-fields", "warn", *flags)
        decisions += [_JSON.decode(line) for line in run.stdout.splitlines()]
    assert any("trace" in d for d in decisions) and any(d.get("population") for d in decisions)
    assert any(d.get("warnings") for d in decisions) and any("error" in d for d in decisions)
    policy = bundled().policy("nasional")
    for columns in (formats.columns(policy, True), ["line", *formats.columns(policy, False)]):
        cells = formats.cells_of(columns)
        for decision in decisions:
            flat = formats.flatten(decision)
            assert cells(decision) == [flat.get(c) for c in columns]
    odd = {"a": {"b": 1}, "c": [1], "warnings": {"x": 1}, "trace": {"k": {"j": 2}}, "d": {"e": {"f": 3}}, "g": None}
    columns = ["a", "a.b", "c", "c.x", "warnings", "warnings.x", "trace", "trace.k", "d.e", "d.e.f", "g", "g.h",
               "missing.x", "line"]
    flat = formats.flatten(odd)
    assert formats.cells_of(columns)(odd) == [flat.get(c) for c in columns]
    with pytest.raises(ValueError, match="named twice"):
        formats.cells_of(["a", "a"])


def test_hostile_parquet_column_names_are_read_in_bounded_work(tmp_path: Path) -> None:
    deep = "a" + ".a" * 200_000  # one name 200,001 fields deep
    pq.write_table(pa.table({deep: ["x"], "nip": ["1"]}), tmp_path / "deep.parquet")
    ((_, record, _),) = formats.parquet_items(str(tmp_path / "deep.parquet"))
    assert record["nip"] == "1" and set(record) == {"a", "nip"}
    wide = {f"c{i}." + "b." * 50 + "z": [i] for i in range(5_000)}  # 5,000 names, 52 fields deep each
    pq.write_table(pa.table(wide), tmp_path / "wide.parquet")
    ((_, record, _),) = formats.parquet_items(str(tmp_path / "wide.parquet"))
    assert len(record) == 5_000
    clash = {deep: ["x"], deep.rsplit(".", 1)[0]: ["y"]}  # a name, and one a field shorter
    pq.write_table(pa.table(clash), tmp_path / "clash.parquet")
    ((_, record, _),) = formats.parquet_items(str(tmp_path / "clash.parquet"))
    assert isinstance(record, formats.ErrorInfo) and "invalid row 1" in record.message
    decided = kinerja("eval", "nasional", "--unknown-fields", "error", "-i", str(tmp_path / "deep.parquet"))
    said = json.loads(decided.stdout)["error"]
    assert decided.returncode == 1 and {"path": "a", "message": "is not a field of this record (unknown_fields: "
                                        "error)"} in said["fields"]


def test_csv_rows_are_put_together_as_unflatten_would(tmp_path: Path) -> None:
    policy = bundled().policy("nasional")
    rows = [formats.flatten(r) for r in _people(30)]
    for i, row in enumerate(rows):
        if i % 4 == 0:
            row["jabatan.kelas"] = None  # an empty cell: the field is absent
        if i % 5 == 0:
            row["potensi.skor"] = "=1+1"  # a formula-like text, kept as text
    names = sorted({name for row in rows for name in row})
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerows([names, *([formats.csv_cell(row.get(n)) for n in names] for row in rows)])
    read = list(formats.csv_items(io.BytesIO(text.getvalue().encode()), policy))
    fields = formats._kinds(policy.checked.input)
    expected = [formats.unflatten({n: formats._from_text(formats.csv_cell(row.get(n)), fields.get(n)) for n in names})
                for row in rows]
    assert [record for _, record, _ in read] == expected and [line for line, _, _ in read] == list(range(2, 32))
    assert "kelas" not in expected[0]["jabatan"] and expected[0]["potensi"]["skor"] == "=1+1"
