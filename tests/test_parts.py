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
    "1" * (formats.MAX_CELL_CHARS + 10) + "\n" + "x\n" * 3,  # a cell past the limit, then rows never read
    "a\x00b\n" + "x\n" * 3,  # a NUL character
])
def test_a_row_the_parser_refuses_ends_the_parts_where_it_ends_the_file(tail: str) -> None:
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
