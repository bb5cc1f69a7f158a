"""Records and decisions as tables: CSV and Parquet (pyarrow) (XLSX, for people, is `workbook`), beside
JSON Lines and JSON arrays, chosen by a file's extension.

One rule, both ways. A nested record's fields are dotted columns (`jabatan.kelas`,
`outputs.tpp.diterima`); a list is one column: JSON text in CSV and XLSX, a native list in
Parquet; an absent or null value is an empty cell. A decision's `warnings`, `population` and
`trace`, objects of many shapes, are one column of JSON text in every table.

CSV cells are text: a record's are read by the types its policy declares (a `decimal` field's
"87.5" is the number 87.5, exactly; a `text` field's "198507122010011003" stays text). A
Parquet file's numbers are read as they are typed (a binary float as the shortest decimal that
gives it back). Both are read a block at a time, and written so, so memory stays flat.
"""

from __future__ import annotations

import abc
import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import msgspec

from kinerja_rules.decision import ENCODER, ErrorInfo
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.schema import Field
from kinerja_rules.types import NUMERIC, Kind, Type

INPUTS = (".jsonl", ".json", ".csv", ".parquet")
OUTPUTS = (".jsonl", ".json", ".csv", ".parquet", ".xlsx")
MAX_COLUMNS = 10_000
MAX_CELL_CHARS = 1_000_000
MAX_LINE_CHARS = 16 * 1024 * 1024
"""The longest line of a CSV file read (longer: its record's error, and the rest of the line skipped)."""
ROWS_PER_GROUP = 10_000  # rows per Parquet row group (and what is held before writing one)
_DECODER = msgspec.json.Decoder(float_hook=Decimal)
_INTEGER = re.compile(r"[+-]?[0-9]{1,40}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,3})?")
_JSON_COLUMNS = ("warnings", "population", "trace")
_ERROR_COLUMNS = ("error.kind", "error.message", "error.fields", "error.where", "error.paths", "error.line")


class TableError(ValueError):
    """A file that cannot be read or written as a table; says which and why."""


def format_of(path: str, allowed: Sequence[str], what: str) -> str:
    """The format of `path` by its extension, one of `allowed`."""
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise TableError(f"{what} {path}: the extension says which format, one of {', '.join(allowed)}"
                         f"{'' if suffix else ' (it has none)'}")
    return suffix


def csv_cell(value: Any) -> str:
    """A value as a CSV cell for spreadsheets: a text a spreadsheet would read as a formula is quoted."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return ENCODER.encode(value).decode()
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not isinstance(value, (int, Decimal)):
        return "'" + text  # never a formula in someone's spreadsheet
    return text


def flatten(value: Mapping[str, Any], prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """A nested object as dotted names; lists and the JSON columns are kept whole."""
    out = {} if out is None else out
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and name not in _JSON_COLUMNS:
            flatten(item, name + ".", out)
        else:
            out[name] = item
    return out


def cells_of(columns: Sequence[str]) -> Callable[[Mapping[str, Any]], list[Any]]:  # noqa: C901
    """A function giving an object's value in each dotted column (named once each), as
    `flatten(value).get(column)` would for keys without dots (as every key of a decision is),
    walking the object once without making the flat one."""
    if len(set(columns)) != len(columns):
        raise ValueError("a column is named twice")
    root: dict[str, list[Any]] = {}  # key: [its column's index or -1, kept whole, the columns inside it]
    for index, column in enumerate(columns):
        parts = column.split(".")
        if any(".".join(parts[:i]) in _JSON_COLUMNS for i in range(1, len(parts))):
            continue  # inside a column kept whole: flatten never makes it
        node = root
        for part in parts[:-1]:
            entry = node.setdefault(part, [-1, False, None])
            if entry[2] is None:
                entry[2] = {}
            node = entry[2]
        entry = node.setdefault(parts[-1], [-1, False, None])
        entry[0], entry[1] = index, column in _JSON_COLUMNS

    def frozen(node: dict[str, list[Any]]) -> tuple[tuple[str, int, bool, Any], ...]:
        return tuple((key, at, whole, None if inner is None else frozen(inner))
                     for key, (at, whole, inner) in node.items())

    plan = frozen(root)
    width = len(columns)

    def fill(plan: tuple[tuple[str, int, bool, Any], ...], value: Mapping[str, Any], row: list[Any]) -> None:
        for key, at, whole, inner in plan:
            item = value.get(key)
            if item is None:
                continue
            if type(item) is dict:
                if inner is not None:
                    fill(inner, item, row)
                if whole and at >= 0:
                    row[at] = item
            elif at >= 0:
                row[at] = item

    def cells(value: Mapping[str, Any]) -> list[Any]:
        row = [None] * width
        fill(plan, value, row)
        return row

    return cells


def unflatten(row: Mapping[str, Any]) -> dict[str, Any] | ErrorInfo:
    """Dotted names as a nested object (absent values left out); an ErrorInfo when two columns
    claim the same place (`a` and `a.b`)."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if value is None:
            continue
        *parents, last = name.split(".")
        here = out
        for part in parents:
            here = here.setdefault(part, {})
            if not isinstance(here, dict):
                return ErrorInfo(kind="input", message=f"column {name!r} is inside {part!r}, which has a value")
        if last in here:
            return ErrorInfo(kind="input", message=f"column {name!r} is given twice, or holds fields given apart")
        here[last] = value
    return out


# ---- reading ----

def _kinds(field: Field, prefix: str = "", out: dict[str, Field] | None = None) -> dict[str, Field]:
    """Each dotted column a record's fields may have, with its field (a list, or a record inside a
    list, is one column)."""
    out = {} if out is None else out
    for name, sub in field.fields:
        path = f"{prefix}{name}"
        out[path] = sub
        if sub.type.kind == Kind.RECORD:
            _kinds(sub, path + ".", out)
    return out


def _from_text(text: str, field: Field | None) -> Any:
    """A CSV cell as its field's value; a cell that does not read as one stays text (the policy's
    check then says what is wrong with it)."""
    if text == "":
        return None
    if text[:2] in ("'=", "'+", "'-", "'@", "'\t", "'\r"):
        return text[1:]
    kind = field.type.kind if field is not None else None
    if kind in NUMERIC:  # as JSON reads a number: whole digits an integer, anything else an exact decimal
        if _INTEGER.fullmatch(text):
            return int(text)
        if _DECIMAL.fullmatch(text):
            return Decimal(text)
    if kind == Kind.BOOLEAN and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if kind in (Kind.LIST, Kind.RECORD) and text[:1] in ("[", "{"):
        try:
            return _DECODER.decode(text)
        except (msgspec.DecodeError, RecursionError):
            return text
    return text


class CsvLines:
    """The lines of a CSV text as `csv.reader` takes them, each bounded, numbered, and read on past a
    record that breaks a limit.

    A line longer than MAX_LINE_CHARS is read no further (the rest is skipped, not held) and
    stands as a cell the reader refuses. After the reader refuses a record, `skip_open` skips
    what is left of it when a quoted cell held it open (an odd number of quote characters so
    far), so that no part of it is read as records of its own.
    """

    _TOO_LONG = "x" * (MAX_CELL_CHARS + 1) + "\n"  # what the reader refuses as a cell past the limit

    def __init__(self, text: IO[str], keep: bool = False) -> None:
        self.text = text
        self.number = 0  # lines read
        self.quotes = 0  # quote characters in the lines of the record being read
        self.too_long: int | None = None  # the number of the line that was too long, in this record
        self.taken: list[str] | None = [] if keep else None  # the lines, as read (for parts)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self._line()
        if line is None:
            raise StopIteration
        return line

    def _line(self) -> str | None:
        line = self.text.readline(MAX_LINE_CHARS)
        if not line:
            return None
        self.number += 1
        quotes = line.count('"')
        if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            while (more := self.text.readline(MAX_LINE_CHARS)) and not more.endswith(("\n", "\r")):
                quotes += more.count('"')
            quotes += more.count('"')
            line, self.too_long = self._TOO_LONG, self.number
        self.quotes += quotes
        if self.taken is not None:
            self.taken.append(line)
        return line

    def begin(self) -> None:
        """A record starts."""
        self.quotes, self.too_long = 0, None

    def refused(self, exc: csv.Error) -> tuple[int, Any, str]:
        """The item of the record the reader refused (on the line read last), the rest of it skipped."""
        line = self.number
        reason = f"the line is longer than {MAX_LINE_CHARS:,} characters" if self.too_long is not None else str(exc)
        while self.quotes % 2 and self._line() is not None:  # a quoted cell holds the record open
            pass
        return line, ErrorInfo(kind="input", message=f"invalid CSV on line {line}: {reason}", line=line), ""


def csv_items(stream: IO[bytes], policy: CompiledPolicy, delimiter: str = ",",
              rows_of: Callable[[list[str]], Any] | None = None) -> Iterator[tuple[int, Any, str]]:
    """(line, record or ErrorInfo, "") for each row of a CSV file whose first row names the columns;
    a row that breaks a limit is that row's error, and the rows after it are read on. `rows_of`
    makes what reads each row from the header (`CsvRows` unless given)."""
    lines = CsvLines(io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline=""))
    reader = csv.reader(lines, delimiter=delimiter)
    csv.field_size_limit(MAX_CELL_CHARS)
    said = f" (cells split by {delimiter!r})" if delimiter != "," else ""
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield 1, ErrorInfo(kind="input", message=f"invalid CSV header{said}: {exc}", line=1), ""
        return
    if header is None:
        return
    if (problem := csv_header(header)) is not None:
        yield 1, ErrorInfo(kind="input", message=f"invalid CSV header{said}: {problem}", line=1), ""
        return
    rows = CsvRows(header, policy) if rows_of is None else rows_of(header)
    while True:
        lines.begin()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a cell or a line past the limit: that row's error
            yield lines.refused(exc)
            continue
        if any(cells):
            yield rows.item(lines.number, cells)


def csv_header(header: list[str] | None) -> str | None:
    """What is wrong with a CSV file's first row as the names of its columns, or None."""
    if header is not None and (len(header) > MAX_COLUMNS or len(set(header)) != len(header) or not all(header)):
        return (f"more than {MAX_COLUMNS} columns" if len(header) > MAX_COLUMNS else
                "a column without a name" if not all(header) else "a column named twice")
    return None


def named(header: Sequence[str], policy: CompiledPolicy) -> list[str]:
    """A table's column names as dotted input names: a name that is none, but is the label of one
    (`NIP`, `Periode`: the policy's `label:` in either language, any case), stands for it."""
    fields = _kinds(policy.checked.input)
    labels: dict[str, str] = {}
    for key, texts in policy.checked.words.items():
        if key.startswith("input:") and "[" not in key:
            for text in texts.get("label", {}).values():
                labels.setdefault(" ".join(text.split()).casefold(), key[6:])
    return [name if name in fields else labels.get(" ".join(name.split()).casefold(), name) for name in header]


class CsvRows:
    """The records of a CSV file's rows, by its header: how each cell is read and where it goes."""

    def __init__(self, header: Sequence[str], policy: CompiledPolicy) -> None:
        fields = _kinds(policy.checked.input)
        header = named(header, policy)
        self.header = list(header)
        self.known = [fields.get(name) for name in header]
        self.plan = _assembly(header)  # None when names clash: unflatten then says where, row by row

    def item(self, line: int, cells: list[str]) -> tuple[int, Any, str]:
        """(line, record or ErrorInfo, "") of one row that is not empty."""
        if len(cells) != len(self.header):
            return line, ErrorInfo(kind="input", line=line, message=f"invalid CSV on line {line}: {len(cells)} "
                                   f"cells, the header names {len(self.header)}"), ""
        if self.plan is not None:
            return line, _assemble(self.plan, [_from_text(cell, field)
                                               for cell, field in zip(cells, self.known, strict=True)]), ""
        record = unflatten({name: _from_text(cell, field)
                            for name, cell, field in zip(self.header, cells, self.known, strict=True)})
        if isinstance(record, ErrorInfo):
            record = msgspec.structs.replace(record, line=line, message=f"invalid CSV on line {line}: {record.message}")
        return line, record, ""


def parquet_items(path: str, batch_rows: int = 1024, row_group: int | None = None,
                  first: int = 1) -> Iterator[tuple[int, Any, str]]:
    """(row number, record or ErrorInfo, "") for each row of a Parquet file, or of one of its row groups;
    rows are numbered from `first`.

    Each batch is read column by column: only a column whose type can hold a binary float, a date or
    a nested value is converted (`_exact`), and each row is put together by a plan made once from the
    column names. Names that cannot make one record (`a` beside `a.b`, a name twice) are put together
    row by row (`unflatten`), which says where each row goes wrong."""
    pq = pyarrow_parquet("read")
    try:
        file = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow says what is wrong with a file in exceptions of its own
        raise TableError(f"cannot read {path} as Parquet: {str(exc)[:300]}") from None
    with file:
        rows = ParquetRows(file.schema_arrow, path)
        position = first - 1
        for batch in file.iter_batches(batch_size=batch_rows, row_groups=None if row_group is None else [row_group]):
            yield from rows.items(batch, position)
            position += batch.num_rows


class ParquetRows:
    """The records of a Parquet file's rows, by its schema: which columns are made exact, and where
    each column's value goes."""

    def __init__(self, schema: Any, path: str) -> None:
        if len(schema.names) > MAX_COLUMNS:
            raise TableError(f"cannot read {path}: more than {MAX_COLUMNS} columns")
        self.plan = _assembly(schema.names)
        self.converted = [i for i, f in enumerate(schema) if not _as_read(f.type)]

    def items(self, batch: Any, position: int) -> Iterator[tuple[int, Any, str]]:
        """(row number, record or ErrorInfo, "") of each row of a record batch whose first row is
        number `position + 1`."""
        if self.plan is None:
            for row in batch.to_pylist():
                position += 1
                record = unflatten({name: _exact(value) for name, value in row.items()})
                if isinstance(record, ErrorInfo):
                    record = msgspec.structs.replace(record, line=position,
                                                     message=f"invalid row {position}: {record.message}")
                yield position, record, ""
            return
        columns = [column.to_pylist() for column in batch.columns]
        for i in self.converted:
            columns[i] = [_exact(value) for value in columns[i]]
        plan = self.plan
        for row in zip(*columns, strict=True):
            position += 1
            yield position, _assemble(plan, row), ""


_Plan = list[tuple[tuple[str, ...], str]]


def _assembly(names: Sequence[str]) -> _Plan | None:
    """How each column's value goes into a record: (the fields it lies in, its own name); None when
    one name is given twice or holds another (`a` and `a.b`), which `unflatten` judges row by row."""
    paths = [tuple(name.split(".")) for name in names]
    tree: dict[str | None, Any] = {}  # the names as a tree of their parts; None marks where one ends
    for path in paths:
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if None in node:  # a shorter name ends here
                return None
        node = node.setdefault(path[-1], {})
        if node:  # given before, or holding a longer name
            return None
        node[None] = True
    return [(path[:-1], path[-1]) for path in paths]


def _assemble(plan: _Plan, row: Sequence[Any]) -> dict[str, Any]:
    """One record from its row's values by `plan`: what `unflatten` makes of them, absent values left out."""
    record: dict[str, Any] = {}
    for (parents, last), value in zip(plan, row, strict=True):
        if value is None:
            continue
        here = record
        for part in parents:
            inner = here.get(part)
            if inner is None:
                inner = here[part] = {}
            here = inner
        here[last] = value
    return record


def _as_read(type_: Any) -> bool:
    """Whether pyarrow reads a column of this type as a record holds it (integers, text, booleans,
    exact decimals, bytes, and lists and structs of these): `_exact` would give back its values equal."""
    import pyarrow.types as t

    if t.is_dictionary(type_):
        return _as_read(type_.value_type)
    if t.is_list(type_) or t.is_large_list(type_) or t.is_fixed_size_list(type_):
        return _as_read(type_.value_type)
    if t.is_struct(type_):
        return all(_as_read(type_.field(i).type) for i in range(type_.num_fields))
    return bool(t.is_integer(type_) or t.is_boolean(type_) or t.is_string(type_) or t.is_large_string(type_)
                or t.is_decimal(type_) or t.is_null(type_) or t.is_binary(type_) or t.is_large_binary(type_)
                or t.is_fixed_size_binary(type_))


def _exact(value: Any) -> Any:
    """A value as a record holds it: a binary float as the shortest decimal that gives it back, a
    date as its ISO text."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [_exact(v) for v in value]
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def pyarrow_parquet(what: str) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise TableError(f"to {what} Parquet, install pyarrow: pip install 'kinerja-rules[formats]'") from None
    return pq


# ---- writing ----

def columns(policy: CompiledPolicy, explain: bool) -> list[str]:
    """The columns of a table of decisions: whom each is for, the policy, each output, and an error's parts."""
    return [*(f"subject.{name}" for name, _ in policy.subject), "policy.id", "policy.version", "policy.digest", "as_of",
            *(f"outputs.{name}" for name in policy.checked.outputs), "warnings",
            *(["population"] if policy.population is not None else []), *(["trace"] if explain else []),
            *_ERROR_COLUMNS]


class Sink(abc.ABC):
    """Where decisions go, given as the JSON lines `bulk.decide_block` makes."""

    @abc.abstractmethod
    def write(self, lines: bytes) -> None:
        """Take some lines, each a decision or an error."""

    def flush(self) -> None:  # noqa: B027 (optional: a sink that writes through has nothing to flush)
        pass

    def close(self) -> None:  # noqa: B027 (optional: nothing to close unless the sink opened something)
        pass


class JsonLines(Sink):
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, lines: bytes) -> None:
        self.out.write(lines)

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


class JsonArray(Sink):
    """One JSON array, an element per line."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.first = True

    def write(self, lines: bytes) -> None:
        for line in lines.splitlines():
            self.out.write((b"[\n" if self.first else b",\n") + line)
            self.first = False

    def close(self) -> None:
        self.out.write(b"[]\n" if self.first else b"\n]\n")
        self.out.flush()


class _Rows(Sink):
    """A table: each line decoded and flattened into the columns."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self._cells = cells_of(columns)
        self._line = columns.index("line") if "line" in columns else None

    def write(self, lines: bytes, numbers: Sequence[int] = ()) -> None:
        """Take lines; with `numbers`, each line's record number goes in the column `line`."""
        cells = self._cells
        rows = []
        for i, line in enumerate(lines.splitlines()):
            row = cells(_DECODER.decode(line))
            if numbers and self._line is not None:
                row[self._line] = numbers[i]
            rows.append(row)
        self.rows(rows)

    @abc.abstractmethod
    def rows(self, rows: list[list[Any]]) -> None:
        """Write rows of cells, in the order of the columns."""


class Csv(_Rows):
    def __init__(self, out: IO[bytes], columns: list[str]) -> None:
        super().__init__(columns)
        self.text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
        self.writer = csv.writer(self.text, lineterminator="\n")
        self.writer.writerow(columns)

    def rows(self, rows: list[list[Any]]) -> None:
        self.writer.writerows([csv_cell(v) for v in row] for row in rows)

    def close(self) -> None:
        self.text.flush()
        self.text.detach()


def _arrow_type(type_: Type) -> Any:
    import pyarrow as pa

    kind = type_.kind
    if kind in (Kind.INTEGER, Kind.MONEY):
        return pa.int64()
    if kind in (Kind.DECIMAL, Kind.PERCENT):
        return pa.decimal128(38, 10)
    if kind == Kind.BOOLEAN:
        return pa.bool_()
    if kind == Kind.LIST and type_.item is not None:
        return pa.list_(_arrow_type(type_.item))
    if kind == Kind.RECORD and type_.fields:
        return pa.struct([(name, _arrow_type(sub)) for name, sub in type_.fields])
    return pa.string()


class Parquet(_Rows):
    """Columns typed by the policy's outputs: whole numbers and money as 64-bit integers, decimals as
    decimal128(38, 10), lists as lists, records as structs."""

    def __init__(self, path: str, policy: CompiledPolicy, columns: list[str]) -> None:
        super().__init__(columns)
        pq = pyarrow_parquet("write")
        import pyarrow as pa

        self.pa = pa
        message = pa.struct([("path", pa.string()), ("message", pa.string())])
        types = {f"outputs.{name}": _arrow_type(o.type) for name, o in policy.checked.outputs.items()}
        types.update({"error.fields": pa.list_(message), "error.paths": pa.list_(pa.string()),
                      "error.line": pa.int64(), "line": pa.int64()})
        self.json_columns = [i for i, c in enumerate(columns) if c in _JSON_COLUMNS]
        self.schema = pa.schema([(c, types.get(c, pa.string())) for c in columns])
        self.writer = pq.ParquetWriter(path, self.schema)
        self.held: list[list[Any]] = []

    def rows(self, rows: list[list[Any]]) -> None:
        for row in rows:
            for i in self.json_columns:
                if row[i] is not None:
                    row[i] = ENCODER.encode(row[i]).decode()
        self.held.extend(rows)
        if len(self.held) >= ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self.held:
            return
        data = {c: [row[i] for row in self.held] for i, c in enumerate(self.columns)}
        try:
            table = self.pa.Table.from_pydict(data, schema=self.schema)
        except (self.pa.ArrowInvalid, self.pa.ArrowTypeError) as exc:
            raise TableError(f"a decision does not fit its Parquet column ({str(exc)[:200]}); write .jsonl or "
                             ".csv instead") from None
        self.writer.write_table(table)
        self.held = []

    def close(self) -> None:
        try:
            self._flush()
        finally:
            self.writer.close()


def sink(path: str | None, out: IO[bytes], policy: CompiledPolicy, explain: bool) -> Sink:
    """Where `kinerja eval` writes: standard output (JSON Lines), or a file in the format its extension names."""
    if path is None:
        return JsonLines(out)
    suffix = format_of(path, OUTPUTS, "--output")
    if suffix == ".parquet":
        return Parquet(path, policy, columns(policy, explain))
    if suffix == ".xlsx":  # a workbook is for people: `workbook.sink` makes it
        raise TableError(f"--output {path}: a workbook is written by kinerja_rules.workbook.sink")
    try:
        file = open(path, "wb")
    except OSError as exc:
        raise TableError(f"cannot write {path}: {exc.strerror}") from None
    if suffix == ".csv":
        return _Closing(Csv(file, columns(policy, explain)), file)
    return _Closing(JsonArray(file) if suffix == ".json" else JsonLines(file), file)


class _Closing(Sink):
    def __init__(self, inner: Sink, file: IO[bytes]) -> None:
        self.inner, self.file = inner, file

    def write(self, lines: bytes) -> None:
        self.inner.write(lines)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.file.close()
