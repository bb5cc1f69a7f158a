"""Complaint-handling indicators (response time, share answered in time, still open).

Each complaint has `diterima` (received) and `direspons` (first response) timestamps,
and optionally `selesai` (resolved), all ISO 8601 with a UTC offset.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from kinerja_rules import FunctionSpec, hookimpl

__version__ = "1.0.0"
_Q = Decimal("0.01")
COMPLAINT = "list of record {diterima: text, direspons: text, selesai: optional text}"


def _moment(text: Any, what: str, index: int) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"complaint {index}: {what} {text!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError(f"complaint {index}: {what} {text!r} needs a UTC offset (e.g. +08:00)")
    return moment


def _hours(daftar: list[dict[str, Any]]) -> list[Decimal]:
    hours = []
    for i, item in enumerate(daftar, start=1):
        received = _moment(item.get("diterima"), "diterima", i)
        answered = _moment(item.get("direspons"), "direspons", i)
        if answered < received:
            raise ValueError(f"complaint {i}: the response ({answered.isoformat()}) is before the complaint "
                             f"({received.isoformat()})")
        if item.get("selesai") is not None and _moment(item["selesai"], "selesai", i) < received:
            raise ValueError(f"complaint {i}: it is resolved before it was received")
        hours.append(Decimal(int((answered - received).total_seconds())) / 3600)
    return hours


def persen_respons_tepat_waktu(daftar: list[dict[str, Any]], batas_jam: Decimal) -> Decimal:
    """Share of complaints first answered within `batas_jam` hours, in percent (100 with no complaints)."""
    hours = _hours(daftar)
    if not hours:
        return Decimal("100.00")
    on_time = sum(1 for h in hours if h <= batas_jam)
    return (Decimal(100) * on_time / len(hours)).quantize(_Q, ROUND_HALF_UP)


def median_jam_respons(daftar: list[dict[str, Any]]) -> Decimal | None:
    """The median first-response time in hours (null with no complaints)."""
    hours = sorted(_hours(daftar))
    if not hours:
        return None
    mid = len(hours) // 2
    value = hours[mid] if len(hours) % 2 else (hours[mid - 1] + hours[mid]) / 2
    return value.quantize(_Q, ROUND_HALF_UP)


def pengaduan_terbuka(daftar: list[dict[str, Any]]) -> int:
    """How many complaints are not resolved yet."""
    _hours(daftar)
    return sum(1 for item in daftar if item.get("selesai") is None)


@hookimpl
def kinerja_register_functions() -> list[FunctionSpec]:
    return [
        FunctionSpec(name="persen_respons_tepat_waktu", params=(("daftar", COMPLAINT), ("batas_jam", "decimal")),
                     returns="decimal", impl=persen_respons_tepat_waktu,
                     description="Percent of complaints first answered within the given hours."),
        FunctionSpec(name="median_jam_respons", params=(("daftar", COMPLAINT),), returns="optional decimal",
                     impl=median_jam_respons, description="Median first-response time in hours."),
        FunctionSpec(name="pengaduan_terbuka", params=(("daftar", COMPLAINT),), returns="integer",
                     impl=pengaduan_terbuka, description="Number of complaints not yet resolved."),
    ]
