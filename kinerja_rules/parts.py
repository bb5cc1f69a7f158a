"""An input table cut into parts that worker processes read themselves (`kinerja eval --jobs`).

Building each record in the main process and sending it to a worker cost more than deciding
it there, so `--jobs 2` on a table was slower than `--jobs 1`. Instead the main process only
finds where parts begin, and each worker turns its parts into records:

- CSV: the main process runs the C parser over the file once to find where each block of
  records ends (a quoted cell may hold a line break, so lines alone cannot tell) and sends
  the block's text; the worker parses it again and reads the cells by the policy's types.
- Parquet: a part is a slice of one row group; a worker reads on through the row group a batch
  at a time (decoding it once, in C, with flat memory), skips the rows of the other workers'
  parts and converts only its own.

A part's items are exactly those `formats.csv_items` and `formats.parquet_items` give for the
same rows, with the same line and row numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO, Any, NamedTuple

from kinerja_rules.decision import ErrorInfo
from kinerja_rules.formats import (
    MAX_CELL_CHARS,
    CsvLines,
    CsvRows,
    ParquetRows,
    TableError,
    csv_header,
    pyarrow_parquet,
)
from kinerja_rules.policy import CompiledPolicy

PART_RECORDS = 2048
"""Records in one part: enough that sending it costs little beside deciding it."""

Item = tuple[int, Any, str]


class CsvPart(NamedTuple):
    header: tuple[str, ...]
    text: str  # whole rows, as the file has them
    line: int  # the line before the part's first


class ParquetPart(NamedTuple):
    path: str
    row_group: int
    start: int  # rows of the row group, [start, stop)
    stop: int
    first: int  # the number of the part's first row in the file


Part = CsvPart | ParquetPart | list[Item]
"""A part to read, or items read already (a file's header found wanting, a row the parser refused)."""


def csv_parts(stream: IO[bytes], rows: int = PART_RECORDS) -> Iterator[Part]:
    """The parts of a CSV file: blocks of `rows` rows, the header (checked) with each. A row that
    breaks a limit is that row's error (an item read already), and the rows after it are read on."""
    lines = CsvLines(io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline=""), keep=True)
    taken = lines.taken
    assert taken is not None
    reader = csv.reader(lines)
    csv.field_size_limit(MAX_CELL_CHARS)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield [(1, ErrorInfo(kind="input", message=f"invalid CSV header: {exc}", line=1), "")]
        return
    if header is None:
        return
    if (problem := csv_header(header)) is not None:
        yield [(1, ErrorInfo(kind="input", message=f"invalid CSV header: {problem}", line=1), "")]
        return
    names = tuple(header)
    line = lines.number  # the header may span lines
    taken.clear()
    count = done = 0  # rows in this part, and the lines they took
    while True:
        lines.begin()
        try:
            next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a cell or a line past the limit: that row's error, and on
            if done:
                yield CsvPart(names, "".join(taken[:done]), line)  # the rows before the one refused
            yield [lines.refused(exc)]
            line = lines.number
            taken.clear()
            count = done = 0
            continue
        done = len(taken)
        count += 1
        if count >= rows:
            yield CsvPart(names, "".join(taken), line)
            line = lines.number
            taken.clear()
            count = done = 0
    if taken:
        yield CsvPart(names, "".join(taken), line)


def parquet_parts(path: str, rows: int = PART_RECORDS) -> Iterator[Part]:
    """The parts of a Parquet file: slices of `rows` rows of each row group."""
    pq = pyarrow_parquet("read")
    try:
        metadata = pq.ParquetFile(path).metadata
    except Exception as exc:  # pyarrow says what is wrong with a file in exceptions of its own
        raise TableError(f"cannot read {path} as Parquet: {str(exc)[:300]}") from None
    first = 1
    for group in range(metadata.num_row_groups):
        size = metadata.row_group(group).num_rows
        for start in range(0, size, rows):
            stop = min(size, start + rows)
            yield ParquetPart(path, group, start, stop, first)
            first += stop - start


def items_of(part: Part, policy: CompiledPolicy) -> list[Item]:
    """The items of one part, read in the process that decides them."""
    if isinstance(part, list):
        return part
    if isinstance(part, CsvPart):
        csv.field_size_limit(MAX_CELL_CHARS)
        reader = csv.reader(io.StringIO(part.text, newline=""))
        made = CsvRows(part.header, policy)
        out = []
        for cells in reader:  # the main process parsed this text whole: it parses again
            if any(cells):
                out.append(made.item(part.line + reader.line_num, cells))
        return out
    reading = _reading(part)
    out = []
    position = part.first - 1
    for piece in reading.take(part.start, part.stop):
        out.extend(reading.rows.items(piece, position))
        position += piece.num_rows
    return out


class _GroupReading:
    """One row group read on, batch by batch, by a process taking its parts in order: the row group
    is decoded once, a batch at a time (memory stays flat), and rows before a part are skipped."""

    def __init__(self, path: str, group: int) -> None:
        pq = pyarrow_parquet("read")
        self.path, self.group = path, group
        self.file = pq.ParquetFile(path)
        self.rows = ParquetRows(self.file.schema_arrow, path)
        self.batches = self.file.iter_batches(batch_size=PART_RECORDS, row_groups=[group])
        self.position = 0  # the row of the group the next batch starts with
        self.held: Any = None  # the batch read last, which may hold the next part's first rows
        self.held_at = 0

    def take(self, start: int, stop: int) -> list[Any]:
        """The rows [start, stop) of the row group as record batches; `start` is never before a row
        this reading has passed (see `_reading`)."""
        out = []
        while True:
            if self.held is not None:
                low, high = max(start, self.held_at), min(stop, self.held_at + self.held.num_rows)
                if low < high:
                    out.append(self.held.slice(low - self.held_at, high - low))
                if self.held_at + self.held.num_rows >= stop:
                    return out
            batch = next(self.batches, None)
            if batch is None:
                return out
            self.held, self.held_at = batch, self.position
            self.position += batch.num_rows

    def close(self) -> None:
        self.file.close()


_current: _GroupReading | None = None  # this process's reading


def _reading(part: ParquetPart) -> _GroupReading:
    """The reading that can give `part`: this process's, when it is of the same row group and has
    not passed the part's first row; else a new one."""
    global _current
    found = _current
    if found is None or (found.path, found.group) != (part.path, part.row_group) or \
            (found.held_at if found.held is not None else found.position) > part.start:
        if found is not None:
            found.close()
        found = _current = _GroupReading(part.path, part.row_group)
    return found
