"""Decision records over HTTP: every decision answered is kept, found, replayed and appealed."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from kinerja_rules import Engine
from kinerja_rules.server import KeyRing, create_app, hash_key
from kinerja_rules.server.decisions import Recorder
from kinerja_rules.store import IDS, Redactor, Source, SQLiteStore, Store, StoreError, open_store, uuid7
from tests.conftest import BASE_RECORD, POLICIES, ROOT
from tests.test_server import assert_problem

KEYS = {"payroll": "kr_payroll_key", "plaju": "kr_plaju_key", "ops": "kr_ops_key"}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    return target


def _client(folder: Path, store: Store, keys: KeyRing | None = None) -> TestClient[Litestar]:
    return TestClient(create_app(Engine.from_paths([folder]), policies=[folder], keys=keys, recorder=Recorder(store)))


@pytest.fixture
def client(folder: Path, tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    with _client(folder, SQLiteStore(tmp_path / "data" / "d.sqlite3")) as c:
        yield c


def _person(nip: str, **changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(BASE_RECORD)
    record["nip"] = nip
    record.update(changes)
    return record


def _evaluate(client: TestClient[Litestar], record: dict[str, Any], policy: str = "nasional",
              **headers: str) -> dict[str, Any]:
    response = client.post(f"/v1/policies/{policy}/evaluate", json={"record": record}, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_each_decision_answered_carries_its_id_and_is_kept_as_received(client: TestClient[Litestar]) -> None:
    record = {**BASE_RECORD, "skp": {"indikator": [{"nama": "Laporan", "target": 1000, "realisasi": 987.5}]}}
    decision = _evaluate(client, record)
    assert list(decision)[:3] == ["decision_id", "subject", "policy"]
    kept = client.get(f"/v1/decisions/{decision['decision_id']}").json()
    assert kept["decision_id"] == decision["decision_id"] and kept["policy"] == decision["policy"]
    assert kept["subject"] == decision["subject"] == {"nip": record["nip"], "periode": record["periode"]}
    assert kept["input"] == json.loads(json.dumps(record)) and kept["outputs"] == decision["outputs"]
    assert kept["as_of"] == decision["as_of"] and "trace" not in kept
    explained = client.post("/v1/policies/nasional/evaluate", json={"record": record, "explain": True}).json()
    assert client.get(f"/v1/decisions/{explained['decision_id']}").json()["trace"] == explained["trace"]
    assert decision["decision_id"] < explained["decision_id"]  # ids sort by time


def test_a_batch_keeps_each_decision_and_no_error(client: TestClient[Litestar]) -> None:
    records = [_person(f"19850712201001{i:04d}") for i in range(5)]
    records[2] = {**records[2], "status": "bukan_status"}
    results = client.post("/v1/policies/nasional/evaluate/batch", json={"records": records}).json()["results"]
    assert [r["result"] for r in results] == ["decision", "decision", "error", "decision", "decision"]
    assert "decision_id" not in results[2]
    for result, record in zip(results, records, strict=True):
        if result["result"] == "decision":
            assert client.get(f"/v1/decisions/{result['decision_id']}").json()["input"] == record


def test_decisions_are_found_by_policy_nip_and_periode_page_by_page(client: TestClient[Litestar]) -> None:
    ids = [_evaluate(client, _person("198507122010011003", periode=p))["decision_id"]
           for p in ("2025-01", "2025-02", "2025-02", "2025-03")]
    _evaluate(client, _person("198507122010011004", periode="2025-02"))
    found = client.get("/v1/decisions", params={"policy": "nasional", "nip": "198507122010011003",
                                                "periode": "2025-02"}).json()
    assert [d["decision_id"] for d in found["decisions"]] == ids[1:3] and found["next_cursor"] is None
    first = client.get("/v1/decisions", params={"nip": "198507122010011003", "limit": 3}).json()
    assert [d["decision_id"] for d in first["decisions"]] == ids[:3] and first["next_cursor"] == ids[2]
    rest = client.get("/v1/decisions", params={"nip": "198507122010011003", "cursor": first["next_cursor"]}).json()
    assert [d["decision_id"] for d in rest["decisions"]] == ids[3:] and rest["next_cursor"] is None


@pytest.mark.parametrize("params, said", [
    ({"limit": "0"}, "limit"), ({"limit": "100000"}, "limit"), ({"periode": "2025-13"}, "periode"),
    ({"cursor": "' OR 1=1 --"}, "cursor"), ({"nip": "9" * 65}, "nip"), ({"policy": "../etc"}, "policy"),
])
def test_bad_look_ups_are_refused_clearly(client: TestClient[Litestar], params: dict[str, str], said: str) -> None:
    problem = assert_problem(client.get("/v1/decisions", params=params), 400, "bad-request")
    assert problem["detail"].startswith(said)


def test_an_unknown_or_malformed_id_is_404(client: TestClient[Litestar]) -> None:
    assert_problem(client.get(f"/v1/decisions/{IDS.next()}"), 404, "unknown-decision")
    assert_problem(client.get("/v1/decisions/x' OR '1'='1"), 404, "unknown-decision")
    assert_problem(client.post(f"/v1/decisions/{IDS.next()}/replay"), 404, "unknown-decision")


def test_a_replay_after_the_files_changed_uses_the_archived_policy(client: TestClient[Litestar], folder: Path) -> None:
    decision = _evaluate(client, BASE_RECORD)
    path = folder / "nasional.yaml"  # the TPP rule changes, and the service takes it up
    path.write_text(path.read_text().replace("baik: 1.00, butuh_perbaikan", "baik: 0.90, butuh_perbaikan"))
    assert client.post("/v1/admin/reload").status_code == 200
    now = _evaluate(client, BASE_RECORD)
    assert now["outputs"]["tpp"]["diterima"] != decision["outputs"]["tpp"]["diterima"]
    replay = client.post(f"/v1/decisions/{decision['decision_id']}/replay")
    assert replay.status_code == 200 and replay.json() == {"decision_id": decision["decision_id"], "identical": True}
    (folder / "nasional.yaml").unlink()  # even with the files gone
    assert client.post(f"/v1/decisions/{decision['decision_id']}/replay").json()["identical"] is True


def test_a_replay_that_differs_names_each_output(client: TestClient[Litestar], tmp_path: Path) -> None:
    decision = _evaluate(client, BASE_RECORD)
    store = client.app.state.recorder.store
    with store._reader:  # the record is tampered with: its outputs no longer what the policy gives
        store._reader.execute("UPDATE decisions SET outputs = json_set(outputs, '$.tpp.diterima', 1) WHERE id = ?",
                              (decision["decision_id"],))
    answer = client.post(f"/v1/decisions/{decision['decision_id']}/replay").json()
    assert answer["identical"] is False
    assert answer["differences"] == [{"output": "tpp.diterima", "before": 1,
                                      "after": decision["outputs"]["tpp"]["diterima"]}]


def test_a_plugin_not_installed_at_the_archived_version_is_said_not_identity(client: TestClient[Litestar]) -> None:
    decision = _evaluate(client, BASE_RECORD)
    store: Store = client.app.state.recorder.store
    kept = store.get(decision["decision_id"])
    assert kept is not None
    source = store.source(kept.policy_digest)
    assert source is not None and source.plugins == {}
    with store._reader:  # type: ignore[attr-defined]  # as if the decision had used a plugin now gone
        store._reader.execute("UPDATE sources SET plugins = ? WHERE digest = ?",  # type: ignore[attr-defined]
                              (b'{"survei_ikm":{"version":"1.2.0","code":"ab"}}', kept.policy_digest))
    client.app.state.recorder._replayers.clear()
    answer = client.post(f"/v1/decisions/{decision['decision_id']}/replay").json()
    assert answer["identical"] is False and answer["differences"] == []
    assert answer["notes"] == ["plugin survei_ikm 1.2.0 is not installed"]


def test_an_appeal_is_a_new_record_naming_the_original_with_both_traces(client: TestClient[Litestar]) -> None:
    decision = _evaluate(client, BASE_RECORD)
    response = client.post(f"/v1/decisions/{decision['decision_id']}/appeal", json={"set": {"perilaku.atasan": 60}})
    assert response.status_code == 200, response.text
    appeal = response.json()
    assert appeal["appeal_of"] == decision["decision_id"] and appeal["decision_id"] > decision["decision_id"]
    changed = {d["output"]: d for d in appeal["differences"]}
    assert changed["evaluasi.predikat"]["before"] == decision["outputs"]["evaluasi"]["predikat"]
    assert changed["tpp.diterima"]["after"] == appeal["decision"]["outputs"]["tpp"]["diterima"]
    assert changed["tpp.diterima"]["after"] < changed["tpp.diterima"]["before"]
    both = appeal["traces"]["evaluasi.skor_perilaku"]
    assert both["before"]["value"] != both["after"]["value"] and both["after"]["definitions"]
    kept = client.get(f"/v1/decisions/{appeal['decision_id']}").json()
    assert kept["appeal_of"] == decision["decision_id"] and kept["input"]["perilaku"]["atasan"] == 60
    assert client.post(f"/v1/decisions/{appeal['decision_id']}/replay").json()["identical"] is True


@pytest.mark.parametrize("body, status, name", [
    ({"set": {}}, 422, "invalid-set"),
    ({"set": {"perilaku..atasan": 1}}, 422, "invalid-set"),
    ({"set": {f"f{i}": 1 for i in range(65)}}, 422, "invalid-set"),
    ({"set": {"skp.indikator.9.target": 1}}, 422, "invalid-set"),
    ({"set": {"x": json.loads("[" * 40 + "]" * 40)}}, 422, "too-deep"),
    ({"sets": {}}, 422, "invalid-body"),
])
def test_a_bad_appeal_is_refused_clearly(client: TestClient[Litestar], body: dict[str, Any], status: int,
                                         name: str) -> None:
    decision = _evaluate(client, BASE_RECORD)
    assert_problem(client.post(f"/v1/decisions/{decision['decision_id']}/appeal", json=body), status, name)


def test_an_appeal_that_makes_the_record_wrong_is_its_error(client: TestClient[Litestar]) -> None:
    decision = _evaluate(client, BASE_RECORD)
    response = client.post(f"/v1/decisions/{decision['decision_id']}/appeal", json={"set": {"perilaku.atasan": "x"}})
    problem = assert_problem(response, 422, "invalid-record")
    assert "perilaku.atasan" in problem["detail"] and problem["errors"][0]["path"] == "perilaku.atasan"


def test_a_population_run_is_kept_once_and_its_member_replayed_with_it(client: TestClient[Litestar]) -> None:
    members = [_person(f"19850712201001{i:04d}", perilaku={"atasan": 95}) for i in range(4)]
    groups = json.loads((ROOT / "examples" / "groups.json").read_text())
    response = client.post("/v1/policies/plaju/evaluate/population",  # plaju enforces its kurva distribusi
                           json={"records": members, "groups": groups, "seats": []})
    results = response.json()["results"]
    assert all(r["result"] == "decision" for r in results)
    store: Store = client.app.state.recorder.store
    kept = [store.get(r["decision_id"]) for r in results]
    run_ids = {k.run_id for k in kept if k is not None}
    assert len(run_ids) == 1 and None not in run_ids
    found = store.run(run_ids.pop())  # type: ignore[arg-type]
    assert found is not None and found[0].groups == groups and [m.input for m in found[1]] == members
    moved = [r for r in results if r["outputs"]["evaluasi"]["predikat"] != r["outputs"]["evaluasi"]["predikat_awal"]]
    assert moved  # the kurva distribusi moved someone: alone, that member would come out otherwise
    answer = client.post(f"/v1/decisions/{moved[0]['decision_id']}/replay").json()
    assert answer == {"decision_id": moved[0]["decision_id"], "identical": True}


def test_keys_read_only_the_decisions_of_their_policies(folder: Path, tmp_path: Path) -> None:
    ring = KeyRing.parse(json.dumps({"keys": [
        {"name": "payroll", "sha256": hash_key(KEYS["payroll"]), "policies": ["nasional"]},
        {"name": "plaju", "sha256": hash_key(KEYS["plaju"]), "policies": ["plaju"]},
        {"name": "ops", "sha256": hash_key(KEYS["ops"]), "policies": [], "admin": True}]}), "test keys")
    with _client(folder, SQLiteStore(tmp_path / "d.sqlite3"), ring) as client:
        payroll = {"authorization": f"Bearer {KEYS['payroll']}"}
        plaju = {"authorization": f"Bearer {KEYS['plaju']}"}
        admin = {"authorization": f"Bearer {KEYS['ops']}"}
        decision = _evaluate(client, BASE_RECORD, **payroll)
        path = f"/v1/decisions/{decision['decision_id']}"
        assert client.get(path, headers=payroll).json()["key_id"] == "payroll"
        assert client.get(path, headers=admin).status_code == 200
        assert_problem(client.get(path, headers=plaju), 404, "unknown-decision")
        assert_problem(client.get(path), 401, "unauthorized")
        assert_problem(client.post(f"{path}/replay", headers=plaju), 404, "unknown-decision")
        assert_problem(client.post(f"{path}/appeal", json={"set": {"perilaku.atasan": 1}}, headers=plaju), 404,
                       "unknown-decision")
        assert client.get("/v1/decisions", headers=plaju).json()["decisions"] == []
        assert len(client.get("/v1/decisions", headers=payroll).json()["decisions"]) == 1
        assert_problem(client.get("/v1/decisions", params={"policy": "nasional"}, headers=plaju), 403, "forbidden")


def test_redacted_fields_are_hashed_found_and_asked_for_again(folder: Path, tmp_path: Path) -> None:
    store = open_store(tmp_path / "data", redact=["nip", "unit_kerja"])
    with _client(folder, store) as client:
        decision = _evaluate(client, BASE_RECORD)
        kept = client.get(f"/v1/decisions/{decision['decision_id']}").json()
        assert kept["redacted"] == ["nip", "unit_kerja"]
        assert kept["input"]["nip"].startswith("hmac-sha256:") and BASE_RECORD["nip"] not in json.dumps(kept)
        raw = (tmp_path / "data" / "decisions.sqlite3").read_bytes()
        assert BASE_RECORD["nip"].encode() not in raw and b"Dinas Kesehatan" not in raw
        found = client.get("/v1/decisions", params={"nip": BASE_RECORD["nip"]}).json()["decisions"]
        assert [d["decision_id"] for d in found] == [decision["decision_id"]]
        problem = assert_problem(client.post(f"/v1/decisions/{decision['decision_id']}/replay"), 422,
                                 "redacted-fields")
        assert problem["paths"] == ["nip", "unit_kerja"] and "--set nip=VALUE" in problem["detail"]
        again = client.post(f"/v1/decisions/{decision['decision_id']}/replay",
                            json={"set": {"nip": BASE_RECORD["nip"], "unit_kerja": "Dinas Kesehatan"}})
        assert again.json()["identical"] is True
        refused = client.post(f"/v1/decisions/{decision['decision_id']}/replay", json={"set": {"perilaku.atasan": 1}})
        assert "appeal" in assert_problem(refused, 422, "invalid-set")["detail"]
    assert (tmp_path / "data" / "redact.key").stat().st_mode & 0o077 == 0


def test_a_decision_the_store_cannot_keep_is_not_answered(client: TestClient[Litestar],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*args: Any) -> None:
        raise StoreError("the disk is full")

    monkeypatch.setattr(client.app.state.recorder.store, "put_async", refuse)
    problem = assert_problem(client.post("/v1/policies/nasional/evaluate", json={"record": BASE_RECORD}), 503,
                             "not-recorded")
    assert "nothing was answered" in problem["detail"]
    assert_problem(client.post("/v1/policies/nasional/evaluate/batch", json={"records": [BASE_RECORD]}), 503,
                   "not-recorded")


def test_without_a_store_decisions_have_no_id_and_the_endpoints_say_why(folder: Path) -> None:
    with TestClient(create_app(Engine.from_paths([folder]))) as client:
        decision = client.post("/v1/policies/nasional/evaluate", json={"record": BASE_RECORD}).json()
        assert "decision_id" not in decision
        assert_problem(client.get(f"/v1/decisions/{IDS.next()}"), 404, "no-decision-store")


def test_redaction_refuses_bad_fields_and_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StoreError, match="dotted name"):
        Redactor(("nip..x",), b"k" * 32)
    with pytest.raises(StoreError, match="at most 32"):
        Redactor(tuple(f"f{i}" for i in range(33)), b"k" * 32)
    monkeypatch.setenv("KINERJA_REDACT_KEY", "zz")
    with pytest.raises(StoreError, match="hex"):
        open_store(tmp_path / "d", redact=["nip"])
    monkeypatch.setenv("KINERJA_REDACT_KEY", "ab" * 8)
    with pytest.raises(StoreError, match="32 bytes"):
        open_store(tmp_path / "d", redact=["nip"])
    monkeypatch.delenv("KINERJA_REDACT_KEY")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="takes a directory"):
        open_store(tmp_path / "file")


def test_retention_keeps_an_appealed_original_while_its_appeal_is_kept(tmp_path: Path) -> None:
    import datetime as dt

    from kinerja_rules.store import DecisionRecord

    store = SQLiteStore(tmp_path / "d.sqlite3")
    old_time = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)

    def made(**changes: Any) -> DecisionRecord:
        values: dict[str, Any] = dict(id=uuid7(int(old_time.timestamp() * 1000)), made_at=old_time,
                                      policy_id="nasional", policy_version="1",
                                      policy_digest="d" * 64, as_of=dt.date(2025, 3, 1), input={}, outputs={})
        values.update(changes)
        return DecisionRecord(**values)

    appealed, lone = made(), made()
    appeal = made(appeal_of=appealed.id, made_at=dt.datetime.now(dt.UTC), id=IDS.next())
    store.put([appealed, lone, appeal], [Source("d" * 64, "nasional", {})])
    assert store.delete_older_than(30) == 1
    assert store.get(lone.id) is None and store.get(appealed.id) is not None and store.get(appeal.id) is not None
    store.close()


# ---- POST /v1/impact ------------------------------------------------------------------------

def _proposal(folder: Path) -> str:
    text = (folder / "nasional.yaml").read_text()
    assert "baik: 1.00, butuh_perbaikan" in text
    return text.replace("baik: 1.00, butuh_perbaikan", "baik: 0.90, butuh_perbaikan").replace(
        'version: "2024.1"', 'version: "2025.1"')


def test_impact_over_http_equals_the_engine_deciding_both(client: TestClient[Litestar], folder: Path,
                                                          tmp_path: Path) -> None:
    records = [_person(f"19850712201001{i:04d}", unit_kerja=("A", "B")[i % 2]) for i in range(6)]
    records.append({"nip": "bukan"})
    body = {"policy": "nasional", "proposed": {"files": {"nasional.yaml": _proposal(folder)}}, "records": records}
    response = client.post("/v1/impact", json=body)
    assert response.status_code == 200, response.text
    report = response.json()
    (tmp_path / "proposed").mkdir()
    (tmp_path / "proposed" / "nasional.yaml").write_text(_proposal(folder))
    base, proposed = Engine.from_paths([folder]), Engine.from_paths([tmp_path / "proposed"])
    before = [base.evaluate("nasional", r).get("tpp.diterima") for r in records[:-1]]
    after = [proposed.evaluate("nasional", r).get("tpp.diterima") for r in records[:-1]]
    assert (report["tpp"]["before"], report["tpp"]["after"]) == (sum(before), sum(after))
    assert report["tpp"]["down"] == sum(a < b for a, b in zip(after, before, strict=True)) > 0
    assert [u["unit_kerja"] for u in report["tpp"]["by_unit"]] == ["A", "B"]
    assert report["proposed"]["version"] == "2025.1" and report["errors"] == {"base": 1, "proposed": 1}
    # the base may be an archived version, named by its digest
    decision = _evaluate(client, BASE_RECORD)
    archived = client.post("/v1/impact", json={**body, "base_digest": decision["policy"]["digest"]}).json()
    assert archived["base"] == decision["policy"] and archived["tpp"] == report["tpp"]


@pytest.mark.parametrize("change, status, name", [
    ({"proposed": {"files": {"nasional.yaml": "policy: nasional\nversion: [\n"}}}, 422, "invalid-proposal"),
    ({"proposed": {"files": {}}}, 422, "invalid-body"),
    ({"policy": "tidak_ada"}, 404, "unknown-policy"),
    ({"policy": "sawahlunto"}, 422, "invalid-proposal"),
    ({"base_digest": "ab"}, 422, "invalid-body"),
    ({"base_digest": "a" * 64}, 422, "not-replayable"),
    ({"records": [BASE_RECORD] * 10_001}, 422, "batch-too-long"),
    ({"records": [json.loads("[" * 40 + "]" * 40)]}, 200, ""),
])
def test_a_bad_impact_request_is_refused_clearly(client: TestClient[Litestar], folder: Path, change: dict[str, Any],
                                                 status: int, name: str) -> None:
    body = {"policy": "nasional", "proposed": {"files": {"nasional.yaml": _proposal(folder)}},
            "records": [BASE_RECORD], **change}
    response = client.post("/v1/impact", json=body)
    if status == 200:  # a record too deep is that record's error, and the others are compared
        assert response.status_code == 200 and response.json()["errors"] == {"base": 1, "proposed": 1}
        return
    problem = assert_problem(response, status, name)
    if name == "invalid-proposal" and "policy" not in change:
        assert problem["diagnostics"][0]["line"] is not None


def test_impact_needs_a_key_for_its_policy(folder: Path, tmp_path: Path) -> None:
    ring = KeyRing.parse(json.dumps({"keys": [
        {"name": "plaju", "sha256": hash_key(KEYS["plaju"]), "policies": ["plaju"]}]}), "test keys")
    with _client(folder, SQLiteStore(tmp_path / "d.sqlite3"), ring) as client:
        body = {"policy": "nasional", "proposed": {"files": {"nasional.yaml": _proposal(folder)}},
                "records": [BASE_RECORD]}
        assert_problem(client.post("/v1/impact", json=body), 401, "unauthorized")
        assert_problem(client.post("/v1/impact", json=body, headers={"authorization": f"Bearer {KEYS['plaju']}"}),
                       403, "forbidden")


def test_the_decisions_of_the_batch_processes_are_kept(folder: Path, tmp_path: Path) -> None:
    from kinerja_rules.server import PolicyService
    from tests.test_server import _wait_for_pool

    service = PolicyService(Engine.from_paths([folder]), [folder], batch_processes=2)
    store = SQLiteStore(tmp_path / "d.sqlite3")
    records = [_person(f"19850712201001{i:04d}") for i in range(300)]
    records[7] = {"nip": 5}
    sent: list[int] = []
    put_async = store.put_async

    async def counted(rows: list[Any], sources: Any, runs: Any, chunks: Any) -> None:
        sent.append(len(rows) + sum(c.size for c in chunks))
        await put_async(rows, sources, runs, chunks)

    store.put_async = counted  # type: ignore[method-assign]
    with TestClient(create_app(service, policies=[folder], recorder=Recorder(store))) as client:
        _wait_for_pool(client, 2)
        results = client.post("/v1/policies/nasional/evaluate/batch", json={"records": records}).json()["results"]
        assert service.pool is not None and service.pool.slices == 2
        ids = [r["decision_id"] for r in results if r["result"] == "decision"]
        assert len(ids) == 299 and "decision_id" not in results[7]
        kept = [store.get(i) for i in ids]
        assert all(k is not None for k in kept)
        assert [k.input["nip"] for k in kept if k is not None] == [r["nip"] for i, r in enumerate(records) if i != 7]
        assert sent == [299]  # made in the batch processes, kept in one commit


def test_a_redacted_subject_is_kept_as_the_store_keeps_it(folder: Path, tmp_path: Path) -> None:
    store = open_store(tmp_path / "data", redact=["nip"])
    with _client(folder, store) as client:
        decision = _evaluate(client, BASE_RECORD)
        assert decision["subject"] == {"nip": BASE_RECORD["nip"], "periode": BASE_RECORD["periode"]}  # as sent
        kept = client.get(f"/v1/decisions/{decision['decision_id']}").json()
        assert kept["subject"]["periode"] == BASE_RECORD["periode"]
        assert kept["subject"]["nip"] == kept["input"]["nip"] != BASE_RECORD["nip"]  # its keyed hash, as kept
        batch = client.post("/v1/policies/nasional/evaluate/batch", json={"records": [BASE_RECORD]}).json()
        again = client.get(f"/v1/decisions/{batch['results'][0]['decision_id']}").json()
        assert again["subject"] == kept["subject"]
