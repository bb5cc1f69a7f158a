"""What the project writes for people (workbooks, reports): the policy's words in a language, values
as people read them, a sheet in one style, and the kurva distribusi's limits as sentences.

Indonesian unless asked otherwise; English beside it. Nothing here reads or writes a file: the
workbook modules do, with these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.types import Kind, Type

LANGUAGES = ("id", "en")
FORMATS = {Kind.MONEY: "#,##0", Kind.PERCENT: "0.##%", Kind.DECIMAL: "#,##0.00", Kind.INTEGER: "0",
           Kind.DATE: "yyyy-mm-dd"}
YES = {"id": ("Ya", "Tidak"), "en": ("Yes", "No")}
MAX_TEXT = 32_000  # a cell holds 32,767 characters


def language(lang: str | None) -> str:
    """The language of a document for people: the one asked for, else Indonesian."""
    return lang if lang in LANGUAGES else "id"


def words(policy: CompiledPolicy, key: str, lang: str) -> str | None:
    """A label of the policy in `lang`, else the other language; None when neither is given."""
    given = policy.checked.words.get(key, {}).get("label", {})
    return given.get(lang) or next((given[other] for other in LANGUAGES if given.get(other)), None)


def heading(policy: CompiledPolicy, kind: str, name: str, lang: str) -> str:
    """A column's header: the policy's label of the input or output, else its last name spelled out."""
    return words(policy, f"{kind}:{name}", lang) or name.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def value_label(policy: CompiledPolicy, type_name: str | None, value: Any, lang: str) -> str:
    """An enumeration value as people read it: its label, else the code with spaces."""
    named = words(policy, f"value:{type_name}.{value}", lang) if type_name else None
    return named or str(value).replace("_", " ")


def shown(policy: CompiledPolicy, value: Any, kind: Type | None, lang: str) -> Any:
    """A value as a cell people read: an enumeration's label, a list or record as words, a number as
    a number (its cell format shows it as rupiah or percent)."""
    if value is None:
        return None
    base = kind.kind if kind is not None else None
    if isinstance(value, bool):
        return YES[lang][0 if value else 1]
    if base == Kind.ENUM and kind is not None:
        return value_label(policy, kind.name, value, lang)
    if isinstance(value, list):
        item = kind.item if kind is not None else None
        return "; ".join(str(shown(policy, v, item, lang)) for v in value)
    if isinstance(value, dict):
        fields = dict(kind.fields) if kind is not None and kind.kind == Kind.RECORD else {}
        parts = []
        for name, v in value.items():
            text = shown(policy, v, fields.get(name), lang)
            if fields.get(name) is not None and fields[name].kind == Kind.MONEY and isinstance(v, int):
                text = rupiah(v, lang)
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


def rupiah(amount: int, lang: str) -> str:
    return "Rp " + f"{amount:,}".replace(",", "." if lang == "id" else ",")


def whom(policy: CompiledPolicy, fields: list[tuple[str, Type | None]], item: Mapping[str, Any],
         lang: str) -> list[Any]:
    """The cells of a decision's (or error's) subject, as people read them."""
    given = item.get("subject")
    subject: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    return [shown(policy, subject.get(name), kind, lang) for name, kind in fields]


# ---- a sheet in the one style ----------------------------------------------------------

def table(book: Any, title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]],
          formats: Sequence[str | None] | None = None, wide: Sequence[int] = ()) -> Any:
    """A sheet of `book` (openpyxl, not write-only) in the style of every workbook for people: the
    header bold and frozen with a filter over it, each column as wide as its header and values
    (capped; the columns in `wide`, by index, wrap long text), numbers in their format, and text
    that is always text (never a formula)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    sheet = book.create_sheet(title)
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    widths = [len(h) for h in headers]
    formats = list(formats or [None] * len(headers))
    count = 0
    for count, row in enumerate(rows, start=1):
        for i, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, str):
                value = ILLEGAL_CHARACTERS_RE.sub("", value)[:MAX_TEXT]
            cell = sheet.cell(row=count + 1, column=i + 1, value=value)
            if isinstance(value, str):
                cell.data_type = "s"
                if i in wide:
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
            elif formats[i] is not None and isinstance(value, (int, Decimal, float, dt.date)):
                cell.number_format = formats[i]
            widths[i] = max(widths[i], len(str(value)) if not isinstance(value, int) else len(f"{value:,}"))
    for i, width in enumerate(widths):
        sheet.column_dimensions[get_column_letter(i + 1)].width = (
            60 if i in wide else max(10, min(48, width + 3)))
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(max(len(headers), 1))}{count + 1}"
    return sheet


def about(book: Any, title: str, rows: Iterable[tuple[str, Any]]) -> Any:
    """The closing sheet of a workbook: what it is, from which policy, when."""
    from openpyxl.styles import Font

    sheet = book.create_sheet(title)
    for key, value in rows:
        sheet.append([key, value])
        sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
    sheet.column_dimensions["A"].width = 28
    sheet.column_dimensions["B"].width = 80
    return sheet


# ---- the kurva distribusi's limits as sentences -----------------------------------------

_SAY = {
    "id": {"max": "paling banyak", "min": "paling sedikit", "or": "atau", "person": "orang",
           "floor": "dibulatkan ke bawah", "ceiling": "dibulatkan ke atas", "half_up": "dibulatkan",
           "share": "{bound} {percent} dari {size} orang ({rounding}: {needed} orang)",
           "count": "{bound} {needed} orang",
           "limit": "{categories}: {rule}",
           "broken": "{categories}: {rule}, tetapi ada {actual} orang.",
           "seat": "Jabatan {seat} tidak terisi: tidak ada lagi calon yang memenuhi syarat.",
           "moved": "Peringkat {rank} dari {size}; {limit}"},
    "en": {"max": "at most", "min": "at least", "or": "or", "person": "people",
           "floor": "rounded down", "ceiling": "rounded up", "half_up": "rounded",
           "share": "{bound} {percent} of {size} people ({rounding}: {needed})",
           "count": "{bound} {needed} people",
           "limit": "{categories}: {rule}",
           "broken": "{categories}: {rule}, but there are {actual}.",
           "seat": "Seat {seat} is left empty: no eligible candidate is left.",
           "moved": "Rank {rank} of {size}; {limit}"},
}


def _percent(value: Any, lang: str) -> str:
    text = format(Decimal(str(value)).normalize(), "f")
    return (text.replace(".", ",") if lang == "id" else text) + " %"


def _limit(detail: Mapping[str, Any], label: Any, say: Mapping[str, str], lang: str) -> dict[str, Any]:
    bound = say.get(str(detail.get("bound")), str(detail.get("bound")))
    if "percent" in detail:
        rule = say["share"].format(bound=bound, percent=_percent(detail["percent"], lang), size=detail.get("size"),
                                   rounding=say.get(str(detail.get("rounding")), detail.get("rounding")),
                                   needed=detail.get("needed"))
    else:
        rule = say["count"].format(bound=bound, needed=detail.get("needed"))
    return {"categories": f" {say['or']} ".join(label(c) for c in detail.get("categories") or ()), "rule": rule}


def limit_sentence(detail: Mapping[str, Any], label: Any, lang: str) -> str:
    """A limit (`Limit.detail`) as people read it: "Sangat Baik: paling banyak 20 % dari 12 orang
    (dibulatkan ke bawah: 2 orang)". `label` names a category as people read it."""
    say = _SAY[language(lang)]
    return say["limit"].format(**_limit(detail, label, say, lang))


def violation_sentence(detail: Mapping[str, Any], label: Any, lang: str) -> str:
    """A limit not met (`GroupReport.violation_details`), as one sentence."""
    say = _SAY[language(lang)]
    if "seat" in detail:
        return say["seat"].format(seat=detail["seat"])
    return say["broken"].format(**_limit(detail, label, say, lang), actual=detail.get("actual"))


def moved_sentence(rank: Any, limit: Mapping[str, Any] | None, label: Any, lang: str, fallback: str = "") -> str:
    """Why a member moved (or is proposed to): its rank and the limit that moved it."""
    if not limit:
        return fallback
    say = _SAY[language(lang)]
    return say["moved"].format(rank=rank, size=limit.get("size"), limit=limit_sentence(limit, label, lang))
