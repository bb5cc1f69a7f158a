"""What an author of a region's policy is told: mistakes caught before anything runs, one
diagnostic per mistake, and the ways to build on the parent instead of copying it."""

from __future__ import annotations

import copy
import datetime as dt
import shutil
from pathlib import Path

import pytest

from kinerja_rules import Engine, EvaluationError, check_paths
from tests.conftest import BASE_RECORD, POLICIES, bundled


def diagnose(text: str) -> list[str]:
    """Check a region (extending nasional) given as text; `code line:col message` per diagnostic."""
    report = bundled().validate_text(text, "region.yaml")  # against the parents as loaded once
    return [f"{d.code} {d.span.line}:{d.span.column} {d.message}" if d.span else f"{d.code} {d.message}"
            for d in (*report.problems, *report.warnings)]


def region(tmp_path: Path, text: str) -> Engine:
    (tmp_path / "region.yaml").write_text("policy: region\nextends: nasional\n" + text)
    return Engine.from_paths([tmp_path], library=POLICIES)


# ---- a bare number where a percent is meant ----------------------------------------------

def test_a_bare_number_above_one_for_a_percent_is_an_error_with_a_hint() -> None:
    report = bundled().validate_text("policy: region\nextends: nasional\nparameters:\n  bobot_kinerja: {override: "
                                     "true, type: percent, values: {2024-01-01: 10}}\n", "region.yaml")
    [d] = report.errors
    assert d.code == "E057" and "a bare 10 here means 1000%" in d.message and d.hint.startswith("write 10%")


def test_a_bare_number_in_a_percent_table_cell_or_keyed_value_is_an_error() -> None:
    problems = diagnose("""policy: region
extends: nasional
parameters:
  potongan: {type: percent, key: integer, values: {2024-01-01: {1: 0.5, 2: 5}}}
tables:
  potong:
    inputs: {menit: integer, bagian: percent}
    output: percent
    rows:
      a: ["<= 30", "<= 2%", 2]
      b: ["> 30", "-", 0.5]
      c: ["<= 30", "> 2", 1%]
""")
    assert sorted(p.split(" ")[0] for p in problems) == ["E057", "E057", "E057"], problems
    assert any("key 2: a bare 5 here means 500%" in p for p in problems)
    assert any("row 'a': a bare 2" in p for p in problems)
    assert any("a test of 'bagian': a bare 2" in p for p in problems)


def test_a_bare_fraction_stays_a_valid_percent(tmp_path: Path) -> None:
    engine = region(tmp_path, "parameters:\n  bobot_kinerja: {override: true, type: percent, "
                              "values: {2024-01-01: 0.5}}\n  bobot_disiplin: {override: true, type: percent, "
                              "values: {2024-01-01: 50%}}\n")
    assert engine.evaluate("region", copy.deepcopy(BASE_RECORD)).outputs["tpp"]["komponen_kinerja"] == 2_250_000


# ---- money outputs are provably whole rupiah ---------------------------------------------

@pytest.mark.parametrize("expr, reason", [
    ("pagu * bobot_kinerja", "parameter 'bobot_kinerja' holds 0.60"),
    ("komponen_kinerja_bruto", "definition 'komponen_kinerja_bruto' may not be whole"),
    ("floor(pagu * 0.5) + 0.5", "0.5 is not whole"),
    ("pagu / 4", "a quotient"),
])
def test_a_money_output_not_provably_whole_is_a_check_error(expr: str, reason: str) -> None:
    problems = diagnose("policy: region\nextends: nasional\noutputs:\n"
                        f"  region.uang: {{type: money, expr: \"{expr}\"}}\n")
    assert len(problems) == 1 and problems[0].startswith("E134") and reason in problems[0], problems


@pytest.mark.parametrize("expr", ["floor(pagu * 0.5)", "round(pagu / 3, 0, half_up)", "pagu - tpp_diterima",
                                  "ceil(komponen_kinerja_bruto) + 250_000", "pagu_tpp[3] * 2",
                                  "if status = cpns then floor(pagu * 80%) else pagu"])
def test_whole_rupiah_forms_pass(expr: str) -> None:
    assert diagnose("policy: region\nextends: nasional\noutputs:\n"
                    f"  region.uang: {{type: money, expr: \"{expr}\"}}\n") == []


# ---- declared ranges on outputs -----------------------------------------------------------

BONUS = """definitions:
  tpp_diterima:
    override: true
    type: money
    expr: parent(tpp_diterima) + 250_000
"""


def test_the_baseline_proves_its_money_outputs_stay_in_range() -> None:
    report = check_paths([POLICIES])
    assert not [w for w in report.warnings if w.code == "W135"]


def test_an_override_that_can_turn_a_deduction_negative_gets_a_warning(tmp_path: Path) -> None:
    problems = diagnose("policy: region\nextends: nasional\n" + BONUS)
    line = (POLICIES / "nasional.yaml").read_text().splitlines().index("    expr: pagu_total - tpp_diterima") + 1
    # on the region's own line that the inherited output reads (its override), naming the output's place
    assert problems == [f"W135 4:3 output 'tpp.potongan' of policy 'region' can reach -250000, below its 'min' 0; "
                        f"it is inherited (at {POLICIES / 'nasional.yaml'}:{line}:11) and reads this definition, "
                        "'tpp_diterima'"]


def test_a_value_outside_the_declared_range_is_an_error_for_that_record(tmp_path: Path) -> None:
    engine = region(tmp_path, BONUS)
    with pytest.raises(EvaluationError) as err:
        engine.evaluate("region", copy.deepcopy(BASE_RECORD))
    assert err.value.where == "output 'tpp.potongan'"
    assert err.value.detail == "the value -250000 is below the output's declared min 0"


# ---- one mistake, one diagnostic -------------------------------------------------------------

def test_a_bad_indent_gives_one_error_not_follow_ons_from_the_tests_file(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    policy = folder / "makassar" / "policy.yaml"
    policy.write_text(policy.read_text().replace("  bobot_aktivitas:", "   bobot_aktivitas:", 1))
    report = check_paths([folder])
    assert [d.code for d in report.problems] == ["E002"] and report.problems[0].span.file.endswith("policy.yaml")
    assert "makassar" not in report.policies and {"nasional", "sawahlunto"} <= set(report.policies)


def test_a_bad_value_does_not_make_its_parameter_unknown() -> None:
    problems = diagnose("policy: region\nextends: nasional\nparameters:\n  batas: {type: decimal, values: "
                        "{2024-01-01: banyak}}\ndefinitions:\n  lebih: {expr: capaian_skp > batas}\n")
    assert len(problems) == 1 and problems[0].startswith("E052"), problems


def test_a_broken_table_is_not_reported_again_where_it_is_called() -> None:
    problems = diagnose("policy: region\nextends: nasional\ntables:\n  kelas_bonus:\n    inputs: {k: intger}\n"
                        "    output: money\n    rows: {a: [1, 5]}\ndefinitions:\n  bonus: {expr: kelas_bonus(1)}\n")
    assert len(problems) == 1 and problems[0].startswith("E050"), problems


def test_independent_mistakes_of_every_stage_are_reported_together() -> None:
    problems = diagnose("""policy: region
extends: nasional
references:
  perda-region: Perda Region
parameters:
  bobot_kinerjaa: {override: true, type: percent, values: {2024-01-01: 60%}}
  bobot_disiplin: {override: true, type: percent, values: {2024-01-01: 40%}, cite: perda-regoin}
tables:
  kategori:
    inputs: {x: decimal}
    output: text
    rows:
      a: [">= 10", '"A"']
      b: [">= 5", '"B"']
      c: ["< 5", '"C"']
""")
    assert sorted(p.split(" ")[0] for p in problems) == ["E021", "E033", "E202"], problems
    assert "did you mean 'bobot_kinerja'" in problems[0] and "did you mean 'perda-region'" in " ".join(problems)


def test_an_unknown_name_suggests_a_nested_field_or_quotes() -> None:
    problems = diagnose("policy: region\nextends: nasional\ndefinitions:\n  x: {expr: kelass + 1}\n"
                        "  y: {expr: unit_kerja = Dinas}\n")
    assert problems[0].endswith("unknown name 'kelass'; did you mean 'jabatan.kelas'?")
    report = bundled().validate_text(
        "policy: region\nextends: nasional\ndefinitions:\n  y: {expr: unit_kerja = Dinas}\n", "region.yaml")
    assert report.errors[0].hint == 'if you meant the text Dinas, write it in quotes: "Dinas"'


# ---- building on the parent -------------------------------------------------------------------

def test_parent_reads_the_parents_version_and_is_traced(tmp_path: Path) -> None:
    engine = region(tmp_path, "definitions:\n  tpp_diterima:\n    override: true\n    type: money\n"
                              "    expr: min(parent(tpp_diterima) + 100_000, pagu)\n")
    record = copy.deepcopy(BASE_RECORD)
    record["presensi"]["terlambat_menit"] = [45, 100]  # 3 % of the disiplin part is withheld
    decision = engine.evaluate("region", record, explain=True)
    national = Engine.from_paths([POLICIES / "nasional.yaml"]).evaluate("nasional", record).outputs
    assert decision.outputs["tpp"]["diterima"] == min(national["tpp"]["diterima"] + 100_000, 4_500_000)
    names = list(decision.trace["definitions"])  # in the order they were decided
    assert names.index("tpp_diterima@nasional") < names.index("tpp_diterima")
    assert "tpp_diterima@nasional" in decision.trace["definitions"]["tpp_diterima"]["uses"]


@pytest.mark.parametrize("text, message", [
    ("definitions:\n  bonus: {expr: parent(tidak_ada)}\n", "the parent policy has no definition or output 'tidak_ada'"),
    ("definitions:\n  bonus: {expr: parent(1)}\n", "parent(…) names one inherited definition or output"),
])
def test_parent_of_what_the_parent_does_not_define_is_an_error(text: str, message: str) -> None:
    problems = diagnose("policy: region\nextends: nasional\n" + text)
    assert len(problems) == 1 and problems[0].startswith("E122") and message in problems[0], problems


def test_some_keys_of_a_keyed_parameter_change_from_a_date(tmp_path: Path) -> None:
    engine = region(tmp_path, "parameters:\n  pagu_tpp:\n    extend: true\n"
                              "    values: {2025-07-01: {9: 6_000_000, 10: 6_800_000}}\n")
    record = copy.deepcopy(BASE_RECORD)
    record["jabatan"]["kelas"] = 9
    assert engine.evaluate("region", record).outputs["tpp"]["pagu"] == 5_750_000  # March: the national value
    assert engine.evaluate("region", record, as_of=dt.date(2025, 7, 1)).outputs["tpp"]["pagu"] == 6_000_000
    record["jabatan"]["kelas"] = 8
    assert engine.evaluate("region", record, as_of=dt.date(2025, 7, 1)).outputs["tpp"]["pagu"] == 5_000_000


def test_extending_an_unkeyed_parameter_or_a_definition_is_an_error() -> None:
    problems = diagnose("policy: region\nextends: nasional\nparameters:\n  bobot_kinerja: {extend: true, "
                        "values: {2025-01-01: 50%}}\ndefinitions:\n  pagu: {extend: true, expr: \"1\"}\n")
    assert sorted(p.split(" ")[0] for p in problems) == ["E010", "E025"], problems
    assert "unknown key 'extend'" in " ".join(problems)


def test_an_added_enumeration_value_is_checked_through_the_parents_items() -> None:
    problems = diagnose("policy: region\nextends: nasional\ntypes:\n  predikat: {extend: true, values: [istimewa]}\n")
    assert len(problems) == 2 and all(p.startswith("E054 4:3 ") for p in problems), problems
    lines = (POLICIES / "nasional.yaml").read_text().splitlines()
    at = lines.index("  faktor_kinerja:") + 6  # its dated values, five lines below the name
    assert lines[at - 1].startswith("      2024-01-01:")
    assert any("'faktor_kinerja' on 2024-01-01 has no value for istimewa (in " in p
               and f"policies/nasional.yaml:{at}:7, inherited; 'region' extends 'predikat')" in p for p in problems)


def test_an_added_enumeration_value_covered_everywhere_checks(tmp_path: Path) -> None:
    engine = region(tmp_path, """types:
  aksi_talenta: {extend: true, values: [magang_instansi_lain]}
  predikat: {extend: true, values: [istimewa]}
parameters:
  faktor_kinerja: {extend: true, values: {2024-01-01: {istimewa: 1.0}}}
  persentase_angka_kredit: {extend: true, values: {2024-01-01: {istimewa: 150%}}}
""")
    policy = engine.policy("region")
    assert "istimewa" in policy.metadata()["parameters"]["faktor_kinerja"]["values"][0]["value"]


def test_a_value_the_enumeration_already_has_is_an_error() -> None:
    problems = diagnose("policy: region\nextends: nasional\ntypes:\n  predikat: {extend: true, values: [baik]}\n")
    assert len(problems) == 1 and problems[0].startswith("E025") and "already has baik" in problems[0]


# ---- hostile numbers in a policy ----------------------------------------------------------------

@pytest.mark.parametrize("value, code", [("1e999999", "E002"), ("1e-999999", "E002"), ('"1e99999%"', "E052"),
                                         ("0.000000000000000000000000001", "E002")])
def test_a_number_out_of_range_in_a_policy_is_named_before_it_is_used(value: str, code: str) -> None:
    report = bundled().validate_text(f"policy: region\nextends: nasional\nparameters:\n  batas: {{type: decimal, "
                                     f"values: {{2024-01-01: {value}}}}}\n", "region.yaml")
    assert [d.code for d in report.errors] == [code]
    assert "must be 0 or between 1e-24 and 1e+25 in magnitude" in report.errors[0].message


def test_a_name_with_a_trailing_newline_and_full_width_digits_are_refused() -> None:
    problems = diagnose('policy: region\nextends: nasional\ndefinitions:\n  "zz\\n": {expr: "1"}\n'
                        '  lebar: {expr: "１２ + 1"}\n')
    assert sorted(p.split(" ")[0] for p in problems) == ["E013", "E100"], problems
    assert any("invalid name 'zz\\n'" in p for p in problems) and any("unexpected character" in p for p in problems)


@pytest.mark.parametrize("header", ["policy: region\neffective: 2024-01-01T10:00:00+07:00\n",
                                    "policy: region\nextends: nasional\neffective: 2024-01-01T10:00:00+07:00\n"])
def test_a_timestamp_is_not_an_effective_date(header: str) -> None:
    report = bundled().validate_text(header, "region.yaml")
    assert [(d.code, d.message) for d in report.errors] == [("E010", "'effective' must be a date (YYYY-MM-DD)")]
