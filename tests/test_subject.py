"""Every decision and record error names whom it is for (`subject`), and tables put it first."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from kinerja_rules import Engine, PolicyError
from kinerja_rules.decision import Decision, ErrorResult
from kinerja_rules.server import create_app
from kinerja_rules.server.decisions import Recorder
from kinerja_rules.store import SQLiteStore
from tests.conftest import BASE_RECORD, POLICIES, ROOT

WHO = {"nip": BASE_RECORD["nip"], "periode": BASE_RECORD["periode"]}


def _with(**changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(BASE_RECORD)
    record.update(changes)
    return record


def test_a_decision_and_a_record_error_name_their_subject(engine: Engine) -> None:
    decided = engine.evaluate_safely("nasional", BASE_RECORD)
    assert isinstance(decided, Decision) and decided.subject == WHO
    refused = engine.evaluate_safely("nasional", _with(status="bukan"))
    assert isinstance(refused, ErrorResult) and refused.subject == WHO  # its identity is valid
    for bad in (_with(nip="123"), _with(periode="2025-13"), _with(nip=["198507122010011003"])):
        nameless = engine.evaluate_safely("nasional", bad)
        assert isinstance(nameless, ErrorResult) and nameless.subject is None  # an invalid identity names no one
    assert engine.evaluate_safely("nasional", [1, 2]).subject is None  # type: ignore[union-attr]


def test_a_policy_names_more_of_its_subject(tmp_path: Path) -> None:
    region = tmp_path / "daerah.yaml"
    region.write_text('policy: daerah\nversion: "1"\nextends: nasional\neffective: 2025-01-01\n'
                      "subject: [nip, periode, nama]\ninputs:\n  nama: optional text\n")
    engine = Engine.from_paths([POLICIES, region])
    assert engine.evaluate("daerah", _with(nama="Siti Aminah")).subject == {**WHO, "nama": "Siti Aminah"}
    assert engine.evaluate("daerah", BASE_RECORD).subject == {**WHO, "nama": None}
    region.write_text(region.read_text().replace("nama]", "namaa]"))
    with pytest.raises(PolicyError) as refused:
        Engine.from_paths([POLICIES, region])
    assert any(d.code == "E034" and "'namaa', which is not an input" in d.message for d in refused.value.diagnostics)


def test_a_population_run_and_a_batch_name_each_subject(engine: Engine, tmp_path: Path) -> None:
    groups = json.loads((ROOT / "examples" / "groups.json").read_text())
    records = [json.loads(line) for line in (ROOT / "examples" / "batch.jsonl").read_text().splitlines()[:6]]
    results = [r for r in engine.evaluate_population("nasional", records, groups) if isinstance(r, Decision)]
    assert [r.subject for r in results] == [{"nip": r["nip"], "periode": r["periode"]} for r in records]
    app = create_app(engine, recorder=Recorder(SQLiteStore(tmp_path / "d.sqlite3")))
    with TestClient(app) as client:
        answered = client.post("/v1/policies/nasional/evaluate/batch",
                               json={"records": [BASE_RECORD, _with(status="x")]}).json()["results"]
        assert [a["subject"] for a in answered] == [WHO, WHO] and answered[1]["result"] == "error"
        kept = client.get(f"/v1/decisions/{answered[0]['decision_id']}").json()  # kept in a chunk, as answered
        assert kept["subject"] == WHO


def test_tables_put_the_subject_first(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "keputusan.csv"
    done = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "eval", "nasional", "-i",
                           str(ROOT / "examples" / "batch.jsonl"), "-o", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    header, first = out.read_text().splitlines()[:2]
    assert header.startswith("subject.nip,subject.periode,policy.id,")
    record = json.loads((ROOT / "examples" / "batch.jsonl").read_text().splitlines()[0])
    assert first.startswith(f"{record['nip']},{record['periode']},nasional,")
