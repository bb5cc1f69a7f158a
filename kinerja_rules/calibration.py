"""The leader's penetapan of a unit's predikat: read from the group data, and judged against the
engine's usulan and the curve.

The kurva distribusi is guidance for a unit's leader, who fixes the final predikat in a signed
penetapan and answers for any departure. A penetapan is input, so a decision stays a pure
function of what was sent: `groups[unit].penetapan = {nomor, tanggal, ditetapkan_oleh,
predikat: {nip: predikat}, alasan: {nip: text}}`. Nothing here knows the policy language.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from kinerja_rules.errors import FieldError
from kinerja_rules.population import Limit, Member, QuotaResult, ordered

MAX_MEMBERS = 100_000
MAX_TEXT = 2_000
MAX_KEY = 64
FIELDS = ("nomor", "tanggal", "ditetapkan_oleh", "predikat", "alasan")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


@dataclass(frozen=True)
class Penetapan:
    """A unit's penetapan predikat kinerja: who fixed it, when, each member's predikat and why."""

    nomor: str
    tanggal: dt.date
    ditetapkan_oleh: str
    predikat: dict[str, str]
    alasan: dict[str, str]

    def shown(self) -> dict[str, Any]:
        return {"nomor": self.nomor, "tanggal": self.tanggal, "ditetapkan_oleh": self.ditetapkan_oleh}


def quoted(key: Any) -> str:
    """A key as a path writes it: `groups["Dinas Kesehatan"]`."""
    return msgspec.json.encode(str(key)).decode()


def read(raw: Any, path: str, categories: Sequence[str]) -> tuple[Penetapan | None, list[FieldError]]:
    """A penetapan as sent, checked field by field (each bounded before it is read); `path` names it."""
    if not isinstance(raw, dict):
        return None, [FieldError(path=path, message="must be an object: {nomor, tanggal, ditetapkan_oleh, "
                                                    "predikat, alasan}")]
    errors = [FieldError(path=f"{path}.{key}"[:200], message="is not a field of a penetapan "
                                                             f"({', '.join(FIELDS)})")
              for key in list(raw)[:5] if key not in FIELDS]
    nomor = _text(raw.get("nomor"), f"{path}.nomor", errors, 200)
    oleh = _text(raw.get("ditetapkan_oleh"), f"{path}.ditetapkan_oleh", errors, 200)
    tanggal = _date(raw.get("tanggal"), f"{path}.tanggal", errors)
    predikat = _map(raw.get("predikat"), f"{path}.predikat", errors, required=True)
    alasan = _map(raw.get("alasan", {}), f"{path}.alasan", errors, required=False)
    for key, value in predikat.items():
        if value not in categories:
            shown = value[:40] if isinstance(value, str) else type(value).__name__
            errors.append(FieldError(path=f"{path}.predikat[{quoted(key)}]", message=(
                f"{shown!r} is not a predikat; one of {', '.join(categories)}")))
    for key, value in alasan.items():
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            errors.append(FieldError(path=f"{path}.alasan[{quoted(key)}]", message=(
                f"must be a text of 1 to {MAX_TEXT} characters")))
    if errors or nomor is None or oleh is None or tanggal is None:
        return None, errors[:100]
    return Penetapan(nomor=nomor, tanggal=tanggal, ditetapkan_oleh=oleh, predikat=predikat,
                     alasan={k: v.strip() for k, v in alasan.items()}), []


def _text(value: Any, path: str, errors: list[FieldError], limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        errors.append(FieldError(path=path, message=f"must be a text of 1 to {limit} characters"))
        return None
    return value.strip()


def _date(value: Any, path: str, errors: list[FieldError]) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    errors.append(FieldError(path=path, message="must be a date YYYY-MM-DD"))
    return None


def _map(value: Any, path: str, errors: list[FieldError], required: bool) -> dict[str, Any]:
    if not isinstance(value, dict) or required and not value:
        errors.append(FieldError(path=path, message="must be an object of each member's nip to its value"
                                                    + (", not empty" if required else "")))
        return {}
    if len(value) > MAX_MEMBERS:
        errors.append(FieldError(path=path, message=f"holds more than {MAX_MEMBERS} members"))
        return {}
    long = next((k for k in value if len(str(k)) > MAX_KEY), None)
    if long is not None:
        errors.append(FieldError(path=path, message=f"a member's key is longer than {MAX_KEY} characters"))
        return {}
    return {str(k): v for k, v in value.items()}


def pointed_at(final: Mapping[str, str], ranks: Mapping[str, int], limits: Sequence[Limit], size: int,
               rounding: str) -> dict[str, str]:
    """The members a result that breaks the curve answers for, with the limit: past a maximum, the
    lowest-ranked of those inside it; short of a minimum, the lowest-ranked of those outside it."""
    out: dict[str, str] = {}
    best_first = ordered(Member(key=k, category=c, order=(ranks[k],)) for k, c in final.items())
    for limit in limits:
        inside = [m.key for m in best_first if m.category in limit.categories]
        needed = limit.head_count(size, rounding)
        if limit.bound == "max" and len(inside) > needed:
            for key in inside[needed:]:
                out.setdefault(key, limit.describe(size, rounding))
        elif limit.bound == "min" and len(inside) < needed:
            outside = [m.key for m in best_first if m.category not in limit.categories]
            for key in outside[len(outside) - (needed - len(inside)):]:
                out.setdefault(key, limit.describe(size, rounding))
    return out


@dataclass(frozen=True)
class Judged:
    """A penetapan judged: each member's final predikat, its reason when it has one, and what is wrong."""

    final: dict[str, str]
    reasons: dict[str, str]
    departures: list[str]  # members whose predikat differs from the usulan
    problems: list[FieldError]


def judge(penetapan: Penetapan, path: str, members: Sequence[str], usulan: Mapping[str, str],
          outcome: QuotaResult, limits: Sequence[Limit], rounding: str) -> Judged:
    """Every member of the unit covered and no one else; every departure from the usulan, and every
    member a result that breaks the curve answers for, given an alasan."""
    problems: list[FieldError] = []
    given = penetapan.predikat
    missing = [k for k in members if k not in given]
    if missing:
        problems.append(FieldError(path=f"{path}.predikat", message=(
            f"does not fix the predikat of {_listed(missing)}, member{'s' if len(missing) > 1 else ''} of the unit "
            "in this run")))
    known = set(members)
    strangers = [k for k in given if k not in known]
    if strangers:
        problems.append(FieldError(path=f"{path}.predikat", message=(
            f"{_listed(strangers)} {'are' if len(strangers) > 1 else 'is'} not a member of the unit in this run")))
    odd = [k for k in penetapan.alasan if k not in known]
    if odd:
        problems.append(FieldError(path=f"{path}.alasan", message=(
            f"{_listed(odd)} {'are' if len(odd) > 1 else 'is'} not a member of the unit in this run")))
    final = {k: given.get(k, usulan[k]) for k in members}
    departures = [k for k in members if k in given and given[k] != usulan[k]]
    unexplained = [k for k in departures if k not in penetapan.alasan]
    if unexplained:
        problems.append(FieldError(path=f"{path}.alasan", message="a departure from the usulan needs an alasan: "
                                   + "; ".join(f"{k} ({usulan[k]} -> {final[k]})" for k in unexplained[:20])
                                   + (f"; and {len(unexplained) - 20} more" if len(unexplained) > 20 else "")))
    breaking = {k: why for k, why in pointed_at(final, outcome.ranks, limits, len(members), rounding).items()
                if k not in penetapan.alasan and k not in unexplained}
    if breaking and not missing:
        problems.append(FieldError(path=f"{path}.alasan", message="the predikat fixed break the curve and need an "
                                   "alasan: " + "; ".join(f"{k} ({final[k]}; {why})"
                                                         for k, why in list(breaking.items())[:20])))
    return Judged(final=final, reasons=dict(penetapan.alasan), departures=departures, problems=problems)


def _listed(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:20])
    return shown + (f" and {len(keys) - 20} more" if len(keys) > 20 else "")
