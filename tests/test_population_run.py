"""Population runs through the engine: the properties a kurva distribusi and an assignment must
keep whatever the records, and the language's checks of the population stage."""

from __future__ import annotations

import copy
import random
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from kinerja_rules import Decision, Engine, ErrorResult, GroupReport, PopulationInputError
from kinerja_rules.population_run import run_population
from kinerja_rules.server import create_app
from tests.conftest import BASE_RECORD, bundled, metric

PREDIKAT = ["sangat_baik", "baik", "butuh_perbaikan", "kurang", "sangat_kurang"]
ORG = ["istimewa", "baik", "butuh_perbaikan", "kurang", "sangat_kurang"]
UNITS = ["Dinas A", "Dinas B", "Dinas C"]
_JSON = msgspec.json.Encoder(decimal_format="number")


def _record(nip: int, unit: str, periode: str, realisasi: int, atasan: int,
            potensi: int | None = None) -> dict[str, Any]:
    record = copy.deepcopy(BASE_RECORD)
    record.update(nip=f"19900101201501{nip:04d}", unit_kerja=unit, periode=periode)
    record["skp"]["indikator"][0]["realisasi"] = realisasi
    record["perilaku"]["atasan"] = atasan
    if potensi is not None:
        record["potensi"] = {"skor": potensi}
    return record


RECORDS = st.lists(st.tuples(st.integers(0, 40), st.sampled_from(UNITS), st.sampled_from(["2025-03", "2025-04"]),
                             st.integers(70, 125).map(lambda x: x * 10), st.sampled_from([55, 65, 75, 85, 95])),
                   min_size=1, max_size=30, unique_by=lambda r: (r[0], r[1], r[2]))
GROUP_DATA = st.fixed_dictionaries({unit: st.sampled_from(ORG) for unit in UNITS})


def _run(engine: Engine, policy: str, records: list[Any], groups: dict[str, Any], **kw: Any) -> tuple[list[Any],
                                                                                                      list[GroupReport]]:
    out = list(engine.evaluate_population(policy, records, groups, **kw))
    return ([r for r in out if not isinstance(r, GroupReport)], [r for r in out if isinstance(r, GroupReport)])


def _groups(orgs: dict[str, str]) -> dict[str, Any]:
    return {unit: {"predikat_organisasi": org} for unit, org in orgs.items()}


@settings(max_examples=25, deadline=None)
@given(RECORDS, GROUP_DATA, st.randoms(use_true_random=False))
def test_shuffling_the_input_changes_no_decision(rows: list[Any], orgs: dict[str, str], shuffle: random.Random) -> None:
    engine = bundled()
    records = [_record(*row) for row in rows]
    results, reports = _run(engine, "plaju", records, _groups(orgs), seats=[], explain=True)
    shuffled = list(range(len(records)))
    shuffle.shuffle(shuffled)
    again, again_reports = _run(engine, "plaju", [records[i] for i in shuffled], _groups(orgs), seats=[], explain=True)
    for position, i in enumerate(shuffled):  # each record's decision, wherever it stood
        assert _JSON.encode(again[position]) == _JSON.encode(results[i])
    assert sorted(map(_JSON.encode, again_reports)) == sorted(map(_JSON.encode, reports))


@settings(max_examples=30, deadline=None)
@given(RECORDS, GROUP_DATA)
def test_after_enforce_every_maximum_holds_and_only_the_bottom_moved_one_step(rows: list[Any],
                                                                             orgs: dict[str, str]) -> None:
    engine = bundled()  # plaju applies the kurva distribusi from 2025
    records = [_record(*row) for row in rows]
    results, reports = _run(engine, "plaju", records, _groups(orgs), seats=[])
    by_group: dict[tuple[str, str], list[Decision]] = {}
    for decision in results:
        assert isinstance(decision, Decision)
        assert isinstance(decision.population, dict)
        group = decision.population["group"]
        by_group.setdefault((group["unit_kerja"], group["periode"]), []).append(decision)
    for report in reports[:-1]:  # the last is the (empty) assignment's
        assert report.mode == "enforce" and report.group is not None
        members = by_group[(report.group["unit_kerja"], report.group["periode"])]
        assert report.size == len(members)
        assert report.violations == report.infeasible  # under enforce a limit not met is one it cannot meet
        for text in report.violations:  # a maximum not met: only the worst category is left over it
            assert "at least" in text or "sangat_kurang" in text
        counts = {p: sum(1 for d in members if d.get("evaluasi.predikat") == p) for p in PREDIKAT}
        assert counts == report.counts_after
        for d in members:
            before, after = d.get("evaluasi.predikat_awal"), d.get("evaluasi.predikat")
            assert PREDIKAT.index(after) >= PREDIKAT.index(before)  # only ever down
            moves = [m for m in report.moved if m["member"] == d.population["member"]]  # type: ignore[index]
            steps = [(PREDIKAT.index(m["before"]), PREDIKAT.index(m["after"])) for m in moves]
            assert all(b + 1 == a for b, a in steps)  # one step per move
            assert len(steps) == PREDIKAT.index(after) - PREDIKAT.index(before)
        for mover in (d for d in members if d.get("evaluasi.predikat") != d.get("evaluasi.predikat_awal")):
            rank = mover.population["rank"]  # type: ignore[index]
            category = mover.get("evaluasi.predikat_awal")
            stayed = [d for d in members if d.get("evaluasi.predikat_awal") == category
                      and d.get("evaluasi.predikat") == category]
            assert all(d.population["rank"] < rank for d in stayed)  # type: ignore[index]


SEATS = st.lists(st.tuples(st.sampled_from([8, 9, 10]), st.sampled_from([0, 60, 80, 95]),
                           st.sampled_from([[], ["pelaksana"], ["fungsional"]])), min_size=0, max_size=5)


@settings(max_examples=30, deadline=None)
@given(RECORDS, SEATS, st.lists(st.integers(40, 100), min_size=30, max_size=30),
       st.sampled_from(["plaju", "sawahlunto"]))
def test_an_assignment_never_double_books_nor_places_the_ineligible(rows: list[Any], seat_rows: list[Any],
                                                                    potensi: list[int], policy: str) -> None:
    engine = bundled()
    records = [_record(*row, potensi=potensi[i]) for i, row in enumerate(rows)]
    for i, record in enumerate(records):
        record["kompetensi"] = [{"nama": "analisis", "level": 1 + i % 5}]
    seats = [{"id": f"s{i}", "unit": "Dinas A", "kelas": kelas, "potensi_minimum": minimum, "jenis_asal": asal}
             for i, (kelas, minimum, asal) in enumerate(seat_rows)] if policy == "plaju" else \
        [{"id": f"s{i}", "kompetensi": [{"nama": "analisis", "level": kelas - 6}]} for i,
         (kelas, _, _) in enumerate(seat_rows)]
    results, reports = _run(engine, policy, records, _groups(dict.fromkeys(UNITS, "istimewa")), seats=seats)
    placed = [(d.population["seat"], i) for i, d in enumerate(results)  # type: ignore[index]
              if isinstance(d, Decision) and d.population["seat"] is not None]  # type: ignore[index]
    assert len({seat for seat, _ in placed}) == len(placed)  # never two people on one seat
    by_id = {s["id"]: s for s in seats}
    for seat_id, i in placed:
        seat, record = by_id[seat_id], records[i]
        if policy == "plaju":  # the policy's eligibility, written out
            assert record["jabatan"]["kelas"] < seat["kelas"] <= record["jabatan"]["kelas"] + 2
            assert record["potensi"]["skor"] >= seat["potensi_minimum"]
            assert not seat["jenis_asal"] or record["jabatan"]["jenis"] in seat["jenis_asal"]
    assignment = reports[-1]
    assert assignment.group is None and assignment.assignments is not msgspec.UNSET
    holders = [row["member"] for row in assignment.assignments if row["member"] is not None]  # type: ignore[union-attr]
    assert len(holders) == len(placed) == len({(h["member"], *h["group"].values()) for h in holders})
    assert [row["seat"] for row in assignment.assignments] == [s["id"] for s in seats]  # type: ignore[union-attr]


def test_a_bad_record_fails_alone_and_the_other_groups_are_decided(engine: Engine) -> None:
    good = [_record(1, "Dinas A", "2025-03", 1000, 80), _record(2, "Dinas A", "2025-03", 1100, 85),
            _record(3, "Dinas B", "2025-03", 1000, 80)]
    no_unit = _record(4, "Dinas A", "2025-03", 1000, 80)
    del no_unit["unit_kerja"]
    twice = _record(1, "Dinas A", "2025-03", 900, 60)
    no_data = _record(5, "Dinas C", "2025-03", 1000, 80)
    groups = _groups({"Dinas A": "baik", "Dinas B": "istimewa"})
    alone, alone_reports = _run(engine, "nasional", good, groups)
    mixed, mixed_reports = _run(engine, "nasional", [good[0], no_unit, good[1], twice, no_data, good[2]], groups)
    assert [_JSON.encode(d) for d in (mixed[0], mixed[2], mixed[5])] == [_JSON.encode(d) for d in alone]
    assert isinstance(mixed[1], ErrorResult) and mixed[1].error.fields[0].path == "unit_kerja"
    assert isinstance(mixed[3], ErrorResult) and "is already a member of group Dinas A / 2025-03" in str(
        mixed[3].error.fields[0])
    assert isinstance(mixed[4], ErrorResult) and "has no data in groups" in str(mixed[4].error.fields[0])
    assert [r.group for r in mixed_reports if r.error is msgspec.UNSET] == [r.group for r in alone_reports]
    assert [r.error for r in mixed_reports if r.error is not msgspec.UNSET] == [
        "groups[\"Dinas C\"]: group 'Dinas C' has no data in groups"]


def test_sorted_input_is_decided_group_by_group(engine: Engine) -> None:
    records = [_record(i, unit, "2025-03", 900 + 10 * i, 80) for unit in UNITS for i in range(5)]
    groups = _groups(dict.fromkeys(UNITS, "baik"))
    read = []

    def feed() -> Any:
        for record in records:
            read.append(record)
            yield record

    stream = engine.evaluate_population("nasional", feed(), groups, sorted_by_group=True)
    first = [next(stream) for _ in range(5)]  # the first unit is out before the last one is read
    assert len(read) < len(records) and all(isinstance(d, Decision) for d in first)
    rest = list(stream)
    together, _ = _run(engine, "nasional", records, groups)
    assert [_JSON.encode(d) for d in first + [r for r in rest if not isinstance(r, GroupReport)]] == \
        [_JSON.encode(d) for d in together]
    back = list(engine.evaluate_population("nasional", records + [_record(9, "Dinas A", "2025-03", 1000, 80)],
                                           groups, sorted_by_group=True))
    late = [r for r in back if isinstance(r, ErrorResult)]
    assert len(late) == 1 and "came earlier in the input, which was said to be sorted" in str(late[0].error.fields[0])


def test_a_record_alone_says_no_population_rule_was_applied(engine: Engine) -> None:
    decision = engine.evaluate("nasional", _record(1, "Dinas A", "2025-03", 1000, 80), explain=True)
    assert decision.population is None and b'"population":null' in _JSON.encode(decision)
    assert decision.trace is not None and decision.trace["population"]["applied"] is False
    assert decision.get("evaluasi.predikat") == decision.get("evaluasi.predikat_awal") == "baik"


def test_the_trace_tells_the_population_story(engine: Engine) -> None:
    records = [_record(i, "Dinas A", "2025-03", 1000, 80) for i in range(4)]
    results, _ = _run(engine, "plaju", records, _groups({"Dinas A": "baik"}), seats=[], explain=True)
    story = results[3].trace["population"]  # type: ignore[union-attr]
    assert story["rank"] == 4 and story["size"] == 4 and story["order"] == [
        "capaian_skp desc", "skor_perilaku desc", "nip asc"]
    assert story["quota"]["before"] == "baik" and story["quota"]["after"] == "butuh_perbaikan"
    assert story["quota"]["moved"] == ["baik -> butuh_perbaikan: rank 4 of 4; baik: at most floor(70 % × 4) = 2"]
    assert results[3].trace["definitions"]["predikat"]["value"] == "butuh_perbaikan"  # type: ignore[index]


def test_what_is_sent_beside_the_records_is_checked_before_anything_is_decided(engine: Engine) -> None:
    record = _record(1, "Dinas A", "2025-03", 1000, 80)
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("nasional", {}, "give groups, keyed by unit_kerja"),
        ("nasional", {"groups": ["Dinas A"]}, "must be an object"),
        ("plaju", {"groups": _groups({"Dinas A": "baik"})}, "give seats"),
        ("plaju", {"groups": {}, "seats": "s1"}, "must be a list of seat objects"),
        ("plaju", {"groups": {}, "seats": [{"id": "a", "unit": "x", "kelas": 99}]}, "seats[0].kelas"),
        ("plaju", {"groups": {}, "seats": [{"id": "a", "unit": "x", "kelas": 9}, {"id": "a", "unit": "y", "kelas": 9}]},
         "seat 'a' is listed twice"),
        ("plaju", {"groups": {}, "seats": [{"id": "a", "unit": "x", "kelas": 9, "kelass": 1}]},
         "did you mean 'seats[0].kelas'"),
        ("plaju", {"groups": {}, "seats": [7]}, "a seat must be an object"),
    ]
    for policy, beside, expected in cases:
        with pytest.raises(PopulationInputError, match=None) as caught:
            list(engine.evaluate_population(policy, [record], beside.get("groups"), beside.get("seats")))
        assert expected in str(caught.value), (policy, beside, str(caught.value))
    with pytest.raises(ValueError, match="has no population stage"):
        Engine.from_paths([_standalone()]).evaluate_population("kecil", [record])


def _standalone() -> Any:
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp())
    (folder / "kecil.yaml").write_text("policy: kecil\neffective: 2024-01-01\ninputs:\n  nip: text\n"
                                       "outputs:\n  nip: {type: text, expr: nip}\n")
    return folder


def test_group_data_too_many_groups_and_a_huge_assignment_are_bounded(engine: Engine,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from kinerja_rules import population_run

    monkeypatch.setattr(population_run, "MAX_GROUPS", 2)
    with pytest.raises(PopulationInputError, match="more than 2 groups"):
        list(engine.evaluate_population("nasional", [], _groups(dict.fromkeys(UNITS, "baik"))))
    monkeypatch.setattr(population_run, "MAX_OPTIMAL_WORK", 10)
    records = [_record(i, "Dinas A", "2025-03", 1000, 80) for i in range(3)]
    for record in records:
        record["kompetensi"] = [{"nama": "analisis", "level": 3}]
    seats = [{"id": f"s{i}", "kompetensi": [{"nama": "analisis", "level": 3}]} for i in range(3)]
    with pytest.raises(PopulationInputError, match="too large for one run"):
        list(engine.evaluate_population("sawahlunto", records, _groups({"Dinas A": "baik"}), seats))


def test_scores_are_exact_when_they_repeat(engine: Engine) -> None:
    record = _record(1, "Dinas A", "2025-03", 1000, 80)
    record["kompetensi"] = [{"nama": "analisis", "level": 2}]
    seats = [{"id": "analis", "kompetensi": [{"nama": "analisis", "level": 3}]}]
    _, reports = _run(engine, "sawahlunto", [record], _groups({"Dinas A": "baik"}), seats=seats)
    [row] = reports[-1].assignments  # type: ignore[misc]
    assert row["score"] == Decimal(2) / Decimal(3)


# ---- the language of the population stage -------------------------------------------------

REGION = "policy: region\nextends: nasional\n"
QUOTA = ("population:\n  quota:\n    override: true\n    of: {of}\n    limits: {limits}[group.predikat_organisasi]\n"
         "    mode: {mode}\n")
GROUPING = ("population:\n  grouping:\n    override: true\n    by: [unit_kerja, periode]\n    member: nip\n"
            "    order: [{order}]\n")
_LANGUAGE = {
    "population read without a null test": (
        "definitions:\n  x: {type: predikat, expr: population.category}\n", "E106", "may be null", (4, 29)),
    "a quota's limits read by a definition": (
        "definitions:\n  x: {type: integer, expr: count(kurva_distribusi)}\n", "E104",
        "holds the limits of a population quota", (4, 34)),
    "the ordering reads what the stage decides": (
        GROUPING.format(order="tpp_diterima desc"), "E162", "(through tpp_diterima)", (8, 13)),
    "a cycle across the stages through a definition": (
        "definitions:\n  skor: {expr: 'if population != null then population.rank else 0'}\n"
        + GROUPING.format(order="skor desc"), "E162", "reads `population` (through skor)", (10, 13)),
    "an ordering without its direction": (GROUPING.format(order="capaian_skp"), "E160", "ends with desc or asc",
                                          (8, 13)),
    "an ordering by a list": (GROUPING.format(order="cuti desc"), "E161", "not list of record", (8, 13)),
    "a group named by a decimal": (
        "population:\n  grouping:\n    override: true\n    by: [capaian_skp]\n    member: nip\n", "E161",
        "capaian_skp' is decimal", (6, 10)),
    "a mode that is not report, enforce or propose": (
        QUOTA.format(of="predikat_awal", limits="kurva_distribusi", mode="group.predikat_organisasi"), "E161",
                                             "an enumeration of report, enforce and propose", (8, 11)),
    "a quota of another category": (
        QUOTA.format(of="hasil_kerja", limits="kurva_distribusi", mode="mode_kurva_distribusi"), "E102",
                                    "must be predikat", (6, 9)),
    "limits that are not a quota parameter": (
        QUOTA.format(of="predikat_awal", limits="pagu_tpp", mode="mode_kurva_distribusi"), "E160",
                                              "'pagu_tpp' is not a `quota of …` parameter", (7, 13)),
    "an unknown rounding": (
        QUOTA.format(of="predikat_awal", limits="kurva_distribusi", mode="mode_kurva_distribusi")
        + "    rounding: round\n", "E160", "rounding 'round' is one of", (9, 15)),
    "a quota changed without override": (
        "population:\n  quota:\n    of: predikat_awal\n    limits: kurva_distribusi[group.predikat_organisasi]\n"
        "    mode: mode_kurva_distribusi\n", "E022", "already defined by 'nasional'", (4, 3)),
    "an unknown part": ("population:\n  kuota: {of: predikat_awal}\n", "E160", "did you mean 'quota'", (4, 3)),
    "an assignment without seats": (
        "population:\n  assignment: {eligible: 'true', score: '1'}\n", "E160", "needs its seats declared", (4, 3)),
    "a score that may be null": (
        "seats:\n  id: text\npopulation:\n  assignment: {eligible: 'true', score: potensi.skor}\n", "E161",
        "the assignment's score is a number, not optional decimal", (6, 41)),
    "a group definition over a record": (
        "group_definitions:\n  x: {type: integer, expr: jabatan.kelas}\n", "E105", "unknown name 'jabatan'", (4, 28)),
    "a group definition that hides a fixed field": (
        "group_definitions:\n  rank: {type: integer, expr: size}\n", "E160", "would hide population.rank", (4, 3)),
    "a quota share over 100 %": (
        "parameters:\n  kurva_distribusi:\n    override: true\n    type: quota of predikat\n"
        "    key: predikat_organisasi\n"
        "    values:\n      2024-01-01:\n        istimewa: {sangat_baik: '<= 170%'}\n        baik: {}\n"
        "        butuh_perbaikan: {}\n        kurang: {}\n        sangat_kurang: {}\n", "E052", "at most 100%",
                                 (10, 9)),
    "a quota bound of the wrong shape": (
        "parameters:\n  kurva_distribusi:\n    override: true\n    type: quota of predikat\n"
        "    key: predikat_organisasi\n"
        "    values:\n      2024-01-01:\n        istimewa: {sangat_baik: 'max 70%'}\n        baik: {baik: '<= 70%'}\n"
        "        butuh_perbaikan: {baik: '<= 70%'}\n        kurang: {baik: '<= 70%'}\n"
        "        sangat_kurang: {bagus: '<= 70%'}\n", "E052", "write <=, >= or = and a share", (10, 9)),
    "a shortlist past its bound": (
        "seats:\n  id: text\npopulation:\n"
        "  assignment: {eligible: 'true', score: '1', shortlist: 100000000000000000000}\n",
        "E160", "'shortlist' is between 0 and 100", (6, 57)),
    "a long shortlist": (
        "seats:\n  id: text\npopulation:\n  assignment: {eligible: 'true', score: '1', shortlist: 1000}\n",
        "E160", "'shortlist' is between 0 and 100", (6, 57)),
    "an ordering that is not a list": (
        "population:\n  grouping: {override: true, by: [unit_kerja], member: nip, order: capaian_skp desc}\n",
        "E010", "expected a list, got 'str' (at order)", (4, 61)),
    "a quota of a text": (
        "parameters:\n  q: {type: quota of text, values: {2024-01-01: {}}}\n", "E050", "a quota is of an enumeration",
                          (4, 7)),
}


@pytest.mark.parametrize("case", sorted(_LANGUAGE))
def test_the_population_stage_is_checked_with_its_place(case: str) -> None:
    text, code, fragment, (line, column) = _LANGUAGE[case]
    report = bundled().validate_text(REGION + text, "region.yaml")
    found = [d for d in report.problems if d.code == code]
    assert found, (case, [d.render() for d in report.problems])
    assert fragment in found[0].message, found[0].render()
    assert found[0].span is not None and (found[0].span.line, found[0].span.column) == (line, column), found[0].render()


def _region(engine: Engine, text: str) -> Any:
    """The region `text` declares, checked against the bundled parents."""
    report = engine.validate_text(text, "region.yaml")
    assert report.ok, [d.render() for d in report.problems]
    return report.policies["region"]


def test_a_region_extends_the_population_stage(engine: Engine) -> None:
    """A region overrides the quota's parameter from a date and adds a value of the group: dated
    parameters and extends work for the new constructs too."""
    text = REGION + (
        "effective: 2024-01-01\n"
        "parameters:\n  kurva_distribusi:\n    extend: true\n    values:\n      2025-03-01:\n"
        "        baik: {sangat_baik: '<= 20%'}\n"
        "  mode_kurva_distribusi: {override: true, type: mode_kuota, values: {2024-01-01: enforce}}\n"
        "group_definitions:\n  rata_capaian:\n    type: decimal\n"
        "    expr: round(mean(m.capaian_skp for m in members), 2, half_up)\n"
        "definitions:\n"
        "  rata_unit: {type: optional decimal, expr: 'if population != null then population.rata_capaian else null'}\n"
        "outputs:\n  region.rata_unit: {type: optional decimal, expr: rata_unit}\n")
    policy = _region(engine, text)
    records = [_record(i, "Dinas A", period, 1150, 95) for i in range(5) for period in ("2025-02", "2025-03")]
    results, reports = [], []
    for item in run_population(policy, records, _groups({"Dinas A": "baik"})):
        (reports if isinstance(item, GroupReport) else results).append(item)
    feb, mar = reports
    assert feb.limits == ["baik: at most floor(70 % × 5) = 3", "butuh_perbaikan or kurang: at least 1"]
    # from March the key's sangat_baik limit is added; its inherited limits are kept (an extension merges)
    assert mar.limits == ["baik: at most floor(70 % × 5) = 3", "butuh_perbaikan or kurang: at least 1",
                          "sangat_baik: at most floor(20 % × 5) = 1"]
    assert mar.counts_after["sangat_baik"] == 1 and mar.counts_after["baik"] == 3  # enforced, one step down
    assert feb.values == {"rata_capaian": Decimal("115.00")}
    assert all(d.get("region.rata_unit") == Decimal("115.00") for d in results)  # type: ignore[union-attr]


# ---- the surfaces: kinerja eval and the HTTP endpoint --------------------------------------

def _files(tmp_path: Any, records: list[Any], groups: Any) -> tuple[Any, Any]:
    inputs, beside = tmp_path / "records.jsonl", tmp_path / "groups.json"
    inputs.write_bytes(b"\n".join(_JSON.encode(r) for r in records) + b"\n{not json\n")
    beside.write_bytes(groups if isinstance(groups, bytes) else _JSON.encode(groups))
    return inputs, beside


def test_kinerja_eval_decides_a_population_and_writes_the_reports(tmp_path: Any, engine: Engine,
                                                                   capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    from kinerja_rules.cli import main

    records = [_record(i, unit, "2025-03", 900 + 40 * i, 85) for unit in ("Dinas A", "Dinas B") for i in range(4)]
    groups = _groups({"Dinas A": "baik", "Dinas B": "istimewa"})
    inputs, beside = _files(tmp_path, records, groups)
    report = tmp_path / "reports.jsonl"
    code = main(["eval", "nasional", "--input", str(inputs), "--groups", str(beside), "--report", str(report)])
    lines = capsysbinary.readouterr().out.splitlines()
    assert code == 1 and len(lines) == len(records) + 1  # the line that is not JSON is its own error
    results, reports = _run(engine, "nasional", records, groups)
    assert lines[:-1] == [_JSON.encode(r) for r in results]
    assert b'"line":9' in lines[-1] and b"invalid JSON" in lines[-1]
    assert report.read_bytes().splitlines() == [_JSON.encode(r) for r in reports]
    with TestClient(create_app(engine)) as client:  # the endpoint answers what the command prints
        answer = client.post("/v1/policies/nasional/evaluate/population", json={"records": records, "groups": groups})
        assert answer.status_code == 200, answer.text
        tagged = [b'{"result":"decision",' + line[1:] for line in lines[:-1]]
        assert answer.content == b'{"results":[' + b",".join(tagged) + b'],"groups":[' + b",".join(
            _JSON.encode(r) for r in reports) + b"]}"


@pytest.mark.parametrize("groups, args, message", [
    (None, ["--report", "r.jsonl"], "needs each group's data (predikat_organisasi)"),
    (b"{", [], "invalid JSON in"),
    (b'{"Dinas A": {"predikat_organisasi": "baik"}, "Dinas A": {}}', [], "gives the key 'Dinas A' more than once"),
    (b"[" * 100_000 + b"]" * 100_000, [], "nests too deeply"),
    (b'["Dinas A"]', [], "must hold a JSON object"),
    (b"{}", ["--seats", "groups.json"], "must hold a JSON list of seat objects"),
    (b"{}", ["--sorted-by-group", "--policies", "policies"], ""),
])
def test_kinerja_eval_refuses_what_it_cannot_use_beside_the_records(tmp_path: Any, groups: bytes | None,
                                                                    args: list[str],
                                                                    message: str,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from kinerja_rules.cli import main
    from tests.conftest import ROOT

    inputs, beside = _files(tmp_path, [_record(1, "Dinas A", "2025-03", 1000, 80)], groups or b"{}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").symlink_to(ROOT / "policies")
    command = ["eval", "nasional", "--input", str(inputs), *([] if groups is None else ["--groups", str(beside)]),
               *args]
    assert main(command) == (2 if message else 1)
    assert message in capsys.readouterr().err


def test_kinerja_eval_population_options_need_a_population_stage(tmp_path: Any,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from kinerja_rules.cli import main

    folder = _standalone()
    (tmp_path / "g.json").write_text("{}")
    assert main(["eval", "kecil", "--policies", str(folder), "--groups", str(tmp_path / "g.json")]) == 2
    assert "has no population stage" in capsys.readouterr().err
    assert main(["eval", "nasional", "--sorted-by-group", "--input", str(tmp_path / "g.json")]) == 2
    assert "--sorted-by-group is for a population run" in capsys.readouterr().err


def _post(client: Any, policy: str, body: Any) -> Any:
    return client.post(f"/v1/policies/{policy}/evaluate/population", content=body if isinstance(body, bytes)
                       else _JSON.encode(body), headers={"content-type": "application/json"})


def test_the_population_endpoint_refuses_hostile_requests_with_their_place(engine: Engine) -> None:
    from kinerja_rules.server.bodies import Limits

    record = _record(1, "Dinas A", "2025-03", 1000, 80)
    groups = _groups({"Dinas A": "baik"})
    deep: Any = "x"
    for _ in range(40):
        deep = {"a": deep}
    cases: list[tuple[str, Any, int, str, str]] = [
        ("nasional", {"records": [record]}, 422, "invalid-population", "give groups"),
        ("plaju", {"records": [record], "groups": groups}, 422, "invalid-population", "give seats"),
        ("plaju", {"records": [record], "groups": groups, "seats": [{"id": 1}]}, 422, "invalid-population",
         "seats[0].id"),
        ("nasional", {"records": [record], "groups": {"Dinas A": deep}}, 422, "too-deep", 'groups["Dinas A"]'),
        ("plaju", {"records": [record], "groups": groups, "seats": [deep]}, 422, "too-deep", "seats[0]"),
        ("nasional", b'{"records": [], "groups": {"Dinas A": {"predikat_organisasi": "baik", "predikat_organisasi": '
                     b'"kurang"}}}', 422, "duplicate-key", "predikat_organisasi"),
        ("nasional", {"records": [record] * 3, "groups": groups}, 422, "batch-too-long", "at most 2 per request"),
        ("nasional", {"records": [record], "groups": groups, "sorted": True}, 422, "invalid-body", "sorted"),
        ("nasional", {"records": [record], "groups": ["Dinas A"]}, 422, "invalid-body", "groups"),
        ("nasional", b'{"records": [', 400, "malformed-json", ""),
        ("tidak_ada", {"records": []}, 404, "unknown-policy", "tidak_ada"),
    ]
    with TestClient(create_app(engine, limits=Limits(max_batch=2, max_depth=16))) as client:
        for policy, body, status, kind, fragment in cases:
            answer = _post(client, policy, body)
            assert answer.status_code == status, (body if isinstance(body, bytes) else kind, answer.text)
            problem = answer.json()
            said = " ".join([problem.get("detail", ""), *(e["path"] for e in problem.get("errors", []))])
            assert problem["type"].endswith(kind) and fragment in said, (kind, answer.text)
        bad = _post(client, "nasional", b'{"records": [{"nip": 1}, ' + _JSON.encode(record) + b'], "groups": '
                    + _JSON.encode(groups) + b"}")
        assert bad.status_code == 200
        first, second = bad.json()["results"]
        assert first["result"] == "error" and second["result"] == "decision"  # one bad record fails alone
        assert metric(client.get("/metrics").text, "kinerja_batch_records_total", decided_in="service") == 2


def test_the_population_endpoint_needs_a_population_stage() -> None:
    with TestClient(create_app(Engine.from_paths([_standalone()]))) as client:
        answer = _post(client, "kecil", {"records": [{"nip": "1"}]})
        assert answer.status_code == 422 and answer.json()["type"].endswith("no-population-stage")


def test_the_collector_is_paused_only_while_a_run_is_under_way(engine: Engine) -> None:
    import gc

    records = [_record(i, "Dinas A", "2025-03", 1000, 80) for i in range(3)]
    groups = _groups({"Dinas A": "baik"})
    assert gc.isenabled()
    run = engine.evaluate_population("nasional", records, groups)
    next(run)
    assert not gc.isenabled()  # a run holds its groups: the oldest generation is not walked meanwhile
    other = engine.evaluate_population("nasional", records, groups)
    list(other)
    assert not gc.isenabled()  # the first run is still under way
    run.close()  # a run given up resumes the collector too
    assert gc.isenabled()
    gc.disable()
    try:
        list(engine.evaluate_population("nasional", records, groups))
        assert not gc.isenabled()  # a caller's own choice is kept
    finally:
        gc.enable()


def test_a_policy_says_what_a_population_run_needs(engine: Engine) -> None:
    with TestClient(create_app(engine)) as client:
        nasional = client.get("/v1/policies/nasional").json()
        plaju = client.get("/v1/policies/plaju").json()
    kurva = nasional["parameters"]["kurva_distribusi"]
    assert kurva["type"] == "quota of predikat" and kurva["key"] == "predikat_organisasi"
    assert kurva["values"][0]["value"]["baik"] == ["baik <= 70%", "butuh_perbaikan or kurang >= 1"]
    assert kurva["values"][0]["value"]["sangat_kurang"][-1] == "sangat_baik <= 0"  # "= 0": at most none
    stage = nasional["population"]
    assert stage["group_by"] == ["unit_kerja", "periode"] and stage["groups_keyed_by"] == "unit_kerja"
    assert stage["order"] == ["capaian_skp desc", "skor_perilaku desc", "nip asc"]
    assert stage["group_data_schema"]["required"] == ["predikat_organisasi"] and stage["seat_schema"] is None
    assert stage["quota"]["of"] == "predikat_awal" and stage["assignment"] is None
    assert plaju["population"]["assignment"]["method"] == "priority"
    assert plaju["population"]["seat_schema"]["required"] == ["id", "unit", "kelas"]


def test_the_readable_trace_tells_the_population_story(engine: Engine) -> None:
    from kinerja_rules.evaluation.tracing import explain_text

    records = [_record(i, "Dinas A", "2025-03", 1000, 80, potensi=90 - i) for i in range(4)]
    seats = [{"id": "kasi", "unit": "Dinas A", "kelas": 9}]
    results, _ = _run(engine, "plaju", records, _groups({"Dinas A": "baik"}), seats=seats, explain=True)
    last = explain_text(results[3], policy=engine.policy("plaju")).splitlines()
    assert last[1] == ("population: rank 4 of 4 in unit_kerja Dinas A, periode 2025-03, by capaian_skp desc, "
                       "skor_perilaku desc, nip asc")
    assert "  moved baik -> butuh_perbaikan: rank 4 of 4; baik: at most floor(70 % × 4) = 2" in last
    assert "  predikat_awal baik, after the quota butuh_perbaikan" in last
    assert last[5] == "  assignment (priority): no seat; eligible for kasi"
    first = explain_text(results[0], policy=engine.policy("plaju")).splitlines()
    assert first[4] == ("  assignment (priority): seat kasi with score 84, against 199001012015010001 (83.6), "
                        "199001012015010002 (83.2); eligible for kasi")
    alone = explain_text(engine.evaluate("plaju", records[0], explain=True)).splitlines()
    assert alone[1] == "population: none applied (the record was decided alone)"


def test_the_population_endpoint_needs_a_key_for_its_policy(engine: Engine) -> None:
    import json

    from kinerja_rules.server import KeyRing, hash_key

    ring = KeyRing.parse(json.dumps({"keys": [{"name": "payroll", "sha256": hash_key("kr_payroll"),
                                               "policies": ["nasional"]}]}), "test keys")
    body = {"records": [_record(1, "Dinas A", "2025-03", 1000, 80)], "groups": _groups({"Dinas A": "baik"})}
    with TestClient(create_app(engine, keys=ring)) as client:
        assert _post(client, "nasional", body).status_code == 401
        key = {"authorization": "Bearer kr_payroll", "content-type": "application/json"}
        ok = client.post("/v1/policies/nasional/evaluate/population", content=_JSON.encode(body), headers=key)
        assert ok.status_code == 200 and ok.json()["results"][0]["result"] == "decision"
        other = client.post("/v1/policies/plaju/evaluate/population", content=_JSON.encode(body), headers=key)
        assert other.status_code == 403 and other.json()["type"].endswith("forbidden")


@pytest.mark.parametrize("values, share, expected", [
    ([Decimal(3), Decimal(1), Decimal(2)], Decimal("0.5"), Decimal(2)),
    ([Decimal(3), Decimal(1), Decimal(2)], Decimal(0), Decimal(1)),
    ([Decimal(3), Decimal(1), Decimal(2)], Decimal(1), Decimal(3)),
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], Decimal("0.8"), 8),
    ([Decimal("2.5")], Decimal("0.99"), Decimal("2.5")),
])
def test_percentile_is_the_nearest_rank(values: list[Any], share: Decimal, expected: Any) -> None:
    from kinerja_rules.functions import percentile

    assert percentile(values, share) == expected


def test_percentile_of_nothing_or_past_100_percent_is_an_error() -> None:
    from kinerja_rules.functions import percentile

    with pytest.raises(ValueError, match="empty list"):
        percentile([], Decimal("0.5"))
    with pytest.raises(ValueError, match="between 0% and 100%"):
        percentile([Decimal(1)], Decimal("1.5"))


def test_aggregates_over_the_group_in_group_definitions(engine: Engine) -> None:
    text = REGION + (
        "group_definitions:\n"
        "  p80: {type: decimal, expr: 'percentile([m.capaian_skp for m in members], 80%)'}\n"
        "  bagian_baik: {type: decimal, expr: 'count(m for m in members where m.predikat_awal = baik) / size'}\n"
        "  tertinggi: {type: decimal, expr: 'max(m.skor_perilaku for m in members)'}\n")
    records = [_record(i, "Dinas A", "2025-03", 900 + 50 * i, 60 + 4 * i) for i in range(10)]
    reports = [r for r in run_population(_region(engine, text), records, _groups({"Dinas A": "baik"}))
               if isinstance(r, GroupReport)]
    assert reports[0].values == {"p80": Decimal("120.00"), "bagian_baik": Decimal("0.5"), "tertinggi": Decimal("96.00")}


def test_a_unit_named_with_a_colon_keeps_its_place_in_the_error(engine: Engine) -> None:
    record = _record(1, "Dinas: Kesehatan", "2025-03", 1000, 80)
    [result, report] = list(engine.evaluate_population("nasional", [record], _groups({"Dinas A": "baik"})))
    assert isinstance(result, ErrorResult) and isinstance(report, GroupReport)
    [field] = result.error.fields
    assert field.path == 'groups["Dinas: Kesehatan"]'
    assert field.message == "group 'Dinas: Kesehatan' has no data in groups"
    assert report.error == "groups[\"Dinas: Kesehatan\"]: group 'Dinas: Kesehatan' has no data in groups"
