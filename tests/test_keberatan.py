"""Keberatan: the notification of a decision, the employee's objection within its deadline, and the
final putusan, over HTTP and the CLI, kept in the decision store."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from kinerja_rules import Engine
from kinerja_rules.keberatan import WIT, Desk, KeberatanError, Who, deadline
from kinerja_rules.recording import Replayer
from kinerja_rules.server import KeyRing, create_app, hash_key
from kinerja_rules.server.decisions import Recorder
from kinerja_rules.store import MIGRATIONS, SQLiteStore, open_store, uuid7
from tests.conftest import BASE_RECORD, POLICIES, ROOT
from tests.test_server import assert_problem

RATER = "197001012000011001"
SUPERIOR = "196501012000011001"
EMPLOYEE = BASE_RECORD["nip"]


class Clock:
    """The service's clock, set by the test: the day a decision is recorded, a step is taken."""

    def __init__(self) -> None:
        self.now = dt.datetime(2025, 4, 1, 2, 0, tzinfo=dt.UTC)  # 11:00 WIT on 1 April

    def __call__(self) -> dt.datetime:
        return self.now

    def on(self, day: str) -> None:
        self.now = dt.datetime.fromisoformat(day + "T02:00:00+00:00")


def _rated(hasil: str = "di_bawah_ekspektasi", **changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(BASE_RECORD)
    record["penilaian"] = {"rating_hasil_kerja": hasil, "rating_perilaku": "sesuai_ekspektasi",
                           "penilai_nip": RATER}
    record.update(changes)
    return record


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def served(tmp_path: Path, clock: Clock) -> Iterator[tuple[TestClient[Litestar], SQLiteStore]]:
    store = SQLiteStore(tmp_path / "data" / "decisions.sqlite3")
    app = create_app(Engine.from_paths([POLICIES]), recorder=Recorder(store, clock=clock))
    with TestClient(app) as client:
        yield client, store


def _decide(client: TestClient[Litestar], record: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/v1/policies/nasional/evaluate", json={"record": record or _rated()})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _file(client: TestClient[Litestar], decision_id: str, tanggal: str, **changes: Any) -> Any:
    body = {"diajukan_oleh": EMPLOYEE, "tanggal": tanggal, "alasan": "Bukti dukung triwulan belum dinilai",
            "bukti": ["laporan-triwulan-i.pdf"], **changes}
    return client.post(f"/v1/decisions/{decision_id}/keberatan", json=body)


def _decide_on(client: TestClient[Litestar], keberatan_id: str, **changes: Any) -> Any:
    body = {"diputus_oleh": SUPERIOR, "tanggal": "2025-04-20", "hasil": "diubah", "alasan": "Bukti dukung sah",
            "set": {"penilaian.rating_hasil_kerja": "sesuai_ekspektasi"}, **changes}
    return client.post(f"/v1/keberatan/{keberatan_id}/putusan", json=body)


# ---- the deadline ----------------------------------------------------------------------------------

def test_a_keberatan_on_its_last_day_is_filed_and_one_a_day_late_is_refused(served: Any, clock: Clock) -> None:
    client, _ = served
    on_time, late = _decide(client), _decide(client)
    clock.on("2025-04-02")
    for decision in (on_time, late):
        notice = client.post(f"/v1/decisions/{decision['decision_id']}/pemberitahuan", json={"tanggal": "2025-04-02"})
        assert notice.status_code == 201 and notice.json()["batas"] == "2025-04-16"
    clock.on("2025-04-30")
    filed = _file(client, on_time["decision_id"], "2025-04-16")
    assert filed.status_code == 201, filed.text
    answer = filed.json()
    assert answer["status"] == "diajukan" and answer["batas"] == "2025-04-16" and set(answer) == {
        "keberatan_id", "status", "batas"}
    problem = assert_problem(_file(client, late["decision_id"], "2025-04-17"), 422, "keberatan-late")
    assert problem["batas"] == "2025-04-16" and "2025-04-16" in problem["detail"]
    assert problem["errors"] == [{"path": "tanggal", "message": "after the deadline 2025-04-16"}]
    assert "14 calendar days after 2025-04-02" in problem["detail"]
    kept = client.get(f"/v1/keberatan/{answer['keberatan_id']}").json()
    assert kept["pemberitahuan"] == {"tanggal": "2025-04-02", "sumber": "pemberitahuan"}
    assert kept["batas_keberatan"] == {"hari": 14, "jenis_hari": "kalender"}
    assert [s["langkah"] for s in kept["langkah"]] == ["diajukan"] and kept["langkah"][0]["request_id"]
    assert client.get("/v1/keberatan", params={"nip": EMPLOYEE}).json()["keberatan"] == [kept]


def test_without_a_pemberitahuan_the_day_the_decision_was_recorded_counts(served: Any, clock: Clock) -> None:
    client, _ = served
    clock.now = dt.datetime(2025, 4, 1, 20, 0, tzinfo=dt.UTC)  # 2 April in WIT, where no region's day is later
    decision = _decide(client)
    clock.on("2025-05-01")
    assert_problem(_file(client, decision["decision_id"], "2025-04-17"), 422, "keberatan-late")
    filed = _file(client, decision["decision_id"], "2025-04-16")
    assert filed.status_code == 201 and filed.json()["batas"] == "2025-04-16"
    kept = client.get(f"/v1/keberatan/{filed.json()['keberatan_id']}").json()
    assert kept["pemberitahuan"] == {"tanggal": "2025-04-02", "sumber": "dicatat"}


def test_a_region_counting_working_days_skips_weekends_and_its_holidays(tmp_path: Path) -> None:
    region = tmp_path / "daerah.yaml"
    region.write_text('policy: daerah\nversion: "1"\nextends: nasional\neffective: 2025-01-01\n'
                      "parameters:\n"
                      "  jenis_hari_keberatan: {override: true, type: jenis_hari, values: {2025-01-01: kerja},\n"
                      "                         cite: pp-30-2019}\n"
                      "  batas_keberatan: {override: true, type: integer, key: jenis_hari, cite: pp-30-2019,\n"
                      "                    values: {2025-01-01: {kalender: 14, kerja: 5}}}\n"
                      "  hari_libur: {override: true, type: list of date, values: {2025-01-01: [2025-04-18]},\n"
                      "               cite: pp-30-2019}\n")
    engine = Engine.from_paths([POLICIES, region])
    # notified Wednesday 16 April: Thu 17, (Fri 18 a holiday), Mon 21, Tue 22, Wed 23, Thu 24
    made = deadline(engine.policy("daerah"), dt.date(2025, 4, 16), "pemberitahuan")
    assert (made.last, made.kind, made.days) == (dt.date(2025, 4, 24), "kerja", 5)
    assert deadline(engine.policy("nasional"), dt.date(2025, 4, 16), "pemberitahuan").last == dt.date(2025, 4, 30)
    assert "5 working days after 2025-04-16" in made.words()


# ---- the putusan -----------------------------------------------------------------------------------

def test_a_putusan_diubah_decides_again_and_changes_the_tpp(served: Any, clock: Clock) -> None:
    client, _ = served
    original = _decide(client)
    clock.on("2025-04-10")
    keberatan_id = _file(client, original["decision_id"], "2025-04-09").json()["keberatan_id"]
    clock.on("2025-04-21")
    response = _decide_on(client, keberatan_id)
    assert response.status_code == 200, response.text
    answer = response.json()
    new_id = answer["decision_id"]
    assert answer["appeal_of"] == original["decision_id"] and not answer["identical"]
    before, after = original["outputs"]["tpp"]["diterima"], answer["decision"]["outputs"]["tpp"]["diterima"]
    assert after > before
    assert {"output": "tpp.diterima", "before": before, "after": after} in answer["differences"]
    kept = client.get(f"/v1/decisions/{new_id}").json()
    assert kept["keberatan_id"] == keberatan_id and kept["appeal_of"] == original["decision_id"]
    assert kept["alasan"] == "Bukti dukung sah" and kept["outputs"]["tpp"]["diterima"] == after
    keberatan = client.get(f"/v1/keberatan/{keberatan_id}").json()
    assert keberatan["status"] == "diubah" and keberatan["putusan"] == {
        "diputus_oleh": SUPERIOR, "tanggal": "2025-04-20", "hasil": "diubah", "alasan": "Bukti dukung sah",
        "set": {"penilaian.rating_hasil_kerja": "sesuai_ekspektasi"}, "decision_id": new_id}
    assert [s["langkah"] for s in keberatan["langkah"]] == ["diajukan", "diputus"]
    assert keberatan["langkah"][1]["waktu"].startswith("2025-04-21")
    # final: a second putusan is refused, and so is a keberatan against the putusan's decision
    problem = assert_problem(_decide_on(client, keberatan_id, hasil="ditolak", set=None), 409, "putusan-final")
    assert keberatan_id in problem["detail"]
    assert_problem(_file(client, new_id, "2025-04-21"), 409, "putusan-final")
    assert client.get(f"/v1/keberatan/{keberatan_id}").json() == keberatan


def test_a_putusan_ditolak_keeps_the_decision(served: Any, clock: Clock) -> None:
    client, store = served
    original = _decide(client)
    keberatan_id = _file(client, original["decision_id"], "2025-04-01").json()["keberatan_id"]
    assert_problem(_decide_on(client, keberatan_id, hasil="ditolak"), 422, "invalid-keberatan")  # it sets nothing
    response = _decide_on(client, keberatan_id, hasil="ditolak", set=None, tanggal="2025-04-01")
    assert response.status_code == 200 and set(response.json()) == {"keberatan"}
    assert response.json()["keberatan"]["status"] == "ditolak"
    assert len(store.find(nip=EMPLOYEE)) == 1  # no new decision


@pytest.mark.parametrize("who, field", [(EMPLOYEE, "diputus_oleh"), (RATER, "diputus_oleh")])
def test_neither_the_filer_nor_the_rater_decides_a_keberatan(served: Any, who: str, field: str) -> None:
    client, store = served
    original = _decide(client)
    keberatan_id = _file(client, original["decision_id"], "2025-04-01").json()["keberatan_id"]
    problem = assert_problem(_decide_on(client, keberatan_id, diputus_oleh=who, tanggal="2025-04-01"), 422,
                             "invalid-keberatan")
    assert [e["path"] for e in problem["errors"]] == [field]
    assert client.get(f"/v1/keberatan/{keberatan_id}").json()["status"] == "diajukan"
    assert len(store.find(nip=EMPLOYEE)) == 1  # nothing stored half


# ---- what is refused -------------------------------------------------------------------------------

def test_one_notification_and_one_keberatan_per_decision(served: Any) -> None:
    client, _ = served
    decision_id = _decide(client)["decision_id"]
    path = f"/v1/decisions/{decision_id}"
    assert client.post(f"{path}/pemberitahuan", json={"tanggal": "2025-04-01"}).status_code == 201
    assert_problem(client.post(f"{path}/pemberitahuan", json={"tanggal": "2025-04-01"}), 409, "already-notified")
    assert _file(client, decision_id, "2025-04-01").status_code == 201
    assert_problem(_file(client, decision_id, "2025-04-01"), 409, "keberatan-exists")
    other = _decide(client)["decision_id"]
    assert _file(client, other, "2025-04-01").status_code == 201
    assert_problem(client.post(f"/v1/decisions/{other}/pemberitahuan", json={"tanggal": "2025-04-01"}), 409,
                   "keberatan-exists")


@pytest.mark.parametrize("changes, field", [
    ({"diajukan_oleh": "199001012015011001"}, "diajukan_oleh"),  # not the employee the decision is for
    ({"tanggal": "2025-03-31"}, "tanggal"),  # before the decision was recorded
    ({"tanggal": "2025-04-02"}, "tanggal"),  # after today
    ({"alasan": "   "}, "alasan"),
    ({"alasan": "a\x00b"}, "alasan"),
    ({"bukti": ["ok", ""]}, "bukti[1]"),
])
def test_a_bad_keberatan_is_refused_naming_the_field(served: Any, changes: dict[str, Any], field: str) -> None:
    client, store = served
    decision_id = _decide(client)["decision_id"]
    problem = assert_problem(_file(client, decision_id, **{"tanggal": "2025-04-01", **changes}), 422,
                             "invalid-keberatan")
    assert [e["path"] for e in problem["errors"]] == [field]
    assert store.find_keberatan() == []


@pytest.mark.parametrize("body, name, field", [
    ({"diajukan_oleh": EMPLOYEE, "tanggal": "2025-13-01", "alasan": "x"}, "invalid-body", "tanggal"),
    ({"diajukan_oleh": EMPLOYEE, "tanggal": "2025-04-01"}, "invalid-body", ""),
    ({"diajukan_oleh": EMPLOYEE, "tanggal": "2025-04-01", "alasan": "x", "reason": "y"}, "invalid-body", "reason"),
    ({"diajukan_oleh": "x" * 65, "tanggal": "2025-04-01", "alasan": "x"}, "invalid-body", "diajukan_oleh"),
    ({"diajukan_oleh": EMPLOYEE, "tanggal": "2025-04-01", "alasan": "x", "bukti": ["b"] * 21}, "invalid-body",
     "bukti"),
])
def test_a_malformed_body_is_a_problem_naming_the_field(served: Any, body: dict[str, Any], name: str,
                                                        field: str) -> None:
    client, _ = served
    decision_id = _decide(client)["decision_id"]
    problem = assert_problem(client.post(f"/v1/decisions/{decision_id}/keberatan", json=body), 422, name)
    assert field in problem["detail"]


def test_a_putusan_that_sets_a_value_the_policy_refuses_keeps_nothing(served: Any) -> None:
    client, store = served
    keberatan_id = _file(client, _decide(client)["decision_id"], "2025-04-01").json()["keberatan_id"]
    bad = _decide_on(client, keberatan_id, tanggal="2025-04-01", set={"penilaian.rating_hasil_kerja": "luar_biasa"})
    problem = assert_problem(bad, 422, "invalid-record")
    assert problem["errors"][0]["path"] == "set.penilaian.rating_hasil_kerja"
    assert_problem(_decide_on(client, keberatan_id, tanggal="2025-04-01", set={"nip": "1"}), 422, "invalid-set")
    assert_problem(_decide_on(client, keberatan_id, tanggal="2025-04-01", hasil="dikabulkan"), 422,
                   "invalid-keberatan")
    assert client.get(f"/v1/keberatan/{keberatan_id}").json()["status"] == "diajukan"
    assert len(store.find(nip=EMPLOYEE)) == 1


def test_unknown_ids_and_bad_queries(served: Any) -> None:
    client, _ = served
    missing = str(uuid7(1, 1))
    assert_problem(client.post(f"/v1/decisions/{missing}/keberatan", json={
        "diajukan_oleh": EMPLOYEE, "tanggal": "2025-04-01", "alasan": "x"}), 404, "unknown-decision")
    assert_problem(client.get(f"/v1/keberatan/{missing}"), 404, "unknown-keberatan")
    assert_problem(client.get("/v1/keberatan/bukan-id"), 404, "unknown-keberatan")
    assert_problem(_decide_on(client, missing), 404, "unknown-keberatan")
    for params in ({"status": "selesai"}, {"limit": 0}, {"cursor": "x"}, {"policy": "A B"}, {"nip": "9" * 65}):
        assert_problem(client.get("/v1/keberatan", params=params), 400, "bad-request")


def test_keberatan_are_listed_page_by_page_and_by_status(served: Any) -> None:
    client, _ = served
    ids = [_file(client, _decide(client)["decision_id"], "2025-04-01").json()["keberatan_id"] for _ in range(3)]
    _decide_on(client, ids[1], hasil="ditolak", set=None, tanggal="2025-04-01")
    first = client.get("/v1/keberatan", params={"limit": 2}).json()
    second = client.get("/v1/keberatan", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [k["keberatan_id"] for k in first["keberatan"] + second["keberatan"]] == ids
    assert second["next_cursor"] is None
    waiting = client.get("/v1/keberatan", params={"status": "diajukan", "policy": "nasional"}).json()["keberatan"]
    assert [k["keberatan_id"] for k in waiting] == [ids[0], ids[2]]


def test_keys_reach_only_the_keberatan_of_their_policies(tmp_path: Path, clock: Clock) -> None:
    keys = {"payroll": "kr_payroll_key", "plaju": "kr_plaju_key"}
    ring = KeyRing.parse(json.dumps({"keys": [
        {"name": "payroll", "sha256": hash_key(keys["payroll"]), "policies": ["nasional"]},
        {"name": "plaju", "sha256": hash_key(keys["plaju"]), "policies": ["plaju"]}]}), "test keys")
    app = create_app(Engine.from_paths([POLICIES]), keys=ring,
                     recorder=Recorder(SQLiteStore(tmp_path / "d.sqlite3"), clock=clock))
    payroll, plaju = ({"authorization": f"Bearer {keys[name]}"} for name in ("payroll", "plaju"))
    with TestClient(app) as client:
        decision = client.post("/v1/policies/nasional/evaluate", json={"record": _rated()}, headers=payroll).json()
        body = {"diajukan_oleh": EMPLOYEE, "tanggal": "2025-04-01", "alasan": "x"}
        path = f"/v1/decisions/{decision['decision_id']}"
        assert_problem(client.post(f"{path}/keberatan", json=body, headers=plaju), 404, "unknown-decision")
        assert_problem(client.post(f"{path}/pemberitahuan", json={"tanggal": "2025-04-01"}, headers=plaju), 404,
                       "unknown-decision")
        filed = client.post(f"{path}/keberatan", json=body, headers=payroll).json()
        assert_problem(client.get(f"/v1/keberatan/{filed['keberatan_id']}", headers=plaju), 404, "unknown-keberatan")
        assert_problem(client.post(f"/v1/keberatan/{filed['keberatan_id']}/putusan", json={
            "diputus_oleh": SUPERIOR, "tanggal": "2025-04-01", "hasil": "ditolak", "alasan": "x"}, headers=plaju),
            404, "unknown-keberatan")
        assert client.get("/v1/keberatan", headers=plaju).json()["keberatan"] == []
        assert_problem(client.get("/v1/keberatan", params={"policy": "nasional"}, headers=plaju), 403, "forbidden")
        kept = client.get(f"/v1/keberatan/{filed['keberatan_id']}", headers=payroll).json()
        assert kept["langkah"][0]["key_id"] == "payroll"


def test_an_appeal_takes_an_optional_alasan(served: Any) -> None:
    client, _ = served
    decision_id = _decide(client)["decision_id"]
    answer = client.post(f"/v1/decisions/{decision_id}/appeal", json={
        "set": {"perilaku.atasan": 90}, "alasan": "Nilai dari atasan langsung yang baru"}).json()
    kept = client.get(f"/v1/decisions/{answer['decision_id']}").json()
    assert kept["alasan"] == "Nilai dari atasan langsung yang baru"
    assert "alasan" not in client.get(f"/v1/decisions/{decision_id}").json()
    assert_problem(client.post(f"/v1/decisions/{decision_id}/appeal", json={"set": {"perilaku.atasan": 90},
                                                                          "alasan": "\x07"}), 422, "invalid-body")


# ---- the store -------------------------------------------------------------------------------------

def test_a_store_of_the_previous_schema_is_migrated_and_keeps_its_decisions(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    connection = sqlite3.connect(path, isolation_level=None)
    for step in range(4):
        connection.executescript(f"BEGIN; {MIGRATIONS[step]}; PRAGMA user_version = {step + 1}; COMMIT;")
    connection.close()
    store = SQLiteStore(path)
    try:
        assert store.find_keberatan() == [] and store.pemberitahuan(str(uuid7(1, 1))) is None
    finally:
        store.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 6


def test_retention_keeps_a_decision_under_a_recent_keberatan(tmp_path: Path, clock: Clock) -> None:
    store = SQLiteStore(tmp_path / "d.sqlite3")
    app = create_app(Engine.from_paths([POLICIES]), recorder=Recorder(store, clock=clock))
    with TestClient(app) as client:
        kept, gone = _decide(client)["decision_id"], _decide(client)["decision_id"]
        for decision_id in (kept, gone):
            client.post(f"/v1/decisions/{decision_id}/pemberitahuan", json={"tanggal": "2025-04-01"})
        keberatan_id = _file(client, kept, "2025-04-01").json()["keberatan_id"]
        assert store._delete(keberatan_id) == 1  # both decisions are past the cutoff; the keberatan is not
        assert store.get(kept) is not None and store.get(gone) is None
        assert store.pemberitahuan(kept) is not None and store.pemberitahuan(gone) is None


# ---- the CLI ---------------------------------------------------------------------------------------

def _kinerja(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kinerja_rules.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_the_cli_files_decides_and_shows_a_keberatan(tmp_path: Path) -> None:
    shutil.copytree(POLICIES, tmp_path / "policies")
    (tmp_path / "pegawai.json").write_text(json.dumps(_rated()))
    decided = _kinerja("eval", "nasional", "-i", "pegawai.json", "--record", "data", cwd=tmp_path)
    assert decided.returncode == 0, decided.stderr
    before = json.loads(decided.stdout)["outputs"]["tpp"]["diterima"]
    filed = _kinerja("keberatan", "ajukan", "--nip", EMPLOYEE, "--oleh", EMPLOYEE, "--alasan", "Belum dinilai",
                     "--data", "data", cwd=tmp_path)
    assert filed.returncode == 0, filed.stderr
    keberatan_id = json.loads(filed.stdout)["keberatan_id"]
    again = _kinerja("keberatan", "ajukan", "--nip", EMPLOYEE, "--oleh", EMPLOYEE, "--alasan", "x", "--data", "data",
                     cwd=tmp_path)
    assert again.returncode == 1 and "is filed already" in again.stderr
    by_rater = _kinerja("keberatan", "putus", keberatan_id, "--oleh", RATER, "--hasil", "diubah", "--set",
                        "penilaian.rating_hasil_kerja=sesuai_ekspektasi", "--alasan", "x", "--data", "data",
                        cwd=tmp_path)
    assert by_rater.returncode == 1 and "the rater (penilaian.penilai_nip)" in by_rater.stderr
    decided_again = _kinerja("keberatan", "putus", keberatan_id, "--oleh", SUPERIOR, "--hasil", "diubah", "--set",
                             "penilaian.rating_hasil_kerja=sesuai_ekspektasi", "--alasan", "Sah", "--data", "data",
                             cwd=tmp_path)
    assert decided_again.returncode == 0, decided_again.stderr
    answer = json.loads(decided_again.stdout)
    assert answer["decision"]["outputs"]["tpp"]["diterima"] > before
    listed = _kinerja("keberatan", "list", "--status", "diubah", "--data", "data", cwd=tmp_path)
    assert listed.stdout.splitlines()[0].split("\t")[:2] == ["keberatan_id", "status"]
    assert listed.stdout.splitlines()[1].split("\t")[:2] == [keberatan_id, "diubah"]
    shown = json.loads(_kinerja("keberatan", "show", "--nip", EMPLOYEE, "--data", "data", cwd=tmp_path).stdout)
    assert shown["putusan"]["decision_id"] == answer["decision_id"]
    final = _kinerja("keberatan", "putus", keberatan_id, "--oleh", SUPERIOR, "--hasil", "ditolak", "--alasan", "x",
                     "--data", "data", cwd=tmp_path)
    assert final.returncode == 1 and "a putusan is final" in final.stderr


def test_the_desk_refuses_a_keberatan_against_a_decision_of_a_redacted_nip_by_someone_else(tmp_path: Path) -> None:
    engine = Engine.from_paths([POLICIES])
    store = open_store(tmp_path / "data", redact=["nip"])
    try:
        app = create_app(engine, recorder=Recorder(store))
        with TestClient(app) as client:
            decision_id = _decide(client)["decision_id"]
        store.reopen()
        desk = Desk(store, Replayer(store, engine.registry))
        record = desk.replayer.record(decision_id)
        today = dt.datetime.now(WIT).date()
        with pytest.raises(KeberatanError) as refused:
            desk.file(record, {"diajukan_oleh": "199001012015011001", "tanggal": today, "alasan": "x"}, Who())
        assert refused.value.fields[0].path == "diajukan_oleh" and "kept redacted" in str(refused.value)
        entry = desk.file(record, {"diajukan_oleh": EMPLOYEE, "tanggal": today, "alasan": "x"}, Who())
        assert entry["diajukan_oleh"] != EMPLOYEE and entry["diajukan_oleh"] == record.nip  # kept as its hash
        assert [k["keberatan_id"] for k in store.find_keberatan(nip=EMPLOYEE)] == [entry["keberatan_id"]]
    finally:
        store.close()


def test_the_cli_appeal_keeps_its_alasan(tmp_path: Path) -> None:
    shutil.copytree(POLICIES, tmp_path / "policies")
    (tmp_path / "pegawai.json").write_text(json.dumps(BASE_RECORD))
    assert _kinerja("eval", "nasional", "-i", "pegawai.json", "--record", "data", cwd=tmp_path).returncode == 0
    appealed = _kinerja("replay", "--nip", EMPLOYEE, "--set", "perilaku.atasan=90", "--alasan", "Atasan baru",
                        "--data", "data", cwd=tmp_path)
    assert appealed.returncode == 0, appealed.stderr
    store = open_store(tmp_path / "data")
    try:
        kept = store.get(json.loads(appealed.stdout)["decision_id"])
        assert kept is not None and kept.alasan == "Atasan baru" and kept.describe()["alasan"] == "Atasan baru"
    finally:
        store.close()
    empty = _kinerja("replay", "--nip", EMPLOYEE, "--set", "perilaku.atasan=90", "--alasan", " ", "--data", "data",
                     cwd=tmp_path)
    assert empty.returncode == 2 and "--alasan: must be a text of 1 to 4000 characters" in empty.stderr
