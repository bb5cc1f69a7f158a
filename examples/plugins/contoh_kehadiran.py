"""An example plugin in a folder of its own: `kinerja plugins --plugins examples/plugins`.

It adds a function, `persen_hadir(hadir, hari_kerja)`, and an indicator, `tingkat_kehadiran`,
read from the national record's `presensi`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from kinerja_rules import FunctionSpec, IndicatorSpec, hookimpl

__version__ = "0.1.0"
_Q = Decimal("0.0001")


def persen_hadir(hadir: int, hari_kerja: int) -> Decimal:
    """Days present over working days, as a fraction rounded half-up to 4 places (0 with no working days)."""
    if hari_kerja <= 0:
        return Decimal(0)
    return (Decimal(min(hadir, hari_kerja)) / hari_kerja).quantize(_Q, ROUND_HALF_UP)


def tingkat_kehadiran(presensi: dict[str, Any]) -> Decimal:
    """The share of working days without an unexcused absence."""
    hari = presensi["hari_kerja"]
    return persen_hadir(hari - presensi["tanpa_keterangan_hari"], hari)


@hookimpl
def kinerja_register_functions() -> list[FunctionSpec]:
    return [FunctionSpec(name="persen_hadir", params=(("hadir", "integer"), ("hari_kerja", "integer")),
                         returns="percent", impl=persen_hadir,
                         description="Days present over working days (0 with no working days).")]


@hookimpl
def kinerja_register_indicators() -> list[IndicatorSpec]:
    return [IndicatorSpec(name="tingkat_kehadiran", source="presensi",
                          source_type="record {hari_kerja: integer, tanpa_keterangan_hari: integer}",
                          returns="percent", impl=tingkat_kehadiran,
                          description="Share of working days without an unexcused absence.")]
