"""Tables people make, read as records: a workbook (`.xlsx`: its first sheet, or the one named),
a CSV file as Excel writes it with Indonesian settings (`;` between cells, a decimal comma), and a
list of records (the SKP indicators) from a sheet or file of its own, joined on the subject.

The CSV dialect is fixed per file, never guessed per cell: from the delimiter of its header line,
or as `--csv-dialect` says. In `excel-id` a number is written `85,5` or `4.500.000`; a point is
read only as a thousands separator in its right places, so a cell such as `1.000,5.2` is its
record's error naming the cell, never a number picked out of it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import msgspec

from kinerja_rules.decision import ErrorInfo, ErrorResult
from kinerja_rules.errors import FieldError
from kinerja_rules.evaluation.decide import subject_of
from kinerja_rules.formats import (
    _DECIMAL,
    _INTEGER,
    MAX_COLUMNS,
    TableError,
    _from_text,
    _kinds,
    csv_items,
    named,
    unflatten,
)
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.types import NUMERIC, Kind

DIALECTS = ("excel", "excel-id")
MAX_LIST_ROWS = 1_000_000
_ID_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]{1,40})(?:,[0-9]{1,40})?")

Item = tuple[int, Any, str]


def dialect_of(header_line: str, given: str | None) -> str:
    """The file's dialect: `given`, else `excel-id` when its header line is split by `;` (and holds
    no `,`), else `excel`. A header that says the other dialect than the one given is refused,
    naming the delimiter it saw."""
    seen = ";" if header_line.count(";") > header_line.count(",") else ","
    if given is None:
        return "excel-id" if seen == ";" else "excel"
    if given == "excel" and seen == ";" and "," not in header_line:
        raise TableError("the header line is split by ';' (Excel with Indonesian settings writes so), not ','; "
                         "give --csv-dialect excel-id")
    if given == "excel-id" and seen == "," and ";" not in header_line:
        raise TableError("the header line is split by ',', not ';'; give --csv-dialect excel (or none)")
    return given


def id_number(text: str) -> Decimal | int | None:
    """A number as Excel writes it with Indonesian settings (`85,5`, `4.500.000`); None when it is not."""
    text = text.strip()
    if not _ID_NUMBER.fullmatch(text):
        return None
    whole, _, part = text.replace(".", "").partition(",")
    return Decimal(f"{whole}.{part}") if part else int(whole)


def csv_id_items(stream: IO[bytes], policy: CompiledPolicy, dialect: str) -> Iterator[Item]:
    """(line, record or ErrorInfo, "") of a CSV file in `dialect`; in `excel-id` each number cell is
    read as `id_number` reads it, and a cell of a number field that is none is that record's error."""
    return csv_items(stream, policy, ";" if dialect == "excel-id" else ",",
                     lambda header: Rows(header, policy, dialect))


class Rows:
    """Rows of cells (texts, or a workbook's typed values) as records, by their header."""

    def __init__(self, header: Sequence[Any], policy: CompiledPolicy, dialect: str = "excel") -> None:
        self.header = named([str(h).strip() if h is not None else "" for h in header], policy)
        fields = _kinds(policy.checked.input)
        self.fields = [fields.get(name) for name in self.header]
        self.dialect, self.period, self.policy = dialect, policy.period, policy

    def item(self, line: int, cells: Sequence[Any]) -> Item:
        if len(cells) > len(self.header) and any(c not in (None, "") for c in cells[len(self.header):]):
            return line, ErrorInfo(kind="input", line=line, message=f"line {line}: {len(cells)} cells, the header "
                                   f"names {len(self.header)}"), ""
        values: dict[str, Any] = {}
        wrong: list[FieldError] = []
        for name, field, cell in zip(self.header, self.fields, list(cells) + [None] * len(self.header), strict=False):
            if not name:
                continue
            value = self._value(name, field, cell)
            if isinstance(value, FieldError):
                wrong.append(value)
            else:
                values[name] = value
        if wrong:  # the record's error, naming whom it was for when the cells that say so are good
            partial = unflatten(values)
            return line, ErrorResult(
                subject=subject_of(self.policy, partial if isinstance(partial, dict) else None, wrong),
                policy=self.policy.ref, error=ErrorInfo(kind="record", line=line, fields=wrong, message=(
                    f"line {line}: " + "; ".join(f"{e.path}: {e.message}" for e in wrong)))), ""
        record = unflatten(values)
        if isinstance(record, ErrorInfo):
            return line, ErrorInfo(kind="input", line=line, message=f"line {line}: {record.message}"), ""
        return line, record, ""

    def _value(self, name: str, field: Any, cell: Any) -> Any:
        kind = field.type.kind if field is not None else None
        if cell is None or cell == "":
            return None
        if isinstance(cell, bool):
            return cell
        if isinstance(cell, (dt.datetime, dt.date)):  # a workbook's date cell
            day = cell.date() if isinstance(cell, dt.datetime) else cell
            return day.strftime("%Y-%m") if name == self.period and kind == Kind.TEXT else day.isoformat()
        if isinstance(cell, (int, float)):
            if kind == Kind.TEXT:  # a NIP Excel took for a number has lost its digits past the 15th
                if isinstance(cell, float) or abs(cell) >= 10 ** 15:
                    return FieldError(path=name, message=f"the cell holds the number {cell!r}; write it as text "
                                      "(Excel keeps only 15 digits of a number)")
                return str(cell)
            return Decimal(repr(cell)) if isinstance(cell, float) else cell
        text = str(cell)
        if kind == Kind.ENUM:  # a form's drop-down gives the value's label
            return chosen(self.policy, field.type, text)
        if kind == Kind.LIST and field.items is not None and not text.lstrip().startswith("["):
            values = [self._value(name, field.items, part.strip()) for part in text.split(";") if part.strip()]
            bad = next((v for v in values if isinstance(v, FieldError)), None)
            return bad if bad is not None else values
        if self.dialect == "excel-id" and kind in NUMERIC and text.strip():
            number = id_number(text)
            if number is None:
                return FieldError(path=name, message=f"{text[:40]!r} is not a number as Excel writes one with "
                                  "Indonesian settings (85,5 or 4.500.000)")
            return number
        return _from_text(text, field)


def chosen(policy: CompiledPolicy, kind: Any, text: str) -> str:
    """An enumeration's value from its cell: the value, or its label in either language (any case)."""
    found = policy.derived.get(("sheets.labels", kind.name))
    if found is None:
        found = {}
        for value in kind.values:
            found[value.casefold()] = value
            for label in policy.checked.words.get(f"value:{kind.name}.{value}", {}).get("label", {}).values():
                found.setdefault(" ".join(label.split()).casefold(), value)
        policy.derived[("sheets.labels", kind.name)] = found
    return str(found.get(" ".join(text.split()).casefold(), text))


def sheet_lists(path: str, policy: CompiledPolicy, given: Sequence[str]
                ) -> dict[str, dict[tuple[Any, ...], list[dict[str, Any]]]]:
    """The lists of records a workbook holds on sheets named for them (`skp.indikator`, as
    `kinerja template` makes them), but for those `given` elsewhere."""
    _, lists = form_columns(policy)
    book = _open(path)
    try:
        titles = set(book.sheetnames)
    finally:
        book.close()
    return {list_path: list_rows(path, policy, list_path, list_path[:31]) for list_path, _ in lists
            if list_path[:31] in titles and list_path not in given}


def xlsx_items(path: str, policy: CompiledPolicy, sheet: str | None = None) -> Iterator[Item]:
    """(row number, record or ErrorInfo, "") of a workbook's first sheet (or `sheet`); the sheets
    named for a list of records (`skp.indikator`, or its label) are joined in as `list_sheets` says."""
    book = _open(path)
    try:
        names = book.sheetnames
        if sheet is not None and sheet not in names:
            raise TableError(f"{path} has no sheet {sheet!r}; it has {', '.join(names)}")
        rows = book[sheet or names[0]].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            return
        header = list(header)
        while header and header[-1] in (None, ""):
            header.pop()
        if len(header) > MAX_COLUMNS or not header:
            raise TableError(f"{path}: the first row names no columns, or more than {MAX_COLUMNS}")
        made = Rows(header, policy)
        for number, cells in enumerate(rows, start=2):
            if any(c not in (None, "") for c in cells):
                yield made.item(number, cells)
    finally:
        book.close()


def _open(path: str) -> Any:
    try:
        from openpyxl import load_workbook
    except ImportError:
        raise TableError("to read XLSX, install openpyxl: pip install 'kinerja-rules[formats]'") from None
    try:
        return load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a file that is not a workbook
        raise TableError(f"cannot read {path} as a workbook: {str(exc)[:200]}") from None


def list_rows(path: str, policy: CompiledPolicy, list_path: str, sheet: str | None = None,
              dialect: str | None = None) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """The items of a list of records (`skp.indikator`) from a file or sheet of their own: each row
    the subject's columns (nip, periode) and the item's fields, grouped by subject in order."""
    field = _kinds(policy.checked.input).get(list_path)
    if field is None or field.type.kind != Kind.LIST or field.type.item is None or \
            field.type.item.kind != Kind.RECORD:
        raise TableError(f"--input-list {list_path}: not a list of records of policy {policy.id!r}")
    keys = [name for name, _ in policy.subject]
    item_fields = dict(field.type.item.fields)
    item_types = {name: t for name, t in item_fields.items()}
    suffix = Path(path).suffix.lower()
    if suffix == ".xlsx":
        book = _open(path)
        try:
            chosen = sheet or book.sheetnames[0]
            rows = list(book[chosen].iter_rows(values_only=True, max_row=MAX_LIST_ROWS + 1))
        finally:
            book.close()
    elif suffix == ".csv":
        text = Path(path).read_text(encoding="utf-8-sig")
        first = text.split("\n", 1)[0]
        chosen_dialect = dialect_of(first, dialect)
        rows = list(csv.reader(io.StringIO(text), delimiter=";" if chosen_dialect == "excel-id" else ","))
        dialect = chosen_dialect
    else:
        raise TableError(f"--input-list {path}: a list is read from .csv or .xlsx")
    if not rows:
        return {}
    header = [str(h).strip() if h is not None else "" for h in rows[0]]
    missing = [k for k in keys if k not in named(header, policy)]
    if missing:
        raise TableError(f"--input-list {path}: the first row must name {', '.join(keys)} (to join each item to its "
                         f"record); it lacks {', '.join(missing)}")
    columns = named(header, policy)
    out: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    made = Rows(keys, policy, dialect or "excel")
    for number, cells in enumerate(rows[1:], start=2):
        cells = list(cells)
        if not any(c not in (None, "") for c in cells):
            continue
        by_name = dict(zip(columns, cells, strict=False))
        _, who, _ = made.item(number, [by_name.get(k) for k in keys])
        if isinstance(who, ErrorInfo):
            raise TableError(f"--input-list {path} line {number}: {who.message}")
        item_made = _ItemRow(item_types, dialect or "excel", policy)
        item = item_made.read(number, {name: by_name.get(name) for name in item_fields if name in by_name}, path)
        out.setdefault(tuple(who.get(k) for k in keys), []).append(item)
    return out


class _ItemRow:
    def __init__(self, fields: Mapping[str, Any], dialect: str, policy: CompiledPolicy) -> None:
        self.fields, self.dialect, self.policy = fields, dialect, policy

    def read(self, number: int, cells: Mapping[str, Any], path: str) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for name, cell in cells.items():
            if cell in (None, ""):
                continue
            kind = self.fields[name].kind
            if kind == Kind.ENUM and isinstance(cell, str):
                item[name] = chosen(self.policy, self.fields[name], cell)
            elif isinstance(cell, float):
                item[name] = Decimal(repr(cell))
            elif isinstance(cell, str) and kind in NUMERIC:
                text = cell.strip()
                number_value: Decimal | int | None = id_number(text) if self.dialect == "excel-id" else (
                    int(text) if _INTEGER.fullmatch(text) else Decimal(text) if _DECIMAL.fullmatch(text) else None)
                if number_value is None:
                    raise TableError(f"--input-list {path} line {number}: {name}: {cell[:40]!r} is not a number")
                item[name] = number_value
            else:
                item[name] = cell
        return item


def joined(items: Iterator[Item], policy: CompiledPolicy, lists: Mapping[str, dict[tuple[Any, ...], list[Any]]]
           ) -> Iterator[Item]:
    """Each record with its lists from `lists` (by list path, then by subject) put in."""
    keys = [name for name, _ in policy.subject]
    for line, record, rest in items:
        if isinstance(record, dict):
            who = tuple(record.get(k) for k in keys)
            for list_path, by_subject in lists.items():
                here = record
                *parents, last = list_path.split(".")
                for part in parents:
                    here = here.setdefault(part, {}) if isinstance(here.get(part, {}), dict) else {}
                here[last] = by_subject.get(who, [])
        yield line, record, rest


# ---- the form to fill (`kinerja template`) ----

SAYS = {
    "id": {"records": "Pegawai", "help": "Petunjuk", "lists": "_daftar", "column": "Kolom", "field": "Nama medan",
           "kind": "Jenis", "required": "Wajib", "allowed": "Isian yang diterima", "doc": "Keterangan",
           "yes": "ya", "no": "tidak", "intro": "Isi satu baris per pegawai di lembar {records}; daftar "
           "({lists}) diisi di lembar masing-masing, satu baris per butir, diawali {subject}. Pilihan dari "
           "daftar memakai label; angka dengan koma desimal boleh. Lalu: kinerja eval {policy} -i "
           "formulir.xlsx -o keputusan.xlsx", "list_cell": "beberapa nilai dipisah ';'", "between": "dari {low} "
           "sampai {high}", "from": "paling kecil {low}", "to": "paling besar {high}", "date": "tanggal"},
    "en": {"records": "Employees", "help": "Instructions", "lists": "_lists", "column": "Column", "field": "Field",
           "kind": "Type", "required": "Required", "allowed": "Accepted", "doc": "About", "yes": "yes", "no": "no",
           "intro": "Fill one row per employee on the sheet {records}; lists ({lists}) go on their own sheets, one "
           "row per item, starting with {subject}. Choices take their labels. Then: kinerja eval {policy} -i "
           "form.xlsx -o decisions.xlsx", "list_cell": "several values separated by ';'", "between": "from {low} "
           "to {high}", "from": "at least {low}", "to": "at most {high}", "date": "a date"},
}


def form_columns(policy: CompiledPolicy) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """The record's columns of a form (each field by its dotted name, records opened up, subject
    first), and the lists of records that get sheets of their own."""
    columns: list[tuple[str, Any]] = []
    lists: list[tuple[str, Any]] = []

    def walk(fields: Sequence[tuple[str, Any]], prefix: str) -> None:
        for name, field in fields:
            path = prefix + name
            kind = field.type
            if kind.kind == Kind.RECORD:
                walk(field.fields, path + ".")
            elif kind.kind == Kind.LIST and kind.item is not None and kind.item.kind == Kind.RECORD:
                if all(t.kind != Kind.LIST for _, t in kind.item.fields):
                    lists.append((path, field))
            else:
                columns.append((path, field))

    walk(policy.checked.input.fields, "")
    first = [name for name, _ in policy.subject]
    columns.sort(key=lambda c: first.index(c[0]) if c[0] in first else len(first))
    return columns, lists


def write_form(path: str, policy: CompiledPolicy, lang: str = "id") -> None:
    """An input workbook for `policy`: labelled columns in order with their drop-downs and ranges,
    a sheet per list of records, and the instructions."""
    try:
        from openpyxl import Workbook
    except ImportError:
        raise TableError("to write XLSX, install openpyxl: pip install 'kinerja-rules[formats]'") from None
    form = _Form(Workbook(), policy, lang)
    form.save(path)


class _Form:
    """The workbook `write_form` makes, sheet by sheet."""

    def __init__(self, book: Any, policy: CompiledPolicy, lang: str) -> None:
        from openpyxl.styles import Font

        self.book, self.policy = book, policy
        self.lang = lang if lang in SAYS else "id"
        self.says = says = SAYS[self.lang]
        self.bold = Font(bold=True)
        columns, lists = form_columns(policy)
        self.choices = book.create_sheet(says["lists"])
        self.choices.sheet_state = "hidden"
        self.chosen = 0
        self.help: list[list[Any]] = []
        subject = [(name, f) for name, f in columns if name in {n for n, _ in policy.subject}]
        book.active.title = says["records"]
        self.sheet(book.active, says["records"], columns)
        for list_path, field in lists:
            fallback = [(name, _FieldLike(t)) for name, t in field.type.item.fields]
            self.sheet(book.create_sheet(list_path[:31]), list_path, subject + _item_fields(field, fallback))
        guide = book.create_sheet(says["help"])  # last: `eval` reads the first sheet, the records
        guide.append([says["intro"].format(records=says["records"], lists=", ".join(p for p, _ in lists) or "-",
                                           subject=", ".join(self.header(n) for n, _ in subject), policy=policy.id)])
        guide.append([])
        guide.append([says["records"], says["column"], says["field"], says["kind"], says["required"],
                      says["allowed"], says["doc"]])
        for cell in guide[3]:
            cell.font = self.bold
        for row in self.help:
            guide.append(row)
        for letter, width in zip("ABCDEFG", (16, 24, 30, 22, 8, 40, 50), strict=True):
            guide.column_dimensions[letter].width = width
        book.active = 0

    def header(self, field_path: str) -> str:
        from kinerja_rules.people import words

        return words(self.policy, f"input:{field_path}", self.lang) or field_path

    def sheet(self, sheet: Any, title: str, fields: list[tuple[str, Any]]) -> None:
        from openpyxl.utils import get_column_letter

        for i, (name, field) in enumerate(fields, start=1):
            cell = sheet.cell(row=1, column=i, value=self.header(name))
            cell.font = self.bold
            letter = get_column_letter(i)
            sheet.column_dimensions[letter].width = max(12, min(40, len(self.header(name)) + 4))
            rule, allowed = self.rule(field)
            if rule is not None:
                rule.add(f"{letter}2:{letter}5000")
                sheet.add_data_validation(rule)
            kind = field.type
            required = not kind.optional and field.spec.default is msgspec.UNSET and kind.kind != Kind.LIST
            self.help.append([title, self.header(name), name, str(kind), self.says["yes" if required else "no"],
                              allowed, field.spec.doc or ""])
        sheet.freeze_panes = "A2"

    def rule(self, field: Any) -> tuple[Any, str]:
        """The cell check of a field (a drop-down of labels, a range, a date) and its words."""
        from openpyxl.utils import get_column_letter, quote_sheetname
        from openpyxl.worksheet.datavalidation import DataValidation

        from kinerja_rules.people import words

        kind, says = field.type, self.says
        item = kind.item if kind.kind == Kind.LIST and kind.item is not None else kind
        rule, allowed = None, ""
        if item.kind == Kind.ENUM:
            labels = [words(self.policy, f"value:{item.name}.{v}", self.lang) or v for v in item.values]
            self.chosen += 1
            column = get_column_letter(self.chosen)
            for row, label in enumerate(labels, start=1):
                self.choices.cell(row=row, column=self.chosen, value=label)
            allowed = ", ".join(labels)
            if kind.kind != Kind.LIST:
                rule = DataValidation(type="list", allow_blank=True, showErrorMessage=True, formula1=(
                    f"{quote_sheetname(self.choices.title)}!${column}$1:${column}${len(labels)}"))
        elif item.kind in NUMERIC and (field.spec.min is not None or field.spec.max is not None):
            low, high = field.spec.min, field.spec.max
            both = low is not None and high is not None
            rule = DataValidation(type="whole" if item.kind == Kind.INTEGER else "decimal", allow_blank=True,
                                  showErrorMessage=True,
                                  operator="between" if both else "greaterThanOrEqual" if low is not None else
                                  "lessThanOrEqual", formula1=str(low if low is not None else high),
                                  formula2=str(high) if both else None)
            allowed = (says["between"] if both else says["from"] if low is not None else says["to"]).format(
                low=low, high=high)
        elif item.kind == Kind.DATE:
            rule = DataValidation(type="date", allow_blank=True, showErrorMessage=True, operator="greaterThan",
                                  formula1="1")
            allowed = says["date"]
        if kind.kind == Kind.LIST:
            allowed = f"{says['list_cell']}: {allowed}" if allowed else says["list_cell"]
        return rule, allowed

    def save(self, path: str) -> None:
        try:
            self.book.save(path)
        except OSError as exc:
            raise TableError(f"cannot write {path}: {exc.strerror}") from None


class _FieldLike:
    """An item field of a list of records, where the schema gives no Field of its own."""

    def __init__(self, kind: Any) -> None:
        from kinerja_rules.documents import FieldSpec

        self.type = kind
        self.spec = FieldSpec(type=str(kind))
        self.fields: tuple[Any, ...] = ()


def _item_fields(field: Any, fallback: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The fields of a list's items, with their constraints when the schema resolved them."""
    items = getattr(field, "items", None)
    if items is not None and items.fields:
        return list(items.fields)
    return fallback
