"""Exact arithmetic: repeating quotients stay rationals until an explicit rounding."""

from __future__ import annotations

import copy
import datetime as dt
import decimal
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinerja_rules import Engine, PolicyError, check_paths
from kinerja_rules.functions import FunctionSpec
from kinerja_rules.numbers import ROUNDING_MODES, Rational, mean, rational, round_to
from tests.conftest import BASE_RECORD

MODES = sorted(ROUNDING_MODES)


def test_rationals_are_exact_and_convert_from_decimals_exactly() -> None:
    assert rational(Decimal("1.75")) == Rational(7, 4) and rational(3) == Rational(3)
    assert mean([Decimal("0.5"), Decimal(1), Decimal(2)]) == Rational(7, 6)
    assert mean([Rational(1, 3), Rational(2, 3)]) == Rational(1, 2)
    with pytest.raises(ValueError, match="empty"):
        mean([])


@settings(max_examples=400, deadline=None)
@given(st.integers(-10**9, 10**9), st.integers(1, 10**6), st.integers(-3, 6), st.sampled_from(MODES))
def test_rounding_a_rational_agrees_with_decimal_rounding_of_its_exact_value(num: int, den: int, places: int,
                                                                              mode: str) -> None:
    value = Rational(num, den)
    # 120 digits decide every mode as the exact value would: a repeating value never ties, and its
    # digits past the cut are never all zero
    precise = decimal.Context(prec=120).divide(Decimal(num), Decimal(den))
    expected = precise.quantize(Decimal(1).scaleb(-places), ROUNDING_MODES[mode], decimal.Context(prec=200))
    assert round_to(value, places, mode) == expected, (value, places, mode)


def test_ties_round_by_mode() -> None:
    half = Rational(5, 2)
    assert [round_to(half, 0, m) for m in ("half_up", "half_even", "half_down", "down", "up", "floor",
                                            "ceiling")] == [3, 2, 2, 2, 3, 2, 3]
    assert [round_to(-half, 0, m) for m in ("half_up", "half_even", "half_down", "down", "up", "floor",
                                             "ceiling")] == [-3, -2, -2, -2, -3, -3, -2]


# ---- the engine against a Fraction-based computation ---------------------------------

ENGINE = Engine.from_paths([Path(__file__).resolve().parent.parent / "policies" / "nasional.yaml"])
REPEATING = [3, 6, 7, 9, 11, 12, 13, 14, 21, 72, 82, 58]


def _half_up(value: Fraction, places: int = 2) -> Decimal:
    scaled = value * 10**places
    whole = int(scaled)  # towards zero
    if abs(scaled - whole) * 2 >= 1:
        whole += 1 if scaled > 0 else -1
    return Decimal(whole).scaleb(-places)


def _capaian(indikator: list[dict[str, Any]]) -> Decimal:
    weighted = Fraction(0)
    for i in indikator:
        ratio = Fraction(i["realisasi"]) / Fraction(i["target"])
        score = ratio if i["arah"] == "naik" else 2 - ratio
        weighted += Fraction(i["bobot"]) * min(max(score, Fraction(0)), Fraction(6, 5))
    return _half_up(100 * weighted / sum(Fraction(i["bobot"]) for i in indikator))


def _perilaku(atasan: Decimal, rekan: list[Decimal]) -> Decimal:
    if not rekan:
        return _half_up(Fraction(atasan))
    mean = sum(map(Fraction, rekan)) / len(rekan)
    return _half_up(Fraction(7, 10) * Fraction(atasan) + Fraction(3, 10) * mean)


indicators = st.lists(st.fixed_dictionaries({
    "nama": st.just("i"),
    "target": st.sampled_from(REPEATING).map(Decimal),
    "realisasi": st.integers(0, 250).map(Decimal),
    "arah": st.sampled_from(["naik", "turun"]),
    "bobot": st.integers(1, 5).map(Decimal),
}), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(indicators, st.integers(0, 10000).map(lambda v: Decimal(v) / 100),
       st.lists(st.integers(0, 100).map(Decimal), max_size=6))
def test_engine_equals_a_fraction_computation(indikator: list[dict[str, Any]], atasan: Decimal,
                                              rekan: list[Decimal]) -> None:
    record = copy.deepcopy(BASE_RECORD)
    record["skp"]["indikator"] = indikator
    record["perilaku"] = {"atasan": atasan, "rekan_kerja": rekan}
    outputs = ENGINE.evaluate("nasional", record).outputs
    assert outputs["evaluasi"]["capaian_skp"] == _capaian(indikator)
    assert outputs["evaluasi"]["skor_perilaku"] == _perilaku(atasan, rekan)


def test_the_half_cent_case_of_the_issue() -> None:
    record = copy.deepcopy(BASE_RECORD)
    record["skp"]["indikator"] = [
        {"nama": "a", "target": 82, "realisasi": 158, "bobot": 2},
        {"nama": "b", "target": 58, "realisasi": 107, "bobot": 3},
        {"nama": "c", "target": 72, "realisasi": 102, "arah": "turun", "bobot": 3}]
    assert ENGINE.evaluate("nasional", record).outputs["evaluasi"]["capaian_skp"] == Decimal("96.88")


def test_a_repeating_value_in_a_trace_is_shown_with_its_exact_fraction() -> None:
    record = copy.deepcopy(BASE_RECORD)
    record["perilaku"] = {"atasan": 80, "rekan_kerja": [70, 80, 81]}
    decision = ENGINE.evaluate("nasional", record, explain=True)
    assert decision.outputs["evaluasi"]["skor_perilaku"] == Decimal("79.10")
    traced = decision.trace["definitions"]["skor_perilaku"]
    assert traced["value"] == Decimal("79.10") and "exact" not in traced


# ---- the decimal context belongs to the engine ----------------------------------------

def test_a_callers_decimal_context_does_not_change_a_decision() -> None:
    record = copy.deepcopy(BASE_RECORD)
    record["perilaku"] = {"atasan": Decimal("89.995"), "rekan_kerja": [Decimal("70.3"), 81]}
    record["skp"]["indikator"] = [{"nama": "a", "target": 7, "realisasi": 5}]
    expected = ENGINE.evaluate("nasional", record).outputs
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = decimal.ROUND_DOWN
        ctx.traps[decimal.Inexact] = True
        assert ENGINE.evaluate("nasional", record).outputs == expected
        assert decimal.getcontext().prec == 3  # and the caller's context is given back


CONTEXT_POLICY = """
policy: konteks
effective: 2024-01-01
inputs: {a: decimal, b: decimal}
definitions:
  dari_plugin: {type: decimal, expr: "ubah_konteks(a)"}
outputs:
  hasil: {type: decimal, expr: "round(a * b + dari_plugin, 6, half_up)"}
"""


def _meddling(value: Decimal) -> Decimal:
    result = value / 3  # in the context the plugin is given
    decimal.getcontext().prec = 2  # then a careless plugin changes it
    decimal.getcontext().rounding = decimal.ROUND_DOWN
    return result


def test_a_plugin_that_changes_the_context_changes_nothing_else(tmp_path: Path) -> None:
    from kinerja_rules.engine import Registry

    (tmp_path / "konteks.yaml").write_text(CONTEXT_POLICY)
    spec = FunctionSpec(name="ubah_konteks", params=(("x", "decimal"),), returns="decimal", impl=_meddling,
                        description="changes the decimal context", plugin="peusak", version="1")
    builtins = Registry.builtins()
    registry = Registry(functions={**builtins.functions, "ubah_konteks": spec}, plugins={"builtins": "", "peusak": "1"})
    engine = Engine.from_paths([tmp_path], registry)
    record = {"a": Decimal("1.234567"), "b": Decimal("7.654321")}
    first = engine.evaluate("konteks", record, as_of=dt.date(2024, 1, 1)).outputs["hasil"]
    second = engine.evaluate("konteks", record, as_of=dt.date(2024, 1, 1)).outputs["hasil"]
    # the plugin got a fresh prec 28 both times, and the product after it is exact, not cut to 2 digits
    third = Decimal("1.234567") / 3  # prec 28, as the plugin computed it
    assert first == second == (Decimal("9.449772114007") + third).quantize(Decimal("0.000001"), decimal.ROUND_HALF_UP)
    assert decimal.getcontext().prec == 28


# ---- what the checker demands ------------------------------------------------------------

def _check(tmp_path: Path, outputs: str, definitions: str = "") -> list[str]:
    text = ("policy: cek\neffective: 2024-01-01\ninputs: {a: integer, b: integer, xs: {type: list of decimal, "
            "default: []}}\n" + (f"definitions:\n{definitions}" if definitions else "") + f"outputs:\n{outputs}")
    (tmp_path / "cek.yaml").write_text(text)
    return [f"{d.code} {d.message}" for d in check_paths([tmp_path]).errors]


@pytest.mark.parametrize("expr", ["a / b", "mean(xs)", "if a > 0 then a / 3 else 0", "[x / 7 for x in xs]",
                                  "min(a / b, 1)", "-(a / 3) + 1", "sum(x / 3 for x in xs)"])
def test_an_unrounded_output_that_may_repeat_is_a_check_error(tmp_path: Path, expr: str) -> None:
    kind = "list of decimal" if expr.startswith("[") else "decimal"
    errors = _check(tmp_path, f'  x: {{type: {kind}, expr: "{expr}"}}\n')
    assert len(errors) == 1 and errors[0].startswith("E132 output 'x' may be a repeating decimal"), errors


@pytest.mark.parametrize("expr", ["round(a / b, 2, half_up)", "a / 100", "a / 4", "a / 2.5", "a / 80%",
                                  "floor(mean(xs))", "round(sum(x / 3 for x in xs), 4, down)"])
def test_a_rounded_or_finite_quotient_passes(tmp_path: Path, expr: str) -> None:
    assert _check(tmp_path, f'  x: {{type: decimal, expr: "{expr}"}}\n') == []


def test_a_definition_passes_its_repeating_mark_on(tmp_path: Path) -> None:
    errors = _check(tmp_path, '  x: {type: decimal, expr: "rasio * 2"}\n',
                    '  rasio: {type: decimal, expr: "a / b"}\n')
    assert len(errors) == 1 and "E132" in errors[0]


def test_a_repeating_argument_to_a_plugin_is_a_check_error(tmp_path: Path) -> None:
    from kinerja_rules.engine import Registry

    text = ("policy: cek\neffective: 2024-01-01\ninputs: {a: integer}\noutputs:\n"
            "  x: {type: decimal, expr: \"pakai(a / 3)\"}\n")
    (tmp_path / "cek.yaml").write_text(text)
    spec = FunctionSpec(name="pakai", params=(("x", "decimal"),), returns="decimal", impl=lambda x: x,
                        description="", plugin="contoh", version="1")
    builtins = Registry.builtins()
    registry = Registry(functions={**builtins.functions, "pakai": spec})
    with pytest.raises(PolicyError) as err:
        Engine.from_paths([tmp_path], registry)
    assert [d.code for d in err.value.diagnostics] == ["E121"]
