"""Random expressions, documents and records never crash the engine: only diagnostics or decisions."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinerja_rules import EvaluationError, PolicyError, RecordError, check_paths
from kinerja_rules.engine import validate_text
from kinerja_rules.parser import ExpressionSyntaxError, parse
from tests.conftest import BASE_RECORD, bundled

ENGINE = bundled()
TOKENS = ["capaian_skp", "pagu", "jabatan.kelas", "skp.indikator", "1", "0", "2.5", "60%", "null", "true",
          "baik", "+", "-", "*", "/", "=", "<", ">=", "and", "or", "not", "(", ")", "[", "]", ",", "if", "then",
          "else", "when", "??", "in", "between", "sum(", "count(", "for", "x", "where", "round(", "half_up",
          "predikat", "matriks_predikat(", ".", '"teks"', "clamp(", "mean("]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14))
def test_random_token_soup_only_gives_syntax_errors(tokens: list[str]) -> None:
    try:
        parse(" ".join(tokens))
    except ExpressionSyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=10))
def test_random_expressions_in_a_policy_check_or_diagnose(tokens: list[str]) -> None:
    expr = " ".join(tokens).replace("'", "")
    text = f"policy: acak\nextends: nasional\ndefinitions:\n  nilai_acak: {{expr: '{expr}'}}\n"
    report = ENGINE.validate_text(text, "acak.yaml")  # the parents as loaded once, not the folder again
    for d in report.errors:
        assert d.span is not None and d.span.file == "acak.yaml", d


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=6),
                         st.sampled_from(["1 +", "x", "integer", "decimal", "[1..2]"]))
yaml_docs = st.recursive(yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["policy", "effective", "inputs", "definitions", "tables", "type", "expr", "rows", "values", "hit",
         "output", "x", "override", "extends"]), inner, max_size=4)), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(yaml_docs)
def test_random_policy_documents_only_give_diagnostics(doc: Any) -> None:
    import json

    text = "policy: zufall\n" + json.dumps({"definitions": doc} if isinstance(doc, dict) else {"x": doc})
    try:
        validate_text(text, "zufall.yaml")
    except PolicyError:  # pragma: no cover - validate_text reports, it does not raise
        raise AssertionError("validate_text must return diagnostics, not raise") from None


values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=5),
                   st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1000, max_value=1000),
                   st.lists(st.integers(-5, 200), max_size=3),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
PATHS = ["nip", "periode", "status", "jabatan", "jabatan.kelas", "jabatan.jenis", "jabatan.jenjang", "skp.indikator",
         "perilaku.atasan", "perilaku.rekan_kerja", "presensi.terlambat_menit", "presensi.tanpa_keterangan_hari",
         "presensi.tanpa_keterangan_tahun", "hukuman_disiplin", "potensi", "potensi.skor", "riwayat_predikat",
         "tahun_dalam_pangkat", "lhkpn_dilaporkan"]


def _set(record: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = record
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), values), max_size=4), st.booleans())
def test_random_records_give_a_decision_or_a_record_error(changes: list[tuple[str, Any]], explain: bool) -> None:
    record = copy.deepcopy(BASE_RECORD)
    for path, value in changes:
        _set(record, path, value)
    try:
        decision = ENGINE.evaluate("nasional", record, explain=explain)
    except RecordError as exc:
        assert exc.errors and all(e.path or e.message for e in exc.errors)
        return
    except EvaluationError as exc:
        assert exc.where
        return
    tpp = decision.outputs["tpp"]
    assert 0 <= tpp["diterima"] <= tpp["pagu"]
    assert tpp["potongan"] == tpp["pagu"] - tpp["diterima"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "target": st.decimals(min_value=Decimal("0.01"), max_value=1000, places=2),
    "realisasi": st.decimals(min_value=0, max_value=2000, places=2),
    "arah": st.sampled_from(["naik", "turun"]),
    "bobot": st.integers(1, 5)}), min_size=1, max_size=5))
def test_capaian_is_always_between_0_and_120(indicators: list[dict[str, Any]]) -> None:
    record = copy.deepcopy(BASE_RECORD)
    record["skp"]["indikator"] = [{"nama": "i", **i} for i in indicators]
    capaian = ENGINE.evaluate("nasional", record).outputs["evaluasi"]["capaian_skp"]
    assert Decimal(0) <= capaian <= Decimal(120)
    assert capaian == capaian.quantize(Decimal("0.01"))


def test_check_of_an_empty_folder_is_clean(tmp_path: Path) -> None:
    assert check_paths([tmp_path]).ok


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), values), max_size=4))
def test_fast_validator_never_accepts_what_the_full_one_rejects(changes: list[tuple[str, Any]]) -> None:
    from kinerja_rules.schema import build_validator

    policy = ENGINE.policy("nasional")
    record = copy.deepcopy(BASE_RECORD)
    for path, value in changes:
        _set(record, path, value)
    errors: list[Any] = []
    full = build_validator(policy.checked.input)(record, "", errors)
    try:
        fast = policy.fast_validator()(copy.deepcopy(record))
    except Exception:
        return  # giving up is always allowed
    assert not errors, errors
    assert fast == full


# ---- table analysis: the sweep agrees with running every row on every sample ----------------

def _cell(value: Any) -> Any:
    from kinerja_rules import nodes as n
    from kinerja_rules.types import Kind

    kind = Kind.NULL if value is None else Kind.TEXT if isinstance(value, str) else Kind.INTEGER
    return n.Literal(pos=(1, 1, 1, 1), value=value, kind=kind)


_numbers = st.integers(-5, 5)
_single_numeric = st.one_of(
    st.builds(lambda op, v: ("cmp", op, v), st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
              st.one_of(_numbers, st.none())),
    st.builds(lambda a, b, lc, hc: ("range", min(a, b), max(a, b), lc, hc), _numbers, _numbers, st.booleans(),
              st.booleans()))
_single_text = st.builds(lambda op, v: ("cmp", op, v), st.sampled_from(["=", "!="]),
                         st.one_of(st.sampled_from(["a", "b", "c"]), st.none()))


def _test(spec: Any) -> Any:
    from kinerja_rules import nodes as n

    if spec is None:
        return n.AnyTest(pos=(1, 1, 1, 1))
    negated, singles = spec
    tests = []
    for one in singles:
        if one[0] == "cmp":
            tests.append(n.CompareTest(pos=(1, 1, 1, 1), op=one[1], value=_cell(one[2])))
        else:
            tests.append(n.RangeTest(pos=(1, 1, 1, 1), low=_cell(one[1]), high=_cell(one[2]), low_closed=one[3],
                                     high_closed=one[4]))
    return n.TestList(pos=(1, 1, 1, 1), tests=tuple(tests), negated=negated)


def _column(single: Any) -> Any:
    return st.lists(st.one_of(st.none(), st.tuples(st.booleans(), st.lists(single, min_size=1, max_size=3))),
                    min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.tuples(st.just("integer"), _column(_single_numeric)),
                 st.tuples(st.just("text"), _column(_single_text))), st.booleans())
def test_the_table_sweep_matches_every_row_on_every_sample(column: Any, optional: bool) -> None:
    from kinerja_rules.tables import _sweep, matches, samples
    from kinerja_rules.types import scalar

    kind = scalar(column[0], optional)
    tests = [_test(spec) for spec in column[1]]
    values = samples(kind, tests, {})
    swept = _sweep(kind, tests, values, {})
    assert swept is not None
    brute = [sum(1 << r for r, test in enumerate(tests) if matches(test, value, {})) for value in values]
    assert swept == brute
