"""The calibration meeting's workbook: each unit's members ranked, with the predikat the engine
gave them (predikat_awal) and the usulan, and two columns the leader fills (predikat_ditetapkan,
alasan); then the filled workbook read back into the group data as each unit's penetapan.

The workbook is for people (in Indonesian); a hidden sheet carries what reading it back needs
(the policy, its predikat values, and which column names the unit), so the command that reads it
needs nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinerja_rules import calibration
from kinerja_rules.policy import CompiledPolicy

SHEET = "Kalibrasi"
ABOUT = "_kinerja"
FIRST = ["peringkat", "nip", "predikat_awal", "usulan", "alasan_usulan", "predikat_ditetapkan", "alasan"]
MAX_ROWS = 200_000
MAX_BYTES = 64 * 1024 * 1024
MAX_ABOUT_ROWS = 1_000  # the hidden sheet: a few rows, and a label row per predikat
MAX_ABOUT_COLUMNS = 1_000


class SheetError(ValueError):
    """The workbook cannot be read back: each problem names its sheet, row and column."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


HEADINGS = {
    "id": {"peringkat": "Peringkat", "nip": "NIP", "predikat_awal": "Predikat awal", "usulan": "Usulan",
           "alasan_usulan": "Alasan usulan", "predikat_ditetapkan": "Predikat ditetapkan", "alasan": "Alasan"},
    "en": {"peringkat": "Rank", "nip": "NIP", "predikat_awal": "Initial rating", "usulan": "Proposal",
           "alasan_usulan": "Reason for the proposal", "predikat_ditetapkan": "Rating fixed", "alasan": "Reason"},
}
SAYS: dict[str, dict[str, Any]] = {
    "id": {"curve": "Kurva", "size": "Jumlah pegawai", "guide": "Petunjuk",
           "violation": "Pelanggaran sebelum penetapan", "choose": "Pilih salah satu predikat dari daftar",
           "none": "Tidak ada pelanggaran.",
           "steps": ["Lembar Kalibrasi memuat setiap pegawai unit, urut dari peringkat terbaik, dengan predikat awal "
                     "dari penilaian dan usulan yang memenuhi kurva distribusi.",
                     "Isi kolom berwarna: Predikat ditetapkan untuk setiap pegawai (pilih dari daftar), dan Alasan "
                     "bila predikat yang ditetapkan berbeda dari usulan.",
                     "Lembar Kurva memuat batas kurva distribusi tiap unit dan pelanggarannya sebelum penetapan.",
                     "Setelah diisi dan ditandatangani, baca kembali dengan: kinerja penetapan FILE --groups "
                     "groups.json --nomor NOMOR --tanggal YYYY-MM-DD --oleh NIP"]},
    "en": {"curve": "Curve", "size": "Employees", "guide": "Instructions",
           "violation": "Violations before the penetapan", "choose": "Choose one rating from the list",
           "none": "No violation.",
           "steps": ["The Kalibrasi sheet lists each member of the unit, best rank first, with the initial rating "
                     "and the proposal that meets the distribution curve.",
                     "Fill the coloured columns: the rating fixed for every member (from the list), and a reason "
                     "where it departs from the proposal.",
                     "The Curve sheet lists each unit's limits and what broke them before the penetapan.",
                     "Once filled and signed, read it back with: kinerja penetapan FILE --groups groups.json "
                     "--nomor NUMBER --tanggal YYYY-MM-DD --oleh NIP"]},
}


def write(path: str | Path, policy: CompiledPolicy, reports: Iterable[Mapping[str, Any]], lang: str = "id") -> int:
    """The workbook of the groups' usulan (each report as a population run gives it, with `usulan`),
    in the style of every workbook for people: labels as headers, predikat by their labels, the
    leader's columns coloured with a drop-down; the curve's limits and violations as sentences; the
    number of members written."""
    from openpyxl import Workbook
    from openpyxl.styles import PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    from kinerja_rules.people import heading, language, moved_sentence, table, value_label, violation_sentence

    lang = language(lang)
    stage = policy.population
    assert stage is not None and stage.quotas, "a calibration workbook is for a policy with a quota"
    category = stage.quotas[0].category
    categories = list(category.values)
    group_names = [text for text, _ in stage.by]
    says, names = SAYS[lang], HEADINGS[lang]

    def label(code: Any) -> str:
        return value_label(policy, category.name, code, lang)

    reports = list(reports)
    groups_shown = [heading(policy, "input", name, lang) for name in group_names]
    rows = []
    for report in reports:
        group = report.get("group") or {}
        where = [_text(group.get(name)) for name in group_names]
        for member in report.get("usulan") or ():
            why = "; ".join(moved_sentence(member.get("rank"), limit, label, lang)
                            for limit in member.get("why_limits") or ())
            rows.append([*where, member["rank"], str(member["member"]), label(member["predikat_awal"]),
                         label(member["usulan"]), why or member.get("why") or None, None, None])
    book = Workbook()
    book.remove(book.active)
    header = [*groups_shown, *(names[name] for name in FIRST)]
    sheet = table(book, SHEET, header, rows, wide=(len(header) - 3, len(header) - 1))
    fill = PatternFill("solid", fgColor="FFF2CC")  # the columns the leader fills
    for number in range(2, len(rows) + 2):
        for column in (len(header) - 1, len(header)):
            sheet.cell(row=number, column=column).fill = fill
    choose = DataValidation(type="list", formula1='"' + ",".join(label(c) for c in categories) + '"',
                            allow_blank=True, showErrorMessage=True, errorTitle=names["predikat_ditetapkan"],
                            error=says["choose"])
    predikat_column = _letter(len(header) - 1)
    choose.add(f"{predikat_column}2:{predikat_column}{max(len(rows) + 1, 2)}")
    sheet.add_data_validation(choose)
    curve = []
    for report in reports:
        group = report.get("group") or {}
        where = [_text(group.get(name)) for name in group_names]
        broken = [violation_sentence(d, label, lang) for d in report.get("violation_details") or ()]
        curve.append([*where, len(report.get("usulan") or ()), " ".join(broken) or says["none"]])
    table(book, says["curve"], [*groups_shown, says["size"], says["violation"]], curve,
          wide=(len(group_names) + 1,))
    guide = book.create_sheet(says["guide"])
    for i, step in enumerate(says["steps"], start=1):
        guide.append([f"{i}.", step])
    guide.column_dimensions["B"].width = 110
    about = book.create_sheet(ABOUT)
    about.append(["policy", policy.id])
    about.append(["predikat", *categories])
    about.append(["groups", *group_names])
    about.append(["data_key", group_names[stage.data_key]])
    about.append(["columns", *group_names, *FIRST])
    about.append(["headers", *header])
    for code in categories:
        about.append(["label", code, *dict.fromkeys((label(code), value_label(policy, category.name, code, "en"),
                                                    value_label(policy, category.name, code, "id")))])
    about.sheet_state = "hidden"
    book.save(path)
    return len(rows)


@dataclass
class _Unit:
    rows: list[int] = field(default_factory=list)
    predikat: dict[str, str] = field(default_factory=dict)
    alasan: dict[str, str] = field(default_factory=dict)
    usulan: dict[str, str] = field(default_factory=dict)


@dataclass
class _Layout:
    """Where the workbook's columns are (by the names it was written with) and how its predikat read."""

    where: dict[str, int]  # each column's name -> its index in the sheet
    shown: dict[str, str]  # each column's name -> its header as the sheet shows it
    categories: list[str]
    codes: dict[str, str]  # each predikat as it may be written (code or label, folded) -> its code

    def code(self, text: str) -> str | None:
        return self.codes.get(" ".join(text.split()).casefold())

    def cell(self, name: str, row: int) -> str:
        return f"{SHEET}!{_letter(self.where[name] + 1)}{row} ({self.shown[name]})"


def read_penetapan(path: str | Path, groups: Mapping[str, Any], nomor: str, tanggal: dt.date,
                   oleh: str) -> dict[str, Any]:
    """The group data with each unit of the filled workbook given its penetapan; SheetError naming
    each cell that is missing or wrong (every member's predikat_ditetapkan, and an alasan for each
    departure from the usulan). The curve itself is judged when the run is decided with it."""
    book = _open(path)
    problems: list[str] = []
    if SHEET not in book.sheetnames or ABOUT not in book.sheetnames:
        raise SheetError([f"{path}: not a calibration workbook (it needs the sheets {SHEET} and {ABOUT}, "
                          "as `kinerja eval --calibration` writes them)"])
    layout, key_name = _layout(book)
    units: dict[str, _Unit] = {}
    for number, row in enumerate(book[SHEET].iter_rows(min_row=2, values_only=True), start=2):
        if number > MAX_ROWS + 1:
            problems.append(f"{SHEET}: more than {MAX_ROWS} rows")
            break
        if any(v not in (None, "") for v in row):
            problems += _read_row({name: row[i] if i < len(row) else None for name, i in layout.where.items()},
                                  layout, number, key_name, units)
        if len(problems) >= 100:
            break
    absent = [unit for unit in units if unit not in groups]
    problems += [f"{SHEET}!{units[unit].rows[0]}: unit {unit!r} has no data in the groups file" for unit in absent]
    if problems:
        raise SheetError(problems[:100])
    out = {unit: dict(data) for unit, data in groups.items()}
    for unit, found in units.items():
        out[unit]["penetapan"] = {"nomor": nomor, "tanggal": tanggal.isoformat(), "ditetapkan_oleh": oleh,
                                  "predikat": found.predikat, "alasan": found.alasan}
    return out


def _layout(book: Any) -> tuple[_Layout, str]:
    """The columns and predikat of the workbook, from its hidden sheet: the names the columns were
    written with (a workbook written before labels: its headers are those names)."""
    about: dict[str, list[Any]] = {}
    labels: list[list[str]] = []
    for row in book[ABOUT].iter_rows(values_only=True, max_row=MAX_ABOUT_ROWS, max_col=MAX_ABOUT_COLUMNS):
        if not row or not row[0]:
            continue
        values = [_text(v)[:200] for v in row[1:] if v is not None]
        if row[0] == "label" and values:
            labels.append(values)
        else:
            about[str(row[0])] = values
    categories = about.get("predikat", [])
    key_name = (about.get("data_key") or [""])[0]
    header = [_text(v) for v in next(book[SHEET].iter_rows(values_only=True, max_row=1), ())]
    at = {text: i for i, text in reversed(list(enumerate(header)))}
    names, shown = about.get("columns"), about.get("headers")
    if names and shown and len(names) == len(shown):
        where = {name: at[text] for name, text in zip(names, shown, strict=True) if text in at}
        headers = dict(zip(names, shown, strict=True))
    else:
        where = {name: i for name, i in at.items()}
        headers = {name: name for name in where}
    lacking = [headers.get(name, name) for name in (key_name, *FIRST) if name not in where]
    if lacking or not categories:
        raise SheetError([f"{SHEET}!1: the header lacks {', '.join(lacking) or 'nothing'}; "
                          "write the workbook with `kinerja eval --calibration`"])
    codes = {c.casefold(): c for c in categories}
    for code, *written in labels:
        if code in categories:
            codes |= {" ".join(text.split()).casefold(): code for text in written}
    return _Layout(where=where, shown=headers, categories=categories, codes=codes), key_name


def _read_row(cells: Mapping[str, Any], layout: _Layout, number: int, key_name: str,
              units: dict[str, _Unit]) -> list[str]:
    """One member's row into its unit; what is missing or wrong in it, by cell."""
    unit, nip = _text(cells[key_name]), _text(cells["nip"])
    if not unit or not nip:
        return [f"{layout.cell(key_name if not unit else 'nip', number)}: empty"]
    found = units.setdefault(unit, _Unit())
    found.rows.append(number)
    usulan = _text(cells["usulan"])
    found.usulan[nip] = layout.code(usulan) or usulan
    written, why = _text(cells["predikat_ditetapkan"]), _text(cells["alasan"])
    fixed = layout.code(written)
    problems = []
    if not written:
        problems.append(f"{layout.cell('predikat_ditetapkan', number)}: empty; fix the predikat of {nip}")
    elif fixed is None:
        problems.append(f"{layout.cell('predikat_ditetapkan', number)}: {written[:40]!r} is not a predikat; "
                        f"one of {', '.join(layout.categories)}")
    else:
        found.predikat[nip] = fixed
        if fixed != found.usulan[nip] and not why:
            problems.append(f"{layout.cell('alasan', number)}: {nip} departs from the usulan "
                            f"({found.usulan[nip]} -> {fixed}) and needs an alasan")
    if len(why) > calibration.MAX_TEXT:
        problems.append(f"{layout.cell('alasan', number)}: longer than {calibration.MAX_TEXT} characters")
    elif why:
        found.alasan[nip] = why
    return problems


def _open(path: str | Path) -> Any:
    try:
        from openpyxl import load_workbook
    except ImportError:
        raise SheetError(["to read XLSX, install openpyxl: pip install 'kinerja-rules[formats]'"]) from None
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise SheetError([f"{path}: cannot read ({exc.strerror})"]) from None
    if size > MAX_BYTES:
        raise SheetError([f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MiB"])
    try:
        return load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a file that is not a workbook
        raise SheetError([f"{path}: not a readable XLSX workbook ({type(exc).__name__})"]) from None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _letter(column: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(column))

