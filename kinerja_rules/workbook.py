"""Decisions as a workbook an HR office uses: whom each row is for first, the policy's labels as
headers (Indonesian unless asked otherwise), enumeration labels instead of codes, rupiah and
percent formats, a frozen header with a filter, sensible widths, and the records that could not
be decided on a sheet of their own. Written as it goes (openpyxl's write-only mode).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import IO, Any

from kinerja_rules.formats import _DECODER, OUTPUTS, Sink, TableError, csv_cell, format_of
from kinerja_rules.formats import sink as formats_sink
from kinerja_rules.jsontext import value_at as _at
from kinerja_rules.people import FORMATS, LANGUAGES, heading, shown, whom
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.types import Kind, Type

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
MAX_ROWS = 1_048_575  # a sheet's rows after its header


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





REPORT_SAYS = {
    "id": {"summary": "Ringkasan", "violations": "Pelanggaran kurva", "moved": "Perpindahan", "usulan": "Usulan",
           "seats": "Penempatan", "about": "Tentang", "size": "Jumlah pegawai", "mode": "Cara",
           "before": "Sebelum", "after": "Sesudah", "broken": "Jumlah pelanggaran", "penetapan": "Penetapan",
           "quota": "Kuota", "violation": "Pelanggaran", "member": "NIP", "rank": "Peringkat",
           "from": "Predikat semula", "to": "Predikat menjadi", "why": "Alasan", "awal": "Predikat awal",
           "seat": "Jabatan", "score": "Skor", "error": "Galat", "none": "Semua kelompok memenuhi kurva distribusi.",
           "report": "laporkan (tidak ada yang dipindah)", "enforce": "terapkan (yang melebihi dipindah)",
           "propose": "usulkan (untuk penetapan pimpinan)", "policy": "Kebijakan", "digest": "Sidik (digest)",
           "made": "Dibuat", "groups": "Jumlah kelompok", "limits": "Parameter kurva"},
    "en": {"summary": "Summary", "violations": "Curve violations", "moved": "Moves", "usulan": "Proposal",
           "seats": "Placement", "about": "About", "size": "Employees", "mode": "Mode", "before": "Before",
           "after": "After", "broken": "Violations", "penetapan": "Penetapan", "quota": "Quota",
           "violation": "Violation", "member": "NIP", "rank": "Rank", "from": "Rating before", "to": "Rating after",
           "why": "Reason", "awal": "Initial rating", "seat": "Seat", "score": "Score", "error": "Error",
           "none": "Every group meets the distribution curve.", "report": "report (nobody moved)",
           "enforce": "enforce (the excess moved down)", "propose": "propose (for the leader's penetapan)",
           "policy": "Policy", "digest": "Digest", "made": "Made", "groups": "Groups", "limits": "Curve parameter"},
}


def report_workbook(path: str, policy: CompiledPolicy, reports: Sequence[Mapping[str, Any]], lang: str = "id") -> None:
    """`kinerja eval --groups … --report laporan.xlsx`: the group reports as a workbook for people, a
    row per group with its counts before and after the curve, each violation as a sentence, who
    moved (or is proposed to) and why, the seats, and what the workbook is."""
    from openpyxl import Workbook

    from kinerja_rules.people import about as about_sheet
    from kinerja_rules.people import language, moved_sentence, table, value_label, violation_sentence

    lang = language(lang)
    say = REPORT_SAYS[lang]
    stage = policy.population
    quotas = list(stage.quotas) if stage is not None else []
    by = [text for text, _ in stage.by] if stage is not None else []
    group_heads = [heading(policy, "input", name, lang) for name in by]
    category = quotas[0].category if quotas else None
    values = list(category.values) if category is not None else []

    def label_of(kind: Any) -> Any:
        return lambda code: value_label(policy, kind.name if kind is not None else None, code, lang)

    label = label_of(category)
    by_quota = {q.name: label_of(q.category) for q in quotas}

    def where(report: Mapping[str, Any]) -> list[Any]:
        group = report.get("group") or {}
        return [shown(policy, group.get(name), None, lang) for name in by]

    def parts(report: Mapping[str, Any]) -> list[tuple[str | None, Mapping[str, Any]]]:
        """Each quota's report of a group, by name (one quota: the report itself)."""
        named = report.get("quotas")
        return [(p.get("quota"), p) for p in named] if named else [(None, report)]

    groups = [r for r in reports if r.get("group") is not None]
    seats = [r for r in reports if r.get("group") is None]
    book = Workbook()
    book.remove(book.active)
    summary = []
    for r in groups:
        before, after = r.get("counts_before") or {}, r.get("counts_after") or {}
        penetapan = r.get("penetapan") or {}
        summary.append([*where(r), r.get("size"), say.get(str(r.get("mode")), r.get("mode")),
                        *(before.get(v, 0) for v in values), *(after.get(v, 0) for v in values),
                        len(r.get("violations") or ()), penetapan.get("nomor"), r.get("error")])
    table(book, say["summary"], [*group_heads, say["size"], say["mode"],
                                 *(f"{say['before']}: {label(v)}" for v in values),
                                 *(f"{say['after']}: {label(v)}" for v in values), say["broken"], say["penetapan"],
                                 say["error"]], summary)
    several = len(quotas) > 1
    broken = [[*where(r), *([name] if several else []),
               violation_sentence(detail, by_quota.get(name or "", label), lang)]
              for r in reports for name, part in parts(r) for detail in part.get("violation_details") or ()]
    table(book, say["violations"], [*group_heads, *([say["quota"]] if several else []), say["violation"]],
          broken or [[*([None] * (len(by) + several)), say["none"]]], wide=(len(by) + several,))
    moved = [[*where(r), *([name] if several else []), str(m.get("member")), m.get("rank"),
              by_quota.get(name or "", label)(m.get("before")), by_quota.get(name or "", label)(m.get("after")),
              moved_sentence(m.get("rank"), m.get("limit"), by_quota.get(name or "", label), lang, m.get("reason", ""))]
             for r in groups for name, part in parts(r) for m in part.get("moved") or ()]
    if moved:
        table(book, say["moved"], [*group_heads, *([say["quota"]] if several else []), say["member"], say["rank"],
                                   say["from"], say["to"], say["why"]], moved, wide=(len(by) + several + 4,))
    usulan = [[*where(r), u.get("rank"), str(u.get("member")), label(u.get("predikat_awal")), label(u.get("usulan")),
               "; ".join(moved_sentence(u.get("rank"), limit, label, lang) for limit in u.get("why_limits") or ())]
              for r in groups for u in r.get("usulan") or ()]
    if usulan:
        table(book, say["usulan"], [*group_heads, say["rank"], say["member"], say["awal"], say["usulan"],
                                    say["why"]], usulan, wide=(len(by) + 4,))
    held = [[row.get("seat"), *((str(row["member"].get("member")), row.get("score")) if row.get("member")
                                else (None, None))] for r in seats for row in r.get("assignments") or ()]
    if held:
        table(book, say["seats"], [say["seat"], say["member"], say["score"]], held)
    limits = "; ".join(f"{q.name}: {q.limits}" for q in quotas)
    about_sheet(book, say["about"], [
        (say["policy"], f"{policy.title} ({policy.id} {policy.version})"), (say["digest"], policy.digest),
        (say["made"], dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")), (say["groups"], len(groups)),
        (say["limits"], limits)])
    try:
        book.save(path)
    except OSError as exc:
        raise TableError(f"cannot write {path}: {exc.strerror}") from None
