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
