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

SHEET = "Kalibrasi"
ABOUT = "_kinerja"
FIRST = ["peringkat", "nip", "predikat_awal", "usulan", "alasan_usulan", "predikat_ditetapkan", "alasan"]
MAX_ROWS = 200_000
MAX_BYTES = 64 * 1024 * 1024


class SheetError(ValueError):
    """The workbook cannot be read back: each problem names its sheet, row and column."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def write(path: str | Path, policy_id: str, categories: Sequence[str], group_names: Sequence[str], data_key: int,
          reports: Iterable[Mapping[str, Any]]) -> int:
    """The workbook of the groups' usulan (each report as a population run gives it, with `usulan`);
    the number of members written."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    header = [*group_names, *FIRST]
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    fill = PatternFill("solid", fgColor="FFF2CC")  # the columns the leader fills
    rows = 0
    for report in reports:
        group = report.get("group") or {}
        for member in report.get("usulan") or ():
            rows += 1
            sheet.append([*(_text(group.get(name)) for name in group_names), member["rank"], str(member["member"]),
                          member["predikat_awal"], member["usulan"], member.get("why", ""), None, None])
            for column in (len(header) - 1, len(header)):
                sheet.cell(row=rows + 1, column=column).fill = fill
    choose = DataValidation(type="list", formula1='"' + ",".join(categories) + '"', allow_blank=True,
                            showErrorMessage=True, errorTitle="Predikat",
                            error="Pilih salah satu predikat dari daftar")
    predikat_column = _letter(len(header) - 1)
    choose.add(f"{predikat_column}2:{predikat_column}{max(rows + 1, 2)}")
    sheet.add_data_validation(choose)
    for i, name in enumerate(header, start=1):
        sheet.column_dimensions[_letter(i)].width = max(12, min(60, len(name) + 4))
    sheet.column_dimensions[_letter(len(header))].width = 60
    for row in sheet.iter_rows(min_row=2, min_col=len(header) - 2, max_col=len(header) - 2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True)
    sheet.freeze_panes = "A2"
    about = book.create_sheet(ABOUT)
    about.append(["policy", policy_id])
    about.append(["predikat", *categories])
    about.append(["groups", *group_names])
    about.append(["data_key", group_names[data_key]])
    about.sheet_state = "hidden"
    book.save(path)
    return rows


@dataclass
class _Unit:
    rows: list[int] = field(default_factory=list)
    predikat: dict[str, str] = field(default_factory=dict)
    alasan: dict[str, str] = field(default_factory=dict)
    usulan: dict[str, str] = field(default_factory=dict)


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
    about = {row[0]: [v for v in row[1:] if v is not None]
             for row in book[ABOUT].iter_rows(values_only=True, max_row=10) if row and row[0]}
    categories = [str(v) for v in about.get("predikat", [])]
    key_name = str((about.get("data_key") or [""])[0])
    sheet = book[SHEET]
    header = [str(v) if v is not None else "" for v in next(sheet.iter_rows(values_only=True, max_row=1), ())]
    where = {name: i for i, name in enumerate(header)}
    lacking = [name for name in (key_name, *FIRST) if name not in where]
    if lacking or not categories:
        raise SheetError([f"{SHEET}!1: the header lacks {', '.join(lacking) or 'nothing'}; "
                          "write the workbook with `kinerja eval --calibration`"])
    units: dict[str, _Unit] = {}
    for number, row in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
        if number > MAX_ROWS + 1:
            problems.append(f"{SHEET}: more than {MAX_ROWS} rows")
            break
        if any(v not in (None, "") for v in row):
            problems += _read_row({name: row[i] if i < len(row) else None for name, i in where.items()}, where,
                                  number, key_name, categories, units)
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


def _read_row(cells: Mapping[str, Any], where: Mapping[str, int], number: int, key_name: str,
              categories: Sequence[str], units: dict[str, _Unit]) -> list[str]:
    """One member's row into its unit; what is missing or wrong in it, by cell."""
    unit, nip = _text(cells[key_name]), _text(cells["nip"])
    if not unit or not nip:
        return [f"{_cell(where, key_name if not unit else 'nip', number)}: empty"]
    found = units.setdefault(unit, _Unit())
    found.rows.append(number)
    found.usulan[nip] = _text(cells["usulan"])
    fixed, why = _text(cells["predikat_ditetapkan"]), _text(cells["alasan"])
    problems = []
    if not fixed:
        problems.append(f"{_cell(where, 'predikat_ditetapkan', number)}: empty; fix the predikat of {nip}")
    elif fixed not in categories:
        problems.append(f"{_cell(where, 'predikat_ditetapkan', number)}: {fixed[:40]!r} is not a predikat; "
                        f"one of {', '.join(categories)}")
    else:
        found.predikat[nip] = fixed
        if fixed != found.usulan[nip] and not why:
            problems.append(f"{_cell(where, 'alasan', number)}: {nip} departs from the usulan "
                            f"({found.usulan[nip]} -> {fixed}) and needs an alasan")
    if len(why) > calibration.MAX_TEXT:
        problems.append(f"{_cell(where, 'alasan', number)}: longer than {calibration.MAX_TEXT} characters")
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


def _cell(where: Mapping[str, int], name: str, row: int) -> str:
    return f"{SHEET}!{_letter(where[name] + 1)}{row} ({name})"

