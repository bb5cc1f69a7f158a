"""Decisions as a workbook an HR office uses: whom each row is for first, the policy's labels as
headers (Indonesian unless asked otherwise), enumeration labels instead of codes, rupiah and
percent formats, a frozen header with a filter, sensible widths, and the records that could not
be decided on a sheet of their own. Written as it goes (openpyxl's write-only mode).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any

from kinerja_rules.formats import _DECODER, OUTPUTS, Sink, TableError, csv_cell, format_of
from kinerja_rules.formats import sink as formats_sink
from kinerja_rules.jsontext import value_at as _at
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.types import Kind, Type

LANGUAGES = ("id", "en")
SAYS = {
    "id": {"decisions": "Keputusan", "errors": "Tidak diputuskan", "about": "Tentang", "line": "Baris",
           "kind": "Jenis", "message": "Pesan", "as_of": "Berlaku per", "policy": "Kebijakan", "yes": "Ya",
           "no": "Tidak", "digest": "Sidik (digest)", "made": "Dibuat", "count": "Jumlah keputusan",
           "failed": "Jumlah tidak diputuskan", "record": "rekaman tidak sah", "evaluation": "gagal dihitung",
           "input": "tidak terbaca", "internal": "galat internal"},
    "en": {"decisions": "Decisions", "errors": "Not decided", "about": "About", "line": "Line", "kind": "Kind",
           "message": "Message", "as_of": "As of", "policy": "Policy", "yes": "Yes", "no": "No",
           "digest": "Digest", "made": "Made", "count": "Decisions", "failed": "Not decided",
           "record": "invalid record", "evaluation": "could not be computed", "input": "unreadable",
           "internal": "internal error"},
}
FORMATS = {Kind.MONEY: "#,##0", Kind.PERCENT: "0.##%", Kind.DECIMAL: "#,##0.00", Kind.INTEGER: "0",
           Kind.DATE: "yyyy-mm-dd"}
MAX_ROWS = 1_048_575  # a sheet's rows after its header


def words(policy: CompiledPolicy, key: str, lang: str) -> str | None:
    """A label of the policy in `lang`, else the other language; None when neither is given."""
    given = policy.checked.words.get(key, {}).get("label", {})
    return given.get(lang) or next((given[other] for other in LANGUAGES if given.get(other)), None)


def heading(policy: CompiledPolicy, kind: str, name: str, lang: str) -> str:
    return words(policy, f"{kind}:{name}", lang) or name.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def shown(policy: CompiledPolicy, value: Any, kind: Type | None, lang: str) -> Any:
    """A value as a cell people read: an enumeration's label, a list or record as words, a number as
    a number (its cell format shows it as rupiah or percent)."""
    if value is None:
        return None
    base = kind.kind if kind is not None else None
    if isinstance(value, bool):
        return SAYS[lang]["yes" if value else "no"]
    if base == Kind.ENUM and kind is not None:
        named = words(policy, f"value:{kind.name}.{value}", lang) if kind.name else None
        return named or str(value).replace("_", " ")
    if isinstance(value, list):
        item = kind.item if kind is not None else None
        return "; ".join(str(shown(policy, v, item, lang)) for v in value)
    if isinstance(value, dict):
        fields = dict(kind.fields) if kind is not None and kind.kind == Kind.RECORD else {}
        parts = []
        for name, v in value.items():
            text = shown(policy, v, fields.get(name), lang)
            if fields.get(name) is not None and fields[name].kind == Kind.MONEY and isinstance(v, int):
                text = "Rp " + f"{v:,}".replace(",", "." if lang == "id" else ",")
            parts.append(f"{name.replace('_', ' ')}: {text}")
        return ", ".join(parts)
    if base == Kind.DATE and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, (int, Decimal, float)):
        return value
    return str(value)


def whom(policy: CompiledPolicy, fields: list[tuple[str, Type | None]], item: Mapping[str, Any],
         lang: str) -> list[Any]:
    """The cells of a decision's (or error's) subject, as people read them."""
    given = item.get("subject")
    subject: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    return [shown(policy, subject.get(name), kind, lang) for name, kind in fields]


class PeopleXlsx(Sink):
    """`kinerja eval -o keputusan.xlsx`: the decisions workbook an HR office uses."""

    def __init__(self, path: str, policy: CompiledPolicy, lang: str = "id") -> None:
        try:
            from openpyxl import Workbook
            from openpyxl.cell import WriteOnlyCell
            from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
            from openpyxl.styles import Font
        except ImportError:
            raise TableError("to write XLSX, install openpyxl: pip install 'kinerja-rules[formats]'") from None
        self.path, self.policy = path, policy
        self.lang = lang if lang in LANGUAGES else "id"
        self.says = SAYS[self.lang]
        self._cell, self._illegal, self._bold = WriteOnlyCell, ILLEGAL_CHARACTERS_RE, Font(bold=True)
        outputs = policy.checked.outputs
        types = dict(policy.checked.input.type.fields)
        self.subject = [(name, types.get(name)) for name, _ in policy.subject]
        self.outputs = [(name, o.type) for name, o in outputs.items()]
        self.headers = [*(heading(policy, "input", n, self.lang) for n, _ in self.subject),
                        *(heading(policy, "output", n, self.lang) for n, _ in self.outputs),
                        self.says["as_of"], self.says["policy"]]
        self.formats = [*(FORMATS.get(t.kind) if t is not None else None for _, t in self.subject),
                        *(FORMATS.get(t.kind) if t.kind != Kind.LIST else None for _, t in self.outputs),
                        FORMATS[Kind.DATE], None]
        self.book = Workbook(write_only=True)
        self.count = self.failed = 0
        self.decided = self._sheet(self.says["decisions"], self.headers, self.formats)
        self.errors = self._sheet(self.says["errors"], [
            *(heading(policy, "input", n, self.lang) for n, _ in self.subject), self.says["line"], self.says["kind"],
            self.says["message"]], [None] * (len(self.subject) + 3))
        self.rows = 0

    def _sheet(self, title: str, headers: list[str], formats: list[str | None]) -> Any:
        """A sheet with its header bold and frozen, a filter over it, and each column as wide as its
        header says (a rupiah column as wide as a large amount)."""
        from openpyxl.utils import get_column_letter

        sheet = self.book.create_sheet(title)
        sheet.freeze_panes = "A2"
        for i, (header, number_format) in enumerate(zip(headers, formats, strict=True)):
            width = max(12 if number_format is not None else 10, min(48, len(header) + 4))
            sheet.column_dimensions[get_column_letter(i + 1)].width = width
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{MAX_ROWS + 1}"
        cells = []
        for header in headers:
            cell = self._cell(sheet, value=header)
            cell.font = self._bold
            cells.append(cell)
        sheet.append(cells)
        return sheet

    def _value(self, sheet: Any, value: Any, number_format: str | None) -> Any:
        if isinstance(value, str):
            cell = self._cell(sheet, value=self._illegal.sub("", value))
            cell.data_type = "s"  # text, even one that starts with '=': never a formula
            return cell
        if number_format is not None and isinstance(value, (int, Decimal, float, dt.date)):
            cell = self._cell(sheet, value=value)
            cell.number_format = number_format
            return cell
        return value

    def write(self, lines: bytes) -> None:
        for line in lines.splitlines():
            item = _DECODER.decode(line)
            if not isinstance(item, Mapping):
                continue
            who = whom(self.policy, self.subject, item, self.lang)
            if "error" in item:
                self.failed += 1
                error = item["error"] if isinstance(item["error"], Mapping) else {}
                said = "; ".join(f"{f.get('path')}: {f.get('message')}" for f in error.get("fields") or []
                                 if isinstance(f, Mapping))
                kind = str(error.get("kind", ""))
                row = [*who, error.get("line"), self.says.get(kind, kind),
                       (str(error.get("message", "")) + (f" ({said})" if said else ""))[:32_000]]
                self.errors.append([self._value(self.errors, v, None) for v in row])
                continue
            if self.count >= MAX_ROWS:
                raise TableError(f"--output {self.path}: more than {MAX_ROWS:,} decisions do not fit one sheet; "
                                 "write .csv or .parquet")
            self.count += 1
            outputs = item.get("outputs") or {}
            values = [*who, *(shown(self.policy, _at(outputs, n), t, self.lang) for n, t in self.outputs),
                      shown(self.policy, item.get("as_of"), Type(kind=Kind.DATE), self.lang),
                      f"{self.policy.id} {self.policy.version}"]
            self.decided.append([self._value(self.decided, v, f)
                                 for v, f in zip(values, self.formats, strict=True)])

    def close(self) -> None:
        about = self.book.create_sheet(self.says["about"])
        for key, value in ((self.says["policy"], f"{self.policy.title} ({self.policy.id} {self.policy.version})"),
                           (self.says["digest"], self.policy.digest),
                           (self.says["made"], dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
                           (self.says["count"], self.count), (self.says["failed"], self.failed)):
            about.append([key, value])
        try:
            self.book.save(self.path)
        except OSError as exc:
            raise TableError(f"cannot write {self.path}: {exc.strerror}") from None


class LabelledCsv(Sink):
    """`kinerja eval -o keputusan.csv --labels`: the decisions as the workbook shows them, as CSV (the
    policy's labels as headers, enumeration labels as values); errors keep their own columns."""

    def __init__(self, file: IO[bytes], policy: CompiledPolicy, lang: str) -> None:
        self.file, self.policy, self.lang = file, policy, lang if lang in LANGUAGES else "id"
        self.text = io.TextIOWrapper(file, encoding="utf-8", newline="")
        self.writer = csv.writer(self.text, lineterminator="\n")
        types = dict(policy.checked.input.type.fields)
        self.subject = [(name, types.get(name)) for name, _ in policy.subject]
        self.outputs = [(name, o.type) for name, o in policy.checked.outputs.items()]
        says = SAYS[self.lang]
        self.writer.writerow([*(heading(policy, "input", n, self.lang) for n, _ in self.subject),
                              *(heading(policy, "output", n, self.lang) for n, _ in self.outputs), says["as_of"],
                              says["kind"], says["message"]])

    def write(self, lines: bytes) -> None:
        for line in lines.splitlines():
            item = _DECODER.decode(line)
            if not isinstance(item, Mapping):
                continue
            row = whom(self.policy, self.subject, item, self.lang)
            error = item.get("error")
            if isinstance(error, Mapping):
                row += [None] * (len(self.outputs) + 1) + [error.get("kind"), error.get("message")]
            else:
                outputs = item.get("outputs") or {}
                row += [shown(self.policy, _at(outputs, n), t, self.lang) for n, t in self.outputs]
                row += [item.get("as_of"), None, None]
            self.writer.writerow([csv_cell(v) for v in row])

    def close(self) -> None:
        self.text.flush()
        self.text.detach()
        self.file.close()


def sink(path: str | None, out: Any, policy: CompiledPolicy, explain: bool, lang: str = "id",
         labels: bool = False) -> Sink:
    """Where `kinerja eval` writes: `formats.sink`; a workbook for people for `.xlsx`; with `labels`,
    a CSV for people."""
    suffix = None if path is None else format_of(path, OUTPUTS, "--output")
    if path is not None and suffix == ".xlsx":
        return PeopleXlsx(path, policy, lang)
    if labels:
        if path is None or suffix != ".csv":
            raise TableError("--labels writes a CSV for people: give --output FILE.csv")
        try:
            return LabelledCsv(open(path, "wb"), policy, lang)
        except OSError as exc:
            raise TableError(f"cannot write {path}: {exc.strerror}") from None
    return formats_sink(path, out, policy, explain)



