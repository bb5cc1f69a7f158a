"""An example plugin in a folder of its own: `kinerja plugins --plugins examples/plugins`.

It adds one function, `persen_hadir(hadir, hari_kerja)`: attendance as a share of working days.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from kinerja_rules import FunctionSpec, hookimpl

__version__ = "0.1.0"


def persen_hadir(hadir: int, hari_kerja: int) -> Decimal:
    """Days present over working days, as a fraction rounded half-up to 4 places (0 with no working days)."""
    if hari_kerja <= 0:
        return Decimal(0)
    return (Decimal(min(hadir, hari_kerja)) / hari_kerja).quantize(Decimal("0.0001"), ROUND_HALF_UP)


@hookimpl
def kinerja_register_functions() -> list[FunctionSpec]:
    return [FunctionSpec(name="persen_hadir", params=(("hadir", "integer"), ("hari_kerja", "integer")),
                         returns="percent", impl=persen_hadir,
                         description="Days present over working days (0 with no working days).")]
