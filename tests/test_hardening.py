"""Hardening, round two: each defect an attack on impact, decision records, appeals, population
runs, tables and reload found, reproduced and held."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from kinerja_rules import Engine
from kinerja_rules.server import create_app
from kinerja_rules.server.bodies import Limits
from kinerja_rules.server.decisions import Recorder
from kinerja_rules.store import SQLiteStore
from tests.conftest import POLICIES
from tests.test_records import _evaluate, _person
from tests.test_server import assert_problem


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    return target


def _client(folder: Path, tmp_path: Path, **limits: Any) -> TestClient[Litestar]:
    return TestClient(create_app(Engine.from_paths([folder]), policies=[folder], limits=Limits(**limits),
                                 recorder=Recorder(SQLiteStore(tmp_path / "data" / "d.sqlite3"))))


@pytest.fixture
def client(folder: Path, tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    with _client(folder, tmp_path, max_response_bytes=200_000) as c:
        yield c


def _big(nip: str, size: int) -> dict[str, Any]:
    """A person whose indicator's name (free text) is `size` characters long."""
    record = _person(nip)
    record["skp"]["indikator"][0]["nama"] = "x" * size
    return record


# ---- 3: every answer is bounded ----

def test_a_page_of_decisions_stops_before_the_response_limit_and_goes_on_by_its_cursor(
        client: TestClient[Litestar]) -> None:
    ids = [_evaluate(client, _big(f"19850712201001{i:04d}", 30_000))["decision_id"] for i in range(12)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        response = client.get("/v1/decisions", params={"limit": 1000, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200 and len(response.content) <= 200_000
        page = response.json()
        seen += [d["decision_id"] for d in page["decisions"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids and pages >= 2


def test_a_decision_larger_than_the_response_limit_is_a_422_alone_or_in_a_list(client: TestClient[Litestar]) -> None:
    decision = _evaluate(client, _big("198507122010010001", 250_000))
    assert_problem(client.get(f"/v1/decisions/{decision['decision_id']}"), 422, "response-too-large")
    assert_problem(client.get("/v1/decisions"), 422, "response-too-large")


# ---- 4: a policy id found in two folders ----

def test_a_copied_region_folder_fails_only_that_policy_and_the_rest_reload(folder: Path) -> None:
    from tests.test_server import _bump

    with TestClient(create_app(Engine.from_paths([folder]), policies=[folder])) as client:
        plaju = client.get("/v1/policies/plaju").json()["digest"]
        shutil.copytree(folder / "plaju", folder / "plaju.bak")
        _bump(folder / "makassar" / "policy.yaml", "2099.1")
        response = client.post("/v1/admin/reload")
        assert response.status_code == 200, response.text
        answer = response.json()
        assert "makassar" in answer["reloaded"] and "plaju" not in answer["reloaded"]
        [failed] = answer["failed"]
        [diagnostic] = failed["diagnostics"]
        assert failed["policy"] == "plaju" and diagnostic["code"] == "E020"
        assert str(folder / "plaju" / "policy.yaml") in diagnostic["message"]
        assert str(folder / "plaju.bak" / "policy.yaml") in diagnostic["message"]
        assert client.get("/v1/policies/makassar").json()["version"] == "2099.1"
        assert client.get("/v1/policies/plaju").json()["digest"] == plaju  # its last good version


def test_serve_starts_with_the_rest_beside_a_copied_region_folder(folder: Path) -> None:
    from kinerja_rules.engine import default_registry, reload_paths

    shutil.copytree(folder / "plaju", folder / "plaju.bak")
    outcome = reload_paths([folder], default_registry(), {})
    assert not outcome.refused and sorted(outcome.policies) == ["kotalama", "makassar", "nasional", "sawahlunto"]
    assert list(outcome.failed) == ["plaju"]


# ---- 5, 6: an appeal or a replay cannot change who or when ----

@pytest.mark.parametrize("field, value", [("nip", "199001012015011001"), ("periode", "2024-11")])
def test_an_appeal_cannot_change_whom_or_when(client: TestClient[Litestar], field: str, value: str) -> None:
    decision = _evaluate(client, _person("198507122010011003", periode="2025-03"))
    path = f"/v1/decisions/{decision['decision_id']}"
    problem = assert_problem(client.post(f"{path}/appeal", json={"set": {field: value, "perilaku.atasan": 70}}),
                             422, "invalid-set")
    assert problem["paths"] == [field]
    assert len(client.get("/v1/decisions").json()["decisions"]) == 1  # nothing was filed


def _redacting(folder: Path, tmp_path: Path) -> TestClient[Litestar]:
    from kinerja_rules.store import open_store

    store = open_store(tmp_path / "data", redact=["nip", "perilaku.atasan"])
    return TestClient(create_app(Engine.from_paths([folder]), policies=[folder], recorder=Recorder(store)))


def test_a_redacted_value_given_again_must_be_the_one_recorded(folder: Path, tmp_path: Path) -> None:
    with _redacting(folder, tmp_path) as client:
        person = _person("198507122010011003", perilaku={"atasan": 80, "rekan": 85})
        decision = _evaluate(client, person)
        path = f"/v1/decisions/{decision['decision_id']}"
        wrong = {"nip": "199001012015011001", "perilaku.atasan": 80}
        assert assert_problem(client.post(f"{path}/replay", json={"set": wrong}), 409,
                              "redacted-value-mismatch")["paths"] == ["nip"]
        lower = {"nip": person["nip"], "perilaku.atasan": 55, "perilaku.rekan": 60}
        assert assert_problem(client.post(f"{path}/appeal", json={"set": lower}), 409,
                              "redacted-value-mismatch")["paths"] == ["perilaku.atasan"]
        right = {"nip": person["nip"], "perilaku.atasan": 80}
        assert client.post(f"{path}/replay", json={"set": right}).json()["identical"] is True
        appeal = client.post(f"{path}/appeal", json={"set": {**right, "perilaku.rekan": 60}})
        assert appeal.status_code == 200, appeal.text


# ---- 7, 8: appeals of population members ----

def _run(client: TestClient[Litestar], count: int) -> list[dict[str, Any]]:
    import json

    from tests.conftest import ROOT

    members = [_person(f"19850712201001{i:04d}", perilaku={"atasan": 60 + i % 40, "rekan": 80}) for i in range(count)]
    groups = json.loads((ROOT / "examples" / "groups.json").read_text())
    response = client.post("/v1/policies/plaju/evaluate/population", json={"records": members, "groups": groups,
                                                                           "seats": []})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def test_an_appeal_of_a_member_traces_that_member_alone(client: TestClient[Litestar],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from kinerja_rules import population_run

    results = _run(client, 30)
    traced: list[int] = []
    real = population_run._Run.finish

    def finish(self: Any, m: Any) -> Any:
        result = real(self, m)
        traced.append(getattr(result, "trace", None) is not None)
        return result

    monkeypatch.setattr(population_run._Run, "finish", finish)
    answer = client.post(f"/v1/decisions/{results[7]['decision_id']}/appeal", json={"set": {"perilaku.rekan": 61}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"]["trace"]["population"]  # the member its appeal is about: traced
    assert len(traced) == 60 and sum(traced) == 2  # the run twice (before, after), one member traced each time


def test_a_chain_of_appeals_of_a_member_replays_at_any_depth(client: TestClient[Litestar]) -> None:
    results = _run(client, 4)
    decision_id = results[1]["decision_id"]
    for depth in range(1, 5):
        answer = client.post(f"/v1/decisions/{decision_id}/appeal", json={"set": {"perilaku.rekan": 70 + depth}})
        assert answer.status_code == 200, (depth, answer.text)
        decision_id = answer.json()["decision_id"]
        replay = client.post(f"/v1/decisions/{decision_id}/replay")
        assert replay.status_code == 200 and replay.json()["identical"] is True, (depth, replay.text)


# ---- 11: every file name a client sends is validated the same way ----

@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "", "<b>policy</b>.yaml", "a" * 101])
def test_impact_refuses_the_file_names_validate_refuses(client: TestClient[Litestar], folder: Path,
                                                        name: str) -> None:
    from tests.test_records import _proposal

    text = _proposal(folder)
    impact = client.post("/v1/impact", json={"policy": "nasional", "proposed": {"files": {name: text}},
                                              "records": [_person("198507122010011003")]})
    validate = client.post("/v1/validate", json={"files": {name: text}})
    assert impact.status_code == validate.status_code == 422
    assert impact.json()["type"] == validate.json()["type"] == "/problems/invalid-body"
    assert name not in impact.text or not name


# ---- 12: group data is checked as records are, before any record is decided ----

@pytest.mark.parametrize("data, path", [
    ({"predikat_organisasi": 5}, 'groups["Dinas Kesehatan"].predikat_organisasi'),
    ({"predikat_organisasi": "baik", "predikat_organisai": "baik"}, 'groups["Dinas Kesehatan"].predikat_organisai'),
    ("baik", 'groups["Dinas Kesehatan"]'),
])
def test_group_data_that_cannot_be_used_is_a_422_before_any_record(client: TestClient[Litestar], data: Any,
                                                                    path: str) -> None:
    records = [_person(f"19850712201001{i:04d}") for i in range(3)]
    response = client.post("/v1/policies/plaju/evaluate/population",
                           json={"records": records, "groups": {"Dinas Kesehatan": data}, "seats": []})
    problem = assert_problem(response, 422, "invalid-population")
    assert path in [e["path"] for e in problem["errors"]]
    assert client.get("/v1/decisions").json()["decisions"] == []  # nothing decided, nothing kept


# ---- 14: schema set-up is serialised on SQLite too ----

def _open_together(folder: str, barrier: Any, results: Any) -> None:
    from kinerja_rules.store import StoreError, open_store

    barrier.wait()
    try:
        open_store(Path(folder)).close()
        results.put("ok")
    except StoreError as exc:
        results.put(str(exc))


@pytest.mark.slow
def test_services_started_together_on_a_new_data_folder_all_open_it(tmp_path: Path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    for attempt in range(3):
        folder = tmp_path / f"data{attempt}"
        barrier, results = context.Barrier(4), context.Queue()
        processes = [context.Process(target=_open_together, args=(str(folder), barrier, results)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        assert sorted(results.get(timeout=5) for _ in processes) == ["ok"] * 4


# ---- 1, 9: every piece of work a request starts has a time budget, and they are limited in number ----

NESTED = ('outputs:\n  berat: {type: integer, expr: "sum(sum(sum(sum(1 for d in skp.indikator) for c in '
          'skp.indikator) for b in skp.indikator) for a in skp.indikator)"}\n')


def _heavy_impact(folder: Path, items: int) -> dict[str, Any]:
    from tests.test_records import _proposal

    record = _person("198507122010011003")
    record["skp"]["indikator"] = [dict(record["skp"]["indikator"][0], nama=f"i{i}") for i in range(items)]
    return {"policy": "nasional", "proposed": {"files": {"nasional.yaml": _proposal(folder).replace(
        "outputs:\n", NESTED, 1)}}, "records": [record]}


def _work_threads() -> int:
    import threading

    return sum(t.name == "kinerja-work" for t in threading.enumerate())


def test_an_impact_past_its_budget_is_stopped_and_answered_in_time(folder: Path, tmp_path: Path) -> None:
    import time

    from kinerja_rules.server.work import Work

    work = Work(seconds=1.0, at_once=2)
    app = create_app(Engine.from_paths([folder]), policies=[folder], work=work,
                     recorder=Recorder(SQLiteStore(tmp_path / "data" / "d.sqlite3")))
    with TestClient(app) as client:
        started = time.monotonic()
        problem = assert_problem(client.post("/v1/impact", json=_heavy_impact(folder, 300)), 422, "work-timeout")
        assert time.monotonic() - started < 10 and "--work-seconds" in problem["detail"]
        deadline = time.monotonic() + 5
        while _work_threads() and time.monotonic() < deadline:  # stopped where it stood: its thread ends
            time.sleep(0.05)
        assert _work_threads() == 0 and work.stopped == 1 and work.running == 0
        light = client.post("/v1/impact", json=_heavy_impact(folder, 3))  # the same work, small: answered
        assert light.status_code == 200, light.text


def test_expensive_work_past_the_limit_is_refused_at_once_with_retry_after() -> None:
    import asyncio

    asyncio.run(_past_the_limit())


async def _past_the_limit() -> None:
    import asyncio
    import time

    from kinerja_rules.server.problems import ApiProblem
    from kinerja_rules.server.work import Work

    work = Work(seconds=5.0, at_once=1)

    def spin() -> None:
        while True:
            time.sleep(0.01)

    first = asyncio.ensure_future(work.run("spinning", spin))
    await asyncio.sleep(0.1)
    with pytest.raises(ApiProblem) as refused:
        await work.run("another", lambda: 1)
    assert refused.value.name == "work-busy" and refused.value.headers["retry-after"].isdigit()
    first.cancel()  # its client went away: the work stops
    with pytest.raises(asyncio.CancelledError):
        await first
    assert work.running == 0 and await work.run("after", lambda: 2) == 2


def test_work_stops_when_its_client_goes_away() -> None:
    import asyncio

    asyncio.run(_client_goes_away())


async def _client_goes_away() -> None:
    import asyncio
    import time

    from kinerja_rules.server.problems import ApiProblem
    from kinerja_rules.server.work import Work

    work = Work(seconds=30.0, at_once=1)
    ticks: list[int] = []

    def spin() -> None:
        while True:
            ticks.append(1)
            time.sleep(0.01)

    async def gone() -> None:
        await asyncio.sleep(0.2)

    started = time.monotonic()
    with pytest.raises(ApiProblem):
        await work.run("spinning", spin, disconnected=gone)
    assert time.monotonic() - started < 5
    await asyncio.sleep(0.2)
    seen = len(ticks)
    await asyncio.sleep(0.2)
    assert len(ticks) == seen and work.stopped == 1  # the thread no longer runs


def test_an_optimal_assignment_past_its_budget_is_stopped(folder: Path, tmp_path: Path) -> None:
    import time

    from kinerja_rules.server.work import Work
    from tests.test_population_run import _record

    records = [_record(i, "Dinas A", "2025-03", 1000, 85, potensi=60 + i % 40) for i in range(350)]
    for i, record in enumerate(records):
        record["kompetensi"] = [{"nama": "analisis", "level": 1 + i % 5}]
    seats = [{"id": f"s{i}", "kompetensi": [{"nama": "analisis", "level": 1 + i % 4}]} for i in range(50)]
    work = Work(seconds=0.2, at_once=2)
    app = create_app(Engine.from_paths([folder]), policies=[folder], work=work)
    with TestClient(app) as client:
        started = time.monotonic()
        response = client.post("/v1/policies/sawahlunto/evaluate/population",
                               json={"records": records, "groups": {"Dinas A": {"predikat_organisasi": "baik"}},
                                     "seats": seats})
        assert_problem(response, 422, "work-timeout")
        assert time.monotonic() - started < 5 and work.stopped == 1


# ---- 10: a store that stops answering ----

def test_a_store_that_stops_answering_is_a_503_within_the_timeout_and_not_ready(
        folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    store = SQLiteStore(tmp_path / "data" / "d.sqlite3")
    recorder = Recorder(store, timeout=0.5)
    frozen = threading.Event()
    real_read, real_put = store._read, store.put_async

    def read(*args: Any) -> Any:
        if frozen.is_set():
            time.sleep(30)  # a server whose processes are stopped: the call never comes back
        return real_read(*args)

    async def put(*args: Any) -> None:
        import asyncio

        if frozen.is_set():
            await asyncio.sleep(30)
        await real_put(*args)

    monkeypatch.setattr(store, "_read", read)
    monkeypatch.setattr(store, "put_async", put)
    with TestClient(create_app(Engine.from_paths([folder]), policies=[folder], recorder=recorder)) as client:
        decision = _evaluate(client, _person("198507122010011003"))
        assert client.get("/ready").status_code == 200
        frozen.set()
        other = {"record": _person("198507122010011004")}
        for ask in (lambda: client.post("/v1/policies/nasional/evaluate", json=other),
                    lambda: client.get(f"/v1/decisions/{decision['decision_id']}"),
                    lambda: client.get("/v1/decisions")):
            started = time.monotonic()
            assert_problem(ask(), 503, "not-recorded")
            assert time.monotonic() - started < 3
        time.sleep(1.1)  # the next readiness question is asked afresh
        assert_problem(client.get("/ready"), 503, "not-ready")
        frozen.clear()
        deadline = time.monotonic() + 10
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get("/ready").status_code == 200
        assert client.get(f"/v1/decisions/{decision['decision_id']}").status_code == 200


# ---- also found: /ready says no more than ready without a key ----

def test_ready_without_a_key_says_ready_and_nothing_else(folder: Path) -> None:
    import json

    from kinerja_rules.server import KeyRing, hash_key

    ring = KeyRing.parse(json.dumps({"keys": [{"name": "ops", "sha256": hash_key("kr_ops_key"), "policies": [],
                                               "admin": True}]}), "test keys")
    shutil.copytree(folder / "plaju", folder / "plaju.bak")  # a failed policy, whose diagnostics name files
    with TestClient(create_app(Engine.from_paths([folder / "nasional.yaml"]), policies=[folder], keys=ring)) as client:
        assert client.post("/v1/admin/reload", headers={"authorization": "Bearer kr_ops_key"}).status_code == 200
        bare = client.get("/ready")
        assert bare.status_code == 200 and bare.json() == {"status": "ready"} and str(folder) not in bare.text
        full = client.get("/ready", headers={"authorization": "Bearer kr_ops_key"}).json()
        assert full["failed"][0]["policy"] == "plaju" and "generation" in full


def test_if_match_compares_strongly(client: TestClient[Litestar]) -> None:
    digest = client.get("/v1/policies/nasional").json()["digest"]
    body = {"record": _person("198507122010011003")}
    weak = client.post("/v1/policies/nasional/evaluate", json=body, headers={"if-match": f'W/"{digest}"'})
    assert_problem(weak, 412, "policy-changed")
    strong = client.post("/v1/policies/nasional/evaluate", json=body, headers={"if-match": f'W/"{digest}", "{digest}"'})
    assert strong.status_code == 200
