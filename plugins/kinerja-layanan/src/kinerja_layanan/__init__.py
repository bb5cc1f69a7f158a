"""Service-volume indicators for front-line units (a Puskesmas, a service counter).

Achievement is scored the way the national baseline scores an SKP indicator:
r = realisasi / target ("naik", higher is better) or 2 - realisasi / target ("turun"),
clamped to [0, 1.2], as a percentage rounded half-up to 2 places.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from kinerja_rules import FunctionSpec, hookimpl

__version__ = "1.0.0"
_Q = Decimal("0.01")
_CAP = Decimal("1.2")


def _direction(arah: str) -> None:
    if arah not in ("naik", "turun"):
        raise ValueError(f"arah must be 'naik' or 'turun', not {arah!r}")


def capaian_layanan(realisasi: Decimal, target: Decimal, arah: str) -> Decimal:
    """Achievement of a service target, in percent (0-120)."""
    _direction(arah)
    if target <= 0:
        raise ValueError(f"target must be > 0, not {target}")
    ratio = Decimal(realisasi) / target
    if arah == "turun":
        ratio = 2 - ratio
    return (100 * min(max(ratio, Decimal(0)), _CAP)).quantize(_Q, ROUND_HALF_UP)


def pertumbuhan_layanan(sekarang: Decimal, sebelumnya: Decimal, arah: str) -> Decimal:
    """Growth against the previous period in percent; for 'turun' a fall counts as growth."""
    _direction(arah)
    if sebelumnya <= 0:
        raise ValueError(f"the previous period must be > 0 to measure growth, not {sebelumnya}")
    growth = (Decimal(sekarang) - sebelumnya) / sebelumnya * 100
    return (-growth if arah == "turun" else growth).quantize(_Q, ROUND_HALF_UP)


@hookimpl
def kinerja_register_functions() -> list[FunctionSpec]:
    return [
        FunctionSpec(name="capaian_layanan", params=(("realisasi", "decimal"), ("target", "decimal"), ("arah", "text")),
                     returns="decimal", impl=capaian_layanan,
                     description="Achievement of a service target in percent, clamped to 0-120 (arah: naik|turun)."),
        FunctionSpec(name="pertumbuhan_layanan",
                     params=(("sekarang", "decimal"), ("sebelumnya", "decimal"), ("arah", "text")),
                     returns="decimal", impl=pertumbuhan_layanan,
                     description="Growth against the previous period in percent (for turun, a fall is growth)."),
    ]
