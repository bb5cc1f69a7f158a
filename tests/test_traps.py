"""The policy language without silent traps: what two new regions and a newcomer ran into, each
caught or made to work as an author would expect."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from kinerja_rules import Engine
from kinerja_rules.population_run import GroupReport
from tests.conftest import BASE_RECORD
from tests.test_authoring import diagnose, region


def _limits(engine: Engine, policy: str, organisasi: str) -> list[str]:
    people = []
    for i in range(5):
        record: dict[str, Any] = copy.deepcopy(BASE_RECORD)
        record["nip"] = f"1985071220100100{i:02d}"
        people.append(record)
    [report] = [r for r in engine.evaluate_population(policy, people, {"Dinas Kesehatan": {
        "predikat_organisasi": organisasi}}) if isinstance(r, GroupReport)]
    assert isinstance(report.limits, list)
    return report.limits


# ---- 1: extending one key of a keyed quota ----

def test_extending_one_category_of_a_quota_keeps_the_others_of_that_key(tmp_path: Path) -> None:
    engine = region(tmp_path, "parameters:\n  kurva_distribusi:\n    extend: true\n    values:\n"
                              "      2025-01-01: {baik: {baik: '<= 60%'}}\n")
    assert _limits(engine, "region", "baik") == ["baik: at most floor(60 % × 5) = 3",
                                                 "butuh_perbaikan or kurang: at least 1"]  # inherited, kept


def test_a_category_given_as_null_is_dropped_on_purpose(tmp_path: Path) -> None:
    engine = region(tmp_path, "parameters:\n  kurva_distribusi:\n    extend: true\n    values:\n"
                              "      2025-01-01: {baik: {butuh_perbaikan or kurang: null}}\n")
    assert _limits(engine, "region", "baik") == ["baik: at most floor(70 % × 5) = 3"]


def test_an_override_that_drops_an_inherited_limit_is_said_at_the_regions_line() -> None:
    problems = diagnose("""policy: region
extends: nasional
parameters:
  kurva_distribusi:
    override: true
    type: quota of predikat
    key: predikat_organisasi
    values:
      2024-01-01:
        istimewa: {sangat_baik: "<= 70%"}
        baik: {baik: "<= 60%"}
        butuh_perbaikan: {butuh_perbaikan: ">= 60%", sangat_baik: "<= 10%"}
        kurang: {kurang: ">= 60%", butuh_perbaikan: ">= 10%", sangat_baik: "<= 10%"}
        sangat_kurang: {sangat_kurang: ">= 60%", kurang or butuh_perbaikan: ">= 10%", sangat_baik: "= 0"}
""")
    [dropped] = [p for p in problems if p.startswith("W025")]
    assert dropped.startswith("W025 11:9 ") and "'butuh_perbaikan or kurang'" in dropped and "null" in dropped


# ---- 3: a rule's value is checked against the output's declared values ----

RULE = """policy: region
extends: nasional
{types}rules:
  disiplin:
    when: presensi.tanpa_keterangan_tahun > 3
    then: {{tindak_lanjut.pembinaan: {value}}}
    reason: Absence is followed up.
"""


def test_a_typo_in_a_rules_value_is_an_error_naming_the_value_meant() -> None:
    types = "types:\n  jenis_pembinaan: {extend: true, values: [pembinaan_disiplin]}\n"
    problems = diagnose(RULE.format(types=types, value="pembinaan_disiplinn"))
    assert [p for p in problems if p.startswith("E141")] == [
        "E141 8:37 rule 'disiplin': 'pembinaan_disiplinn' is not a value of jenis_pembinaan; "
        "did you mean 'pembinaan_disiplin'?"], problems
    assert diagnose(RULE.format(types=types, value="pembinaan_disiplin")) == []


def test_a_value_of_its_own_not_declared_still_checks_with_a_warning_saying_how_to_declare_it() -> None:
    problems = diagnose(RULE.format(types="", value="konseling_psikolog"))
    assert len(problems) == 1 and problems[0].startswith("W141 ") and \
        "types: {jenis_pembinaan: {extend: true, values: [konseling_psikolog]}}" in problems[0]


# ---- 7: failure reports quote texts ----

def test_a_failing_case_shows_texts_quoted_so_items_with_commas_stay_apart(tmp_path: Path) -> None:
    from kinerja_rules import check_paths
    from kinerja_rules.testing import run_all
    from tests.conftest import POLICIES

    (tmp_path / "region.yaml").write_text("""policy: region
extends: nasional
tests:
  koma:
    record: pns_baik
    with: {perilaku: {atasan: 60, rekan: 60}}
    expect: {tindak_lanjut.pembinaan: ["pembinaan_kinerja, pembinaan_perilaku"], evaluasi.predikat: "baik"}
""")
    report = check_paths([tmp_path], library=POLICIES)
    [result] = [r for r in run_all(report.policies["region"]) if r.case == "koma"]
    assert not result.ok
    assert 'expected ["pembinaan_kinerja, pembinaan_perilaku"]' in result.report
    assert 'actual   ["pembinaan_kinerja", "pembinaan_perilaku"]' in result.report, result.report



# ---- 8: kinerja check --strict and --format json ----

def test_check_strict_fails_on_a_warning_and_json_gives_the_whole_report(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from tests.conftest import POLICIES, ROOT

    (tmp_path / "region.yaml").write_text(RULE.format(types="", value="konseling_psikolog"))

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "check", str(tmp_path), "--policies",
                               str(POLICIES), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)

    plain, strict = check(), check("--strict")
    assert plain.returncode == 0 and "warning[W141]" in plain.stderr and "ok  region" in plain.stdout
    assert strict.returncode == 1 and "1 warning (--strict)" in strict.stderr
    report = json.loads(check("--format", "json", "--strict").stdout)
    assert report["ok"] is False and report["errors"] == []
    assert [w["code"] for w in report["warnings"]] == ["W141"] and report["warnings"][0]["line"] == 6
    assert [p["id"] for p in report["policies"]] == ["nasional", "region"]
    broken = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "check", str(ROOT / "tests" / "broken"),
                             "--format", "json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    answer = json.loads(broken.stdout)
    assert broken.returncode == 1 and answer["ok"] is False and answer["errors"]
    assert all(e["file"] and e["rendered"] for e in answer["errors"])


# ---- 5: ordered enumerations; a bare word in either branch ----

def test_an_ordered_enumeration_compares_by_rank(tmp_path: Path) -> None:
    engine = region(tmp_path, "outputs:\n  region.minimal_baik: {type: boolean, expr: predikat >= baik}\n"
                              "  region.di_bawah: {type: boolean, expr: butuh_perbaikan > predikat}\n")
    expected = {"sangat_baik": (True, False), "baik": (True, False), "butuh_perbaikan": (False, False),
                "kurang": (False, True), "sangat_kurang": (False, True)}
    seen = {}
    for atasan in (40, 60, 75, 90, 100):
        record: dict[str, Any] = copy.deepcopy(BASE_RECORD)
        record["perilaku"] = {"atasan": atasan, "rekan": atasan}
        record["skp"]["indikator"][0]["realisasi"] = 1000 * atasan // 90
        outputs = engine.decide("region", record).outputs
        seen[outputs["evaluasi"]["predikat"]] = (outputs["region"]["minimal_baik"], outputs["region"]["di_bawah"])
    assert len(seen) >= 3 and all(seen[p] == expected[p] for p in seen), seen


def test_an_unordered_enumeration_still_cannot_be_ordered_and_says_how_to_order_it() -> None:
    problems = diagnose("policy: region\nextends: nasional\noutputs:\n  region.x: {type: boolean, expr: "
                        "status >= pns}\n")
    assert len(problems) == 1 and problems[0].startswith("E116 ") and "not ordered" in problems[0]


def test_a_bare_enumeration_word_works_in_either_branch() -> None:
    for expr in ("if bobot_kinerja > 50% then report else mode_kurva_distribusi",
                 "if bobot_kinerja > 50% then mode_kurva_distribusi else report",
                 "when bobot_kinerja > 50% then report when bobot_kinerja > 10% then enforce "
                 "else mode_kurva_distribusi"):
        assert diagnose(f"policy: region\nextends: nasional\noutputs:\n  region.mode: {{type: mode_kuota, expr: "
                        f"'{expr}'}}\ndefinitions:\n  mode_pilihan:\n    expr: '{expr}'\n") == [], expr


# ---- 6: parent(x) from any definition, rule or output ----

def test_parent_is_readable_from_any_definition_of_the_child(tmp_path: Path) -> None:
    engine = region(tmp_path, "definitions:\n  potongan_nasional:\n    type: money\n    expr: parent(tpp_diterima)\n"
                              "outputs:\n  region.selisih: {type: money, expr: tpp_diterima - potongan_nasional}\n"
                              "  region.sama: {type: boolean, expr: parent(tpp_diterima) = tpp_diterima}\n")
    outputs = engine.decide("region", BASE_RECORD).outputs
    assert outputs["region"] == {"selisih": 0, "sama": True}
    problems = diagnose("policy: region\nextends: nasional\noutputs:\n  region.x: {type: money, expr: "
                        "parent(tidak_ada)}\n")
    assert len(problems) == 1 and problems[0].startswith("E122 ") and "no definition or output 'tidak_ada'" in \
        problems[0]


# ---- 2: the range analysis, per period, on the region's line, and acknowledged ----

BOBOT = """parameters:
  bobot_kinerja:
    override: true
    type: percent
    values: {{2024-01-01: 60%, 2025-07-01: 70%}}
  bobot_disiplin:
    override: true
    type: percent
    values: {{2024-01-01: {disiplin}, 2025-07-01: 30%}}
{allow}"""


def test_a_bobot_moved_on_a_date_is_judged_per_period_without_a_false_w135() -> None:
    assert diagnose("policy: region\nextends: nasional\n" + BOBOT.format(disiplin="40%", allow="")) == []


def test_a_range_a_region_really_breaks_is_said_at_the_regions_own_line() -> None:
    [warning] = diagnose("policy: region\nextends: nasional\n" + BOBOT.format(disiplin="60%", allow=""))
    assert warning.startswith("W135 8:3 ") and "from 2024-01-01 can reach" in warning
    assert "inherited (at " in warning and "reads this parameter, 'bobot_disiplin'" in warning


def test_a_warning_acknowledged_with_a_reason_is_listed_not_warned(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from tests.conftest import POLICIES, ROOT

    allow = "allow:\n  - {code: W135, output: tpp.potongan, reason: a one-off top-up agreed by the Bupati}\n"
    text = "policy: region\nextends: nasional\n" + BOBOT.format(disiplin="60%", allow=allow)
    assert diagnose(text) == []
    (tmp_path / "region.yaml").write_text(text)
    result = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "check", str(tmp_path), "--policies",
                             str(POLICIES), "--strict", "--format", "json"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["warnings"] == []
    [seen] = report["acknowledged"]
    assert seen["code"] == "W135" and seen["reason"] == "a one-off top-up agreed by the Bupati"
    engine = region(tmp_path, BOBOT.format(disiplin="60%", allow=allow))
    assert [a["reason"] for a in engine.policy("region").metadata()["acknowledged"]] == [seen["reason"]]


def test_a_malformed_acknowledgement_is_an_error_at_its_place() -> None:
    problems = diagnose("policy: region\nextends: nasional\nallow:\n  - {code: W135}\n")
    assert len(problems) == 1 and problems[0].startswith("E010 4:5 allow[0]:") and "reason" in problems[0]


@pytest.mark.parametrize("lang", ["en", "id"])
def test_no_bundled_policy_nor_the_new_regions_examples_get_a_w135(tmp_path: Path, lang: str) -> None:
    from kinerja_rules import check_paths
    from kinerja_rules.scaffold import new_region
    from tests.conftest import POLICIES

    assert not [w for w in check_paths([POLICIES], library=POLICIES).warnings if w.code == "W135"]
    import shutil

    for file in POLICIES.glob("nasional*.yaml"):
        shutil.copy(file, tmp_path / file.name)
    new_region("contoh", tmp_path, lang=lang)  # the commented examples are the same in either language
    written = tmp_path / "contoh" / "policy.yaml"
    live = [line[2:] if line.startswith(("#   ", "# parameters:", "# definitions:")) else line
            for line in written.read_text().splitlines()]  # the commented examples, made live
    assert "  bobot_kinerja:" in live and "  tpp_diterima:" in live
    written.write_text("\n".join(live) + "\n")
    report = check_paths([tmp_path / "contoh"], library=POLICIES)
    assert report.ok, [d.render() for d in report.problems]
    assert [w.code for w in report.warnings] == []


# ---- 4 (in part): overriding one field of an inherited population part ----

def test_an_override_of_a_population_part_restates_only_what_changes(tmp_path: Path) -> None:
    engine = region(tmp_path, "population:\n  quota: {override: true, rounding: ceiling}\n")
    quota = engine.policy("region").metadata()["population"]["quota"]
    nasional = engine.policy("nasional").metadata()["population"]["quota"]
    assert quota == {**nasional, "rounding": "ceiling"} and nasional["rounding"] == "floor"
    assert _limits(engine, "region", "baik")[0] == "baik: at most ceiling(70 % × 5) = 4"


def test_a_part_missing_a_key_says_how_to_change_only_some() -> None:
    from kinerja_rules import check_paths  # noqa: F401  (the diagnostics come from validate_text)
    from tests.conftest import bundled

    report = bundled().validate_text("policy: region\nextends: nasional\npopulation:\n  quota: {rounding: ceiling}\n",
                                     "region.yaml")
    [problem] = report.problems
    assert problem.code == "E010" and "missing required key 'of'" in problem.message
    assert "override: true and give only those" in problem.hint


# ---- 4: several named quotas ----

CAP = """parameters:
  batas_daerah:
    type: quota of predikat
    values: {2024-01-01: {sangat_baik: "<= 20%"}}
  mode_batas: {type: mode_kuota, values: {2024-01-01: enforce}}
population:
  quotas:
    batas_daerah: {of: predikat_awal, limits: batas_daerah, mode: mode_batas, rounding: floor}
"""


def _run_all(engine: Engine, policy: str, count: int = 5) -> tuple[list[Any], GroupReport]:
    people = []
    for i in range(count):
        record: dict[str, Any] = copy.deepcopy(BASE_RECORD)
        record["nip"] = f"1985071220100100{i:02d}"
        record["perilaku"] = {"atasan": 100, "rekan": 100}
        record["skp"]["indikator"][0]["realisasi"] = 1300
        people.append(record)
    out = list(engine.evaluate_population(policy, people, {"Dinas Kesehatan": {"predikat_organisasi": "istimewa"}},
                                          explain=True))
    [report] = [r for r in out if isinstance(r, GroupReport)]
    return [r for r in out if not isinstance(r, GroupReport)], report


def test_a_national_kurva_proposed_and_a_regional_cap_enforced_both_apply(tmp_path: Path) -> None:
    engine = region(tmp_path, CAP)
    decisions, report = _run_all(engine, "region")
    assert report.mode == "propose" and report.limits == ["sangat_baik: at most floor(70 % × 5) = 3"]
    assert isinstance(report.quotas, list) and [q["quota"] for q in report.quotas] == ["quota", "batas_daerah"]
    cap = report.quotas[1]
    assert cap["mode"] == "enforce" and cap["counts_before"]["sangat_baik"] == 5
    assert cap["counts_after"]["sangat_baik"] == 1 and len(cap["moved"]) == 4
    finals = sorted(d.outputs["evaluasi"]["predikat"] for d in decisions)
    assert finals == ["baik"] * 4 + ["sangat_baik"]  # population.category: after every quota over predikat_awal
    assert "batas_daerah" in decisions[0].trace["population"]["quotas"]
    from kinerja_rules.evaluation.tracing import explain_text

    text = explain_text(decisions[0])
    assert "quota on predikat_awal (propose)" in text and "batas_daerah on predikat_awal (enforce)" in text
    assert engine.policy("region").metadata()["population"]["quotas"]["batas_daerah"]["mode"] == "mode_batas"


def test_an_inherited_named_quota_is_overridden_by_the_fields_that_change(tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "region.yaml").write_text("policy: region\nextends: nasional\n" + CAP)
    (parent / "anak.yaml").write_text("policy: anak\nextends: region\npopulation:\n  quotas:\n"
                                      "    batas_daerah: {override: true, rounding: ceiling}\n")
    from tests.conftest import POLICIES

    engine = Engine.from_paths([parent], library=POLICIES)
    _, report = _run_all(engine, "anak")
    assert isinstance(report.quotas, list)
    assert report.quotas[1]["limits"] == ["sangat_baik: at most ceiling(20 % × 5) = 1"]


def test_a_named_quota_over_another_category_is_refused_at_its_place() -> None:
    problems = diagnose("policy: region\nextends: nasional\nparameters:\n  lain:\n    type: quota of ekspektasi\n"
                        "    values: {2024-01-01: {di_atas_ekspektasi: '<= 20%'}}\npopulation:\n  quotas:\n"
                        "    lain: {of: hasil_kerja, limits: lain, mode: mode_kurva_distribusi}\n")
    assert len(problems) == 1 and problems[0].startswith("E160 ") and "judge one category" in problems[0]


def test_the_inherited_quota_and_a_named_one_can_both_enforce(tmp_path: Path) -> None:
    text = CAP.replace("population:\n", "population:\n  quota: {override: true, mode: mode_batas}\n")
    engine = region(tmp_path, text)
    _, report = _run_all(engine, "region")
    assert isinstance(report.quotas, list) and [q["mode"] for q in report.quotas] == ["enforce", "enforce"]
    assert report.quotas[1]["counts_before"] == report.quotas[0]["counts_after"]  # the cap starts where the kurva left


def test_two_reads_of_one_value_are_the_same_value() -> None:
    assert diagnose("policy: region\nextends: nasional\noutputs:\n"
                    "  region.nol: {type: money, expr: pagu - pagu, min: 0, max: 0}\n"
                    "  region.bobot_nol: {type: percent, expr: bobot_kinerja - bobot_kinerja, min: 0, max: 0}\n") == []
