"""What would it take: the fewest, smallest changes to what a person can change that reach a goal,
searched exactly in the compiled policy, within a time budget."""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from kinerja_rules import Engine, PolicyError
from kinerja_rules.server import create_app
from kinerja_rules.whatif import WhatIfError, goal_of, what_if
from tests.conftest import BASE_RECORD, POLICIES, ROOT
from tests.test_server import assert_problem

HEAD = 'policy: daerah\nversion: "1"\nextends: nasional\neffective: 2025-01-01\n'


def _absent(days: int) -> dict[str, Any]:
    record = copy.deepcopy(BASE_RECORD)
    record["presensi"]["tanpa_keterangan_hari"] = days
    return record


def _reaches(engine: Engine, record: dict[str, Any], goal: Any, changes: dict[str, Any]) -> bool:
    changed = copy.deepcopy(record)
    for path, value in changes.items():
        tree: Any = changed
        keys = [int(k) if k.isdigit() else k for k in path.replace("[", ".").replace("]", "").split(".")]
        for key in keys[:-1]:
            tree = tree[key]
        tree[keys[-1]] = value
    return goal.met(engine.evaluate("nasional", changed).outputs)


def test_a_reachable_goal_takes_the_fewest_and_smallest_changes(engine: Engine) -> None:
    record = _absent(2)
    now = engine.evaluate("nasional", record).outputs["tpp"]["diterima"]
    goal = goal_of(engine, "nasional", {"output": "tpp.diterima", "at_least": now + 1})
    found = what_if(engine, "nasional", record, goal, seconds=10)
    assert (found.reachable, found.optimal) == (True, True)
    assert found.changes == [{"path": "presensi.tanpa_keterangan_hari", "from": 2, "to": 1}]
    assert found.outputs == engine.evaluate("nasional", _absent(1)).outputs and found.outputs["tpp"]["diterima"] > now


def test_two_inputs_when_one_is_not_enough_and_no_cheaper_pair_reaches(engine: Engine) -> None:
    record = copy.deepcopy(BASE_RECORD)  # realisasi 1000 of 1000, perilaku.atasan 80
    goal = goal_of(engine, "nasional", {"output": "evaluasi.predikat", "at_least": "sangat_baik"})
    found = what_if(engine, "nasional", record, goal, seconds=30)
    assert (found.reachable, found.optimal) == (True, True) and len(found.changes) == 2
    assert found.outputs["evaluasi"]["predikat"] == "sangat_baik"
    cost = {"perilaku.atasan": 1, "skp.indikator[0].realisasi": 1}  # both step 1
    spent = sum(abs(Decimal(c["to"]) - Decimal(c["from"])) / cost[c["path"]] for c in found.changes)
    # checked by brute force, independently: no single input reaches it, and no pair of changes costing less
    for value in range(81, 101):
        assert not _reaches(engine, record, goal, {"perilaku.atasan": value})
    for value in range(1001, 1201):
        assert not _reaches(engine, record, goal, {"skp.indikator[0].realisasi": value})
    for up, more in itertools.product(range(1, 21), range(1, 201)):
        if up + more < spent:
            assert not _reaches(engine, record, goal, {"perilaku.atasan": 80 + up,
                                                       "skp.indikator[0].realisasi": 1000 + more})


def test_a_goal_beyond_the_bounds_is_not_reachable(engine: Engine) -> None:
    goal = goal_of(engine, "nasional", {"output": "tpp.diterima", "at_least": 10 ** 9})
    found = what_if(engine, "nasional", _absent(2), goal, seconds=30)
    assert (found.reachable, found.optimal, found.changes) == (False, True, [])


def _wide(tmp_path: Path) -> Engine:
    (tmp_path / "daerah.yaml").write_text(HEAD + """
dapat_diubah:
  perilaku.atasan: {override: true, max: 100, step: 0.01}
  skp.indikator[*].realisasi: {override: true, max: target * 1.2, step: 0.01}
""")
    return Engine.from_paths([POLICIES, tmp_path / "daerah.yaml"])


def test_a_search_out_of_budget_is_unknown_or_not_optimal(tmp_path: Path) -> None:
    engine = _wide(tmp_path)
    record = _absent(2)
    hopeless = goal_of(engine, "daerah", {"output": "tpp.diterima", "at_least": 10 ** 9})
    found = what_if(engine, "daerah", record, hopeless, seconds=0.2)
    assert (found.reachable, found.optimal, found.changes) == ("unknown", False, [])
    far = goal_of(engine, "daerah", {"output": "evaluasi.predikat", "at_least": "sangat_baik"})
    found = what_if(engine, "daerah", copy.deepcopy(BASE_RECORD), far, seconds=0.2)
    assert (found.reachable, found.optimal) == (True, False)  # every input at its far bound reaches it
    assert {c["path"] for c in found.changes} == {"perilaku.atasan", "skp.indikator[0].realisasi"}
    assert found.outputs["evaluasi"]["predikat"] == "sangat_baik"


@pytest.mark.parametrize("goal, path, words", [
    ({"output": "tpp.diterimaa", "at_least": 1}, "goal.output", "did you mean 'tpp.diterima'?"),
    ({"output": "evaluasi.dasar_penilaian", "at_least": "capaian_skp"}, "goal.output", "unordered"),
    ({"output": "evaluasi.predikat", "at_least": "hebat"}, "goal.at_least", "one of sangat_baik"),
    ({"output": "tpp.diterima", "at_least": "banyak"}, "goal.at_least", "a number"),
    ({"output": "tpp.diterima", "at_least": "9" * 40}, "goal.at_least", "at most 30"),
    ({"output": "tpp.diterima", "at_least": 1, "at_most": 2}, "goal.at_most", "'output' and 'at_least' only"),
    ({"output": "tindak_lanjut.pembinaan", "at_least": 1}, "goal.output", "needs a number or an ordered"),
])
def test_a_bad_goal_is_refused_naming_its_field(engine: Engine, goal: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(WhatIfError) as refused:
        goal_of(engine, "nasional", goal)
    assert refused.value.fields[0].path == path and words in str(refused.value)


@pytest.mark.parametrize("body, words", [
    ("presensi.hari_kerjaa: {min: 0}", "'hari_kerjaa' is not a field of the record; did you mean 'hari_kerja'?"),
    ("unit_kerja: {max: 3}", "a changeable input is a number, and this is text"),
    ("presensi.hari_kerja: {step: 1}", "give 'min'"),
    ("presensi.hari_kerja: {min: 0, step: 0.5}", "positive whole number"),
    ("perilaku.rekan_kerja[*]: {max: 100, step: -1}", "'step' is a positive number"),
    ("skp.indikator[*].realisasi: {override: true, max: targett * 2}",
     "targett is not a number of the item; did you mean 'target'?"),
    ("skp.indikator[*].realisasi: {override: true, max: nama}", "nama is not a number of the item"),
    ("perilaku.rekan_kerja[*]: {max: 'max(1, 2)'}", "a bound is a number or arithmetic"),
    ("skp[*].x: {max: 1}", "skp[*] names each item of a list"),
])
def test_a_bad_dapat_diubah_is_an_error_at_its_place(tmp_path: Path, body: str, words: str) -> None:
    (tmp_path / "daerah.yaml").write_text(HEAD + "dapat_diubah:\n  " + body + "\n")
    with pytest.raises(PolicyError) as refused:
        Engine.from_paths([POLICIES, tmp_path / "daerah.yaml"])
    found = [d for d in refused.value.diagnostics if d.code == "E149"]
    assert found and words in found[0].message, [d.render() for d in refused.value.diagnostics]
    assert found[0].span is not None and found[0].span.line == 6


def test_what_if_over_http(engine: Engine) -> None:
    from kinerja_rules.server.bodies import Limits

    # a budget no busy machine runs out of: proving a goal unreachable decides every candidate
    with TestClient(create_app(engine, limits=Limits(what_if_seconds=60))) as client:
        record = _absent(2)
        now = client.post("/v1/policies/nasional/evaluate", json={"record": record}).json()["outputs"]["tpp"]
        answer = client.post("/v1/policies/nasional/what-if", json={
            "record": record, "goal": {"output": "tpp.diterima", "at_least": now["diterima"] + 1}})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["reachable"] is True and body["optimal"] is True
        assert body["changes"] == [{"path": "presensi.tanpa_keterangan_hari", "from": 2, "to": 1}]
        beyond = client.post("/v1/policies/nasional/what-if", json={
            "record": record, "goal": {"output": "tpp.diterima", "at_least": 10 ** 9}}).json()
        assert beyond["reachable"] is False and beyond["changes"] == []
        problem = assert_problem(client.post("/v1/policies/nasional/what-if", json={
            "record": record, "goal": {"output": "evaluasi.dasar_penilaian", "at_least": "x"}}), 422, "invalid-goal")
        assert problem["errors"] == [{"path": "goal.output", "message": problem["errors"][0]["message"]}]
        assert_problem(client.post("/v1/policies/nasional/what-if", json={
            "record": {**record, "periode": "2025-13"}, "goal": {"output": "tpp.diterima", "at_least": 1}}), 422,
            "invalid-record")
        assert_problem(client.post("/v1/policies/tidak-ada/what-if", json={
            "record": record, "goal": {"output": "tpp.diterima", "at_least": 1}}), 404, "unknown-policy")
        assert_problem(client.post("/v1/policies/nasional/what-if", json={"record": record}), 422, "invalid-body")


def test_what_if_on_the_cli(tmp_path: Path) -> None:
    (tmp_path / "pegawai.json").write_text(json.dumps(_absent(2)))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "what-if", "nasional", "--policies",
                               str(POLICIES), "-i", "pegawai.json", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})

    found = run("--goal", "evaluasi.predikat=sangat_baik", "--what-if-seconds", "60")
    assert found.returncode == 0 and json.loads(found.stdout)["reachable"] is True, found.stderr
    beyond = run("--goal", "tpp.diterima=1000000000", "--what-if-seconds", "60")
    assert beyond.returncode == 1 and json.loads(beyond.stdout)["reachable"] is False
    bad = run("--goal", "tpp.diterima")
    assert bad.returncode == 2 and "write OUTPUT=VALUE" in bad.stderr
    slow = run("--goal", "tpp.diterima=1", "--what-if-seconds", "61")
    assert slow.returncode == 2 and "at most 60 seconds" in slow.stderr
    serving = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "serve", "--what-if-seconds", "0"],
                             capture_output=True, text=True, timeout=60,
                             env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert serving.returncode == 2 and "--what-if-seconds" in serving.stderr


def test_the_service_takes_its_what_if_budget(engine: Engine, tmp_path: Path) -> None:
    from kinerja_rules.server.bodies import Limits

    wide = _wide(tmp_path)
    with TestClient(create_app(wide, limits=Limits(what_if_seconds=0.2))) as client:
        answer = client.post("/v1/policies/daerah/what-if", json={
            "record": _absent(2), "goal": {"output": "tpp.diterima", "at_least": 10 ** 9}}).json()
    assert answer["reachable"] == "unknown" and answer["optimal"] is False
