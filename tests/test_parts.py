"""A table cut into parts that worker processes read themselves gives exactly the items, line
numbers and errors of the table read whole, and `--jobs 2` the same output as `--jobs 1`."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kinerja_rules import formats
from kinerja_rules.parts import CsvPart, ParquetPart, csv_parts, items_of, parquet_parts
from tests.conftest import bundled
from tests.test_bulk import kinerja
from tests.test_formats import _people, _write_csv, _write_parquet

POLICY = bundled().policy("nasional")


def _csv_text(records: list[dict[str, Any]]) -> str:
    rows = [formats.flatten(r) for r in records]
    names = sorted({name for row in rows for name in row})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(names)
    writer.writerows([formats.csv_cell(row.get(n)) for n in names] for row in rows)
    return out.getvalue()


def _both(data: bytes, rows: int) -> tuple[list[Any], list[Any]]:
    whole = list(formats.csv_items(io.BytesIO(data), POLICY))
    parts = list(csv_parts(io.BytesIO(data), rows))
    return whole, [item for part in parts for item in items_of(part, POLICY)]


def _tricky() -> str:
    """Rows with line breaks inside quoted cells, blank lines, a row of too few cells, a BOM."""
    people = _people(9)
    people[2]["skp"]["indikator"][0]["nama"] = "Laporan\nbulanan,\r\n\"akhir\""
    people[5]["unit_kerja"] = "Dinas\n\nKesehatan"
    lines = _csv_text(people).splitlines(keepends=True)
    lines.insert(4, "\r\n")
    lines.insert(7, "1,2\r\n")
    lines.insert(9, "\n")
    return "\ufeff" + "".join(lines)


@pytest.mark.parametrize("rows", [1, 2, 3, 5, 1000])
def test_csv_parts_give_the_items_of_the_file_read_whole(rows: int) -> None:
    data = _tricky().encode()
    whole, parted = _both(data, rows)
    assert parted == whole
    assert len(whole) == 10 and sum(isinstance(item[1], dict) for item in whole) == 9
    assert any("\n" in item[1]["unit_kerja"] for item in whole if isinstance(item[1], dict))  # a cell over lines
    assert [line for line, _, _ in parted] == [line for line, _, _ in whole]


@pytest.mark.parametrize("tail", [
    '"never closed\n',  # a broken quote: the file is not read further
    "1" * (formats.MAX_CELL_CHARS + 10) + "\n" + "x\n" * 3,  # a cell past the limit, then rows of too few cells
    "a\x00b\n" + "x\n" * 3,  # a NUL character
])
def test_a_row_the_parser_refuses_is_where_the_whole_file_refuses_it(tail: str) -> None:
    data = (_csv_text(_people(5)) + tail).encode()
    for rows in (1, 2, 4, 100):
        whole, parted = _both(data, rows)
        assert parted == whole and whole[-1][1].kind == "input"
        assert sum(isinstance(item[1], dict) for item in parted) == 5


@pytest.mark.parametrize("text", [b"", b"nip,nip\n1,2\n", b"nip,\n1,2\n", b'"nip\nlama",status\n1,pns\n'])
def test_a_csv_header_is_judged_as_the_whole_file_judges_it(text: bytes) -> None:
    whole, parted = _both(text, 2)
    assert parted == whole


def test_parquet_parts_give_the_rows_of_the_file_read_whole(tmp_path: Path) -> None:
    records = _people(50)
    rows = [formats.flatten(r) for r in records]
    names = sorted({name for row in rows for name in row})
    path = tmp_path / "r.parquet"
    pq.write_table(pa.Table.from_pylist([{n: row.get(n) for n in names} for row in rows]), path, row_group_size=12)
    whole = list(formats.parquet_items(str(path)))
    for size in (1, 5, 12, 1000):
        parts = list(parquet_parts(str(path), size))
        assert all(isinstance(p, ParquetPart) and p.stop - p.start <= size for p in parts)
        assert [item for part in parts for item in items_of(part, POLICY)] == whole
    assert [n for n, _, _ in whole] == list(range(1, 51))


def test_a_csv_part_is_small_to_send() -> None:
    parts = list(csv_parts(io.BytesIO(_csv_text(_people(10)).encode()), 4))
    assert [type(p) for p in parts] == [CsvPart] * 3
    assert all(isinstance(p.text, str) for p in parts if isinstance(p, CsvPart))


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_jobs_2_reads_its_parts_in_the_workers_and_writes_what_jobs_1_does(tmp_path: Path, kind: str) -> None:
    records = _people(5000)  # more than two parts: the workers decide them
    records[4321]["jabatan"]["kelas"] = 40  # one record out of range, in a worker's part
    path = tmp_path / f"r.{kind}"
    (_write_csv if kind == "csv" else _write_parquet)(path, records)
    one = kinerja("eval", "nasional", "-i", str(path), "--jobs", "1")
    two = kinerja("eval", "nasional", "-i", str(path), "--jobs", "2")
    assert one.returncode == two.returncode == 1
    assert two.stdout == one.stdout and one.stdout.count(b"\n") == 5000
    assert (b'"line":4323' if kind == "csv" else b'"line":4322') in two.stdout  # CSV counts its header


def test_parquet_parts_taken_out_of_order_are_still_their_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    _write_parquet(path, _people(40))
    whole = list(formats.parquet_items(str(path)))
    parts = list(parquet_parts(str(path), 6))
    for i in (3, 1, 6, 0, 6, 2):  # a worker is handed a part its reading has passed: it reads again
        part = parts[i]
        assert isinstance(part, ParquetPart)
        assert items_of(part, POLICY) == whole[part.first - 1:part.first - 1 + part.stop - part.start]


def test_a_file_that_is_not_parquet_is_refused_before_any_part(tmp_path: Path) -> None:
    (tmp_path / "not.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(formats.TableError, match="as Parquet"):
        next(parquet_parts(str(tmp_path / "not.parquet")))
    bad = kinerja("eval", "nasional", "-i", str(tmp_path / "not.parquet"), "--jobs", "2")
    assert bad.returncode == 2 and b"as Parquet" in bad.stderr and b"Traceback" not in bad.stderr


def _with_a_row_too_big(tmp_path: Path, how: str) -> Path:
    """One good row, then a row past a limit (a cell, a line, a quoted cell held open over lines), then 10 good rows."""
    text = _csv_text(_people(11))
    lines = text.splitlines(keepends=True)
    width = lines[0].count(",") + 1
    big = {"cell": "1" * (formats.MAX_CELL_CHARS + 10) + "," * (width - 1) + "\n",
           "line": ("2" * 100 + ",") * (formats.MAX_LINE_CHARS // 100) + "\n",
           "quoted": '"' + "3" * (formats.MAX_CELL_CHARS + 10) + "\n" + 'still, the same cell",9,9\n'}[how]
    path = tmp_path / "x.csv"
    path.write_text("".join([lines[0], lines[1], big, *lines[2:]]))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cell", "line", "quoted"])
def test_a_row_past_a_limit_is_its_own_error_and_every_later_row_is_decided(tmp_path: Path, how: str) -> None:
    path = _with_a_row_too_big(tmp_path, how)
    outputs = []
    for jobs in ("1", "2"):
        result = kinerja("eval", "nasional", "-i", str(path), "--jobs", jobs)
        assert result.returncode == 1, result.stderr
        lines = result.stdout.decode().splitlines()
        assert len(lines) == 12 and sum('"error"' in line for line in lines) == 1, lines[:3]
        assert '"line":3' in lines[1] and ("longer than" if how == "line" else "field larger") in lines[1]
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    whole, parted = _both(path.read_bytes(), 3)
    assert parted == whole and len(whole) == 12


@pytest.mark.slow
def test_a_row_past_a_limit_leaves_every_later_row_in_a_workbook(tmp_path: Path) -> None:
    import openpyxl
    path = _with_a_row_too_big(tmp_path, "cell")
    out = tmp_path / "out.xlsx"
    result = kinerja("eval", "nasional", "-i", str(path), "-o", str(out), "--jobs", "2")
    assert result.returncode == 1, result.stderr
    book = openpyxl.load_workbook(out)
    decided, failed = (list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets[:2])
    assert len(decided) - 1 + len(failed) - 1 == 12 and len(failed) == 2  # a row per record, the bad one apart
    assert failed[1][2] == 3 and "field limit" in failed[1][4]  # its line, and why
