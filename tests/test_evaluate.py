from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kinerja_rules import Engine, ErrorResult, EvaluationError, RecordError, to_json

HERE = Path(__file__).parent
POLICIES = HERE.parent / "policies"
FAULTY = """
policy: rapuh
effective: 2024-01-01
inputs:
  a: integer
  b: integer
  xs: {type: list of decimal, default: []}
definitions:
  rasio: {type: decimal, expr: "a / b"}
  rata: {type: decimal, expr: "if a > 100 then mean(xs) else 0"}
outputs:
  rasio: {type: decimal, expr: "round(rasio, 4, half_up)"}
  rata: {type: decimal, expr: "round(rata, 4, half_up)"}
"""


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = tmp_path_factory.mktemp("rapuh")
    (folder / "rapuh.yaml").write_text(FAULTY)
    return Engine.from_paths([folder])


def test_decision_shape(engine: Engine, record: dict[str, Any]) -> None:
    decision = engine.evaluate("nasional", record)
    assert decision.policy.id == "nasional"
    assert len(decision.policy.digest) == 64
    assert decision.as_of == dt.date(2025, 3, 1)
    assert decision.outputs["tpp"]["diterima"] == 4_500_000
    assert isinstance(decision.outputs["tpp"]["diterima"], int)
    assert decision.trace is None


def test_money_is_exact_and_json_numbers(engine: Engine, record: dict[str, Any]) -> None:
    record["perilaku"]["atasan"] = Decimal("89.995")
    decision = engine.evaluate("nasional", record)
    assert decision.outputs["evaluasi"]["skor_perilaku"] == Decimal("90.00")
    text = to_json(decision).decode()
    assert '"skor_perilaku":90.00' in text and '"diterima":4500000' in text


def test_every_bad_field_is_named(engine: Engine, record: dict[str, Any]) -> None:
    record["jabatan"]["kelas"] = 20
    record["skp"]["indikator"].append({"nama": "b", "target": 0, "realisasi": -1})
    record["status"] = "honorer"
    del record["perilaku"]
    with pytest.raises(RecordError) as err:
        engine.evaluate("nasional", record)
    paths = {e.path for e in err.value.errors}
    assert paths == {"jabatan.kelas", "skp.indikator[1].target", "skp.indikator[1].realisasi", "status", "perilaku"}


def test_non_object_record_is_refused(engine: Engine) -> None:
    with pytest.raises(RecordError, match="JSON object"):
        engine.evaluate("nasional", [1, 2])


def test_runtime_fault_names_definition_and_inputs(faulty: Engine) -> None:
    with pytest.raises(EvaluationError) as err:
        faulty.evaluate("rapuh", {"a": 1, "b": 0}, as_of=dt.date(2024, 5, 1))
    assert err.value.where == "definition 'rasio'"
    assert err.value.detail == "division by zero"
    assert set(err.value.paths) == {"a", "b"}


def test_fault_in_one_record_leaves_the_others(faulty: Engine) -> None:
    when = dt.date(2024, 5, 1)
    results = list(faulty.evaluate_many("rapuh", [{"a": 4, "b": 2}, {"a": 1, "b": 0}, {"a": 101, "b": 1},
                                                  {"a": 9, "b": 3}], as_of=when))
    assert [isinstance(r, ErrorResult) for r in results] == [False, True, True, False]
    assert results[0].outputs["rasio"] == 2 and results[3].outputs["rasio"] == 3
    assert results[2].error.where == "definition 'rata'"
    assert "empty list" in results[2].error.message


def test_a_repeating_definition_is_traced_with_its_exact_fraction(faulty: Engine) -> None:
    decision = faulty.evaluate("rapuh", {"a": 1, "b": 3}, as_of=dt.date(2024, 5, 1), explain=True)
    assert decision.outputs["rasio"] == Decimal("0.3333")
    entry = decision.trace["definitions"]["rasio"]
    assert entry["exact"] == "1/3" and entry["value"] == Decimal("0." + "3" * 28)
    assert b'"exact":"1/3"' in to_json(decision)
    from kinerja_rules.evaluation.tracing import explain_text

    assert "· rasio = 0.3333333333333333333333333333 (exactly 1/3)" in explain_text(decision)


def test_explain_names_rows_parameters_and_citations(engine: Engine, record: dict[str, Any]) -> None:
    record["presensi"]["terlambat_menit"] = [45]
    decision = engine.evaluate("nasional", record, explain=True)
    assert decision.outputs == engine.evaluate("nasional", record).outputs
    trace = decision.trace
    assert trace is not None and trace["outputs"]["tpp.diterima"] == {"uses": ["tpp_diterima"], "value": 4_482_000}
    rows = {(t, hit["row"]) for t, entry in trace["tables"].items() for hit in entry["hits"]}
    assert ("potongan_per_kejadian", "tl2") in rows and ("matriks_predikat", "sesuai_sesuai") in rows
    assert trace["tables"]["matriks_predikat"]["cite"] == "permenpanrb-6-2022 lampiran"
    assert trace["parameters"]["2024-01-01"]["pagu_tpp"] == {"values": [{"key": 7, "value": 4_500_000}]}
    assert trace["definitions"]["pagu"] == {"uses": ["pagu_tpp"], "reads": ["jabatan.kelas"], "value": 4_500_000}
    assert trace["definitions"]["predikat_awal"]["cite"] == "permenpanrb-6-2022"
    names = list(trace["definitions"])
    assert names.index("predikat") < names.index("tpp_diterima")
    assert trace["outputs"]["tindak_lanjut.pembinaan"]["rules"] == ["pembinaan_kinerja_di_bawah",
                                                                    "pembinaan_perilaku_kurang"]
    assert trace["rules"]["pembinaan_kinerja_di_bawah"]["fired"] is False
    from kinerja_rules.evaluation.tracing import explain_text

    text = explain_text(decision, policy=engine.policy("nasional"))
    assert "· parameter pagu_tpp[7] = 4500000 (in force since 2024-01-01)" in text
    assert "· pagu = 4500000   ← pagu_tpp[jabatan.kelas]" in text
    assert "[PermenPANRB Nomor 6 Tahun 2022 tentang Pengelolaan Kinerja Pegawai ASN, lampiran]" in text


def test_as_of_picks_the_parameter_value_in_force(tmp_path: Path, record: dict[str, Any]) -> None:
    (tmp_path / "daerah.yaml").write_text("""
policy: daerah
extends: nasional
parameters:
  bobot_kinerja:
    override: true
    type: percent
    values: {2024-01-01: 60%, 2025-07-01: 30%}
""")
    engine = Engine.from_paths([POLICIES, tmp_path])
    before = engine.evaluate("daerah", record, as_of=dt.date(2025, 6, 30))
    after = engine.evaluate("daerah", record, as_of=dt.date(2025, 7, 1))
    assert before.outputs["tpp"]["komponen_kinerja"] == 2_700_000
    assert after.outputs["tpp"]["komponen_kinerja"] == 1_350_000
    record["periode"] = "2025-07"
    assert engine.evaluate("daerah", record).outputs["tpp"]["komponen_kinerja"] == 1_350_000


def test_rupiah_are_floored_not_rounded(tmp_path: Path, record: dict[str, Any]) -> None:
    (tmp_path / "ganjil.yaml").write_text("""
policy: ganjil
extends: nasional
parameters:
  pagu_tpp:
    override: true
    type: money
    key: integer
    values: {2024-01-01: {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 2_500_001, 8: 2, 9: 2, 10: 2, 11: 2, 12: 2,
                          13: 2, 14: 2, 15: 2, 16: 2, 17: 2}}
""")
    engine = Engine.from_paths([POLICIES, tmp_path])
    record["status"] = "cpns"
    out = engine.evaluate("ganjil", record).outputs["tpp"]
    # 2,500,001 x 0.6 = 1,500,000.6 and x 0.4 = 1,000,000.4; the sum x 0.8 = 2,000,000.8
    assert out == {"pagu": 2_500_001, "komponen_kinerja": 1_500_000, "komponen_disiplin": 1_000_000,
                   "potongan": 500_001, "diterima": 2_000_000, "ditangguhkan": 0, "pembayaran_penangguhan": 0,
                   "dibayar": 2_000_000, "sebab": ["cpns"],
                   "komponen": [{"jenis": "beban_kerja", "pagu": 1_250_001, "diterima": 1_000_000},  # the remainder
                                {"jenis": "prestasi_kerja", "pagu": 1_250_000, "diterima": 1_000_000}]}


def test_policy_before_its_effective_date(engine: Engine, record: dict[str, Any]) -> None:
    with pytest.raises(RecordError, match="not in force"):
        engine.evaluate("nasional", record, as_of=dt.date(2023, 12, 31))


def test_digest_changes_with_the_source(tmp_path: Path) -> None:
    text = (POLICIES / "nasional.yaml").read_text()
    (tmp_path / "nasional.yaml").write_text(text)
    first = Engine.from_paths([tmp_path]).policy("nasional").digest
    assert Engine.from_paths([tmp_path]).policy("nasional").digest == first
    (tmp_path / "nasional.yaml").write_text(text.replace("1: 2_500_000", "1: 2_600_000"))
    assert Engine.from_paths([tmp_path]).policy("nasional").digest != first


def test_unknown_policy(engine: Engine, record: dict[str, Any]) -> None:
    from kinerja_rules import UnknownPolicyError

    with pytest.raises(UnknownPolicyError, match="did you mean 'nasional'"):
        engine.evaluate("nasionl", record)


def test_input_patterns_match_in_linear_time_and_refuse_what_re2_cannot_do() -> None:
    from kinerja_rules.engine import validate_text as check_text

    policy = 'policy: pola\neffective: 2024-01-01\ninputs:\n  kode: {type: text, pattern: "(a+)+$"}\n' \
             'outputs:\n  panjang: {type: integer, expr: "1"}\n'
    report = check_text(policy, "pola.yaml")
    assert not report.errors
    pola = Engine(report.policies)
    hostile = [{"kode": "a" * n + "!"} for n in range(20, 40)]  # 2^n steps each for a backtracking engine
    results = [pola.evaluate_safely("pola", record, dt.date(2024, 6, 1)) for record in hostile]
    assert all(r.error.fields[0].message.endswith("does not match (a+)+$") for r in results)  # type: ignore[union-attr]
    assert pola.evaluate("pola", {"kode": "aaa"}, dt.date(2024, 6, 1)).outputs["panjang"] == 1
    for bad, reason in (("(a)\\\\1", "invalid escape sequence"), ("(?=a)b", "invalid perl operator"),
                        ("a" * 1001, "longer than 1000 characters")):
        report = check_text(policy.replace("(a+)+$", bad), "pola.yaml")
        assert [d.code for d in report.errors] and reason in report.errors[0].message, report.errors


def test_a_pattern_matches_as_re2_would_whichever_engine_runs_it() -> None:
    import re2

    from kinerja_rules.schema import compile_pattern

    cases = {"[0-9]{18}": ["198507122010011003", "19850712201001100", "１９８５０７１２２０１００１１００３"],
             "\\d{2}": ["12", "\u0661\u0662", "\uff11\uff12"], "\\w{3}": ["abc", "\u00e4bc"],
             "\\b[a-z]+": ["kode", "kode "],
             "[0-9]{4}-(0[1-9]|1[0-2])": ["2025-03", "2025-13", "2025-03\n"], "x?y{0,3}": ["", "xyyy", "yyyy"]}
    for pattern, texts in cases.items():
        ours, theirs = compile_pattern(pattern), re2.compile(pattern)
        for text in texts:
            assert bool(ours.fullmatch(text)) == bool(theirs.fullmatch(text)), (pattern, text)
    for risky in ("(a+)+$", "a*", "(a|ab){3}", "(x{2}){3}", "[a-z]{1,500}"):  # only RE2 runs these
        assert type(compile_pattern(risky)).__module__.startswith("re2"), risky


def test_a_pattern_is_refused_where_json_schema_and_the_server_would_read_it_differently() -> None:
    from kinerja_rules.schema import SchemaProblem, compile_pattern

    refused = {"a.b": "'.'", "\\s+": "\\s", "[\\s\\d]": "\\s", "(?i)ab": "inline flags", "(?i:a)b": "inline flags",
               "(?P<x>a)": "named groups", "x{,3}": "{0,n}", "[[:alpha:]]": "POSIX class", "\\pL": "syntax",
               "a\\z": "syntax"}
    for pattern, named in refused.items():
        with pytest.raises(SchemaProblem, match=re.escape(named)):
            compile_pattern(pattern)
    for kept in ("[0-9]{18}", "[0-9]{4}-(0[1-9]|1[0-2])", "\\bx\\b", "(?:a|b)+", "[^\\n]{1,5}", "\\w\\d"):
        assert compile_pattern(kept).fullmatch is not None


def test_explain_text_writes_values_as_the_decision_json_does() -> None:
    from decimal import Decimal

    from kinerja_rules.decision import Decision, PolicyRef
    from kinerja_rules.evaluation.tracing import explain_text

    value = {"skor": Decimal("0.3333"), "riwayat": [Decimal("1.50"), None]}
    trace = {"as_of": dt.date(2025, 1, 1), "outputs": {"ringkasan": {"uses": ["ringkasan"], "value": value}},
             "definitions": {"ringkasan": {"value": value}}, "parameters": {"2025-01-01": {"batas": [Decimal("1.5")]}}}
    decision = Decision(policy=PolicyRef(id="p", version="1", digest="0" * 64), as_of=dt.date(2025, 1, 1),
                        outputs={"ringkasan": value}, trace=trace)
    text = explain_text(decision)
    assert "Decimal(" not in text
    assert 'ringkasan = {"skor":0.3333,"riwayat":[1.50,null]}' in text
    assert '· ringkasan = {"skor":0.3333,"riwayat":[1.50,null]}' in text


PERSEN = """
policy: persen
effective: 2024-01-01
inputs:
  x: percent
outputs:
  y: {type: percent, expr: "x + 10%"}
tests:
  sebagai_persen: {record: {x: 0.5}, as_of: 2024-06-01, expect: {y: 60%}}
  sebagai_pecahan: {record: {x: 0.5}, as_of: 2024-06-01, expect: {y: 0.6}}
  salah: {record: {x: 0.5}, as_of: 2024-06-01, expect: {y: 61%}}
"""


def test_a_percent_is_the_fraction_and_a_test_may_write_it_either_way(tmp_path: Path) -> None:
    from kinerja_rules.decision import to_json
    from kinerja_rules.testing import run_all

    (tmp_path / "persen.yaml").write_text(PERSEN)
    engine = Engine.from_paths([tmp_path / "persen.yaml"])
    policy = engine.policy("persen")
    assert {r.case: r.ok for r in run_all(policy)} == {"sebagai_persen": True, "sebagai_pecahan": True,
                                                         "salah": False}
    assert b'"outputs":{"y":0.6}' in to_json(engine.evaluate("persen", {"x": Decimal("0.5")}, dt.date(2024, 6, 1)))
    assert policy.metadata()["input_schema"]["properties"]["x"] == {"type": "number", "format": "percent",
                                                                    "exclusiveMinimum": -10 ** 25,
                                                                    "exclusiveMaximum": 10 ** 25}


def _trace_names(trace: dict[str, Any]) -> set[str]:
    return {*trace["definitions"], *trace.get("tables", {}), *trace.get("indicators", {}),
            *(name for group in trace["parameters"].values() for name in group)}


@pytest.mark.parametrize("record_file", [None, "examples/pegawai.json"])
def test_a_trace_holds_each_fact_once_and_stays_small(engine: Engine, record_file: str | None) -> None:
    import json

    from tests.conftest import BASE_RECORD, ROOT

    record = json.loads((ROOT / record_file).read_text()) if record_file else BASE_RECORD
    decision = engine.evaluate("nasional", record, explain=True)
    # it was 51 KB (every output its whole chain); the baseline's rater's ratings, discipline window and
    # withheld TPP and the SKP's segments added definitions, each once; the rules saying why TPP is cut, theirs
    assert len(to_json(decision)) <= 15 * 1024, len(to_json(decision))
    trace = decision.trace
    assert trace is not None
    policy = engine.policy("nasional")
    assert list(trace["definitions"]) == list(policy.checked.definitions)  # each once, in the order decided
    known = _trace_names(trace)
    unused = set(policy.checked.tables) | {p for p, spec in policy.checked.params.items() if spec.key is not None}
    for section in ("outputs", "definitions", "rules"):
        for name, entry in trace.get(section, {}).items():
            assert set(entry.get("uses", ())) <= known | unused, (section, name)  # what a record did not look up
    assert trace["outputs"]["tpp.diterima"]["uses"] == ["tpp_diterima"]
    assert sum(to_json(decision).count(f'"{name}":'.encode()) for name in ("pagu_tpp",)) == 1
