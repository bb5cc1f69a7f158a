"""A slow plugin holds up only its own records: a policy that runs plugin code is decided off the
event loop, in the pool processes, where each plugin call has a time budget."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from kinerja_rules import Engine, discover
from kinerja_rules.server import PolicyService, create_app
from tests.test_plugins import _plugin_dir

SLOW_PLUGIN = '''
import signal
import time

from kinerja_rules import FunctionSpec
from kinerja_rules.hookspecs import hookimpl

__version__ = "1.0"


def _tunggu(detik):
    time.sleep(float(detik))
    return 1


def _putar(n):
    while n >= 0:  # never ends: a bug in a plugin
        try:
            n += 1
        except Exception:  # a plugin that swallows every error does not swallow the budget
            pass
    return 1


def _kebal(detik):  # as code stuck where a signal cannot reach it (inside C)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
    time.sleep(float(detik))
    return 1


@hookimpl
def kinerja_register_functions():
    return [FunctionSpec(name=name, params=(("x", "decimal"),), returns="integer", impl=impl,
                         description="slow")
            for name, impl in (("tunggu", _tunggu), ("putar", _putar), ("kebal", _kebal))]
'''

POLICY = """
policy: lambat
effective: 2024-01-01
inputs:
  cara: {type: enum, values: [tunggu, putar, kebal]}
  x: decimal
outputs:
  hasil:
    type: integer
    expr: "when cara = tunggu then tunggu(x) when cara = putar then putar(x) else kebal(x)"
"""


@pytest.fixture
def slow(tmp_path: Path) -> tuple[Path, Path]:
    plugins = _plugin_dir(tmp_path, "lambat_plugin", SLOW_PLUGIN)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "lambat.yaml").write_text(POLICY)
    return policies, plugins


def _service(slow: tuple[Path, Path], processes: int, seconds: float | None) -> PolicyService:
    policies, plugins = slow
    engine = Engine.from_paths([policies], discover([plugins], entry_points=False))
    return PolicyService(engine, [policies], plugins=[plugins], batch_processes=processes,
                         plugin_call_seconds=seconds)


def _ready(client: TestClient[Any], processes: int) -> None:
    deadline = time.monotonic() + 60
    while client.get("/ready").json()["batch_processes"] < processes:
        assert time.monotonic() < deadline, "the pool processes did not start"
        time.sleep(0.05)


def _evaluate(client: TestClient[Any], cara: str, x: float) -> tuple[Any, float]:
    start = time.monotonic()
    answer = client.post("/v1/policies/lambat/evaluate", json={"record": {"cara": cara, "x": x}, "as_of": "2025-01-01"})
    return answer, time.monotonic() - start


def test_slow_evaluations_run_side_by_side_and_health_answers_at_once(slow: tuple[Path, Path]) -> None:
    service = _service(slow, 4, 5.0)
    with TestClient(create_app(service, policies=[slow[0]])) as client, ThreadPoolExecutor(4) as threads:
        _ready(client, 4)
        start = time.monotonic()
        running = [threads.submit(_evaluate, client, "tunggu", 1) for _ in range(4)]
        time.sleep(0.2)
        health, waited = client.get("/health"), time.monotonic() - start - 0.2
        answers = [f.result() for f in running]
        assert health.status_code == 200 and waited < 0.5, waited
        assert all(a.status_code == 200 and a.json()["outputs"]["hasil"] == 1 for a, _ in answers), [a.text for a,
                                                                                                     _ in answers]
        assert max(took for _, took in answers) < 2.5  # side by side: not 1, 2, 3 and 4 s
        assert time.monotonic() - start < 3


@pytest.mark.parametrize("cara", ["tunggu", "putar"])
def test_a_runaway_plugin_call_is_that_records_error_within_its_budget(slow: tuple[Path, Path], cara: str) -> None:
    service = _service(slow, 1, 0.5)
    with TestClient(create_app(service, policies=[slow[0]])) as client:
        _ready(client, 1)
        answer, took = _evaluate(client, cara, 30)
        assert answer.status_code == 422 and took < 3, (answer.text, took)
        problem = answer.json()
        assert problem["type"] == "/problems/evaluation-failed"
        assert problem["detail"] == (f"function {cara!r} of plugin 'lambat_plugin' 1.0 did not return within 0.5 s, "
                                     "the time budget of one plugin call")
        assert problem["policy"]["id"] == "lambat"
        fine, _ = _evaluate(client, "tunggu", 0)  # the same process goes on deciding
        assert fine.status_code == 200
        batch = client.post("/v1/policies/lambat/evaluate/batch",
                            json={"records": [{"cara": cara, "x": 30}, {"cara": "tunggu", "x": 0}],
                                  "as_of": "2025-01-01"})
        first, second = batch.json()["results"]
        assert "did not return within 0.5 s" in first["error"]["message"] and second["outputs"]["hasil"] == 1
        assert service.pool is not None and service.pool.slices >= 1  # a short batch of plugin code: the pool


def test_a_record_stuck_past_every_timer_costs_its_process_and_the_pool_comes_back(slow: tuple[Path, Path]) -> None:
    service = _service(slow, 1, 0.5)
    with TestClient(create_app(service, policies=[slow[0]])) as client:
        _ready(client, 1)
        assert service.pool is not None
        service.pool.record_seconds = 1.5  # the default is ten budgets, at least 10 s
        stuck, took = _evaluate(client, "kebal", 60)
        assert stuck.status_code == 422 and took < 5, (stuck.text, took)
        assert stuck.json()["detail"] == "deciding the record did not finish within 1.5 s"
        _ready(client, 1)  # new processes
        fine, _ = _evaluate(client, "tunggu", 0)
        assert fine.status_code == 200


def test_without_pool_processes_a_slow_record_still_leaves_the_event_loop_free(slow: tuple[Path, Path]) -> None:
    service = _service(slow, 0, None)
    with TestClient(create_app(service, policies=[slow[0]])) as client, ThreadPoolExecutor(2) as threads:
        running = threads.submit(_evaluate, client, "tunggu", 1)
        time.sleep(0.2)
        start = time.monotonic()
        assert client.get("/health").status_code == 200 and time.monotonic() - start < 0.5
        answer, _ = running.result()
        assert answer.status_code == 200


def test_kinerja_serve_takes_the_budget_and_refuses_a_bad_one() -> None:
    from tests.test_cli import kinerja

    wrong = kinerja("serve", "--plugin-call-seconds", "0")
    assert wrong.returncode == 2 and "--plugin-call-seconds" in wrong.stderr
    assert "time budget of one plugin call" in kinerja("serve", "--help").stdout


UNIT_POLICY = """
policy: lambat_unit
effective: 2024-01-01
inputs:
  id: text
  unit: text
group_data:
  cara: {type: enum, values: [tunggu, putar, kebal]}
  x: decimal
group_definitions:
  hasil_unit:
    type: integer
    expr: "when group.cara = tunggu then tunggu(group.x) when group.cara = putar then putar(group.x)
      else kebal(group.x)"
population:
  grouping: {by: [unit], member: id}
outputs:
  hasil: {type: optional integer, expr: "if population != null then population.hasil_unit else null"}
"""


def test_a_population_run_of_plugin_code_is_decided_in_a_process_within_the_budget(slow: tuple[Path, Path]) -> None:
    (slow[0] / "lambat_unit.yaml").write_text(UNIT_POLICY)
    service = _service(slow, 1, 0.5)
    with TestClient(create_app(service, policies=[slow[0]])) as client:
        _ready(client, 1)
        start = time.monotonic()
        answer = client.post("/v1/policies/lambat_unit/evaluate/population", json={
            "records": [{"id": "1", "unit": "A"}, {"id": "2", "unit": "B"}, {"id": "3", "unit": "A"}],
            "groups": {"A": {"cara": "putar", "x": 30}, "B": {"cara": "tunggu", "x": 0}}, "as_of": "2025-01-01"})
        assert answer.status_code == 200 and time.monotonic() - start < 3, answer.text
        first, second, third = answer.json()["results"]
        assert "did not return within 0.5 s" in first["error"]["message"] and first == third  # the unit's value
        assert second["outputs"]["hasil"] == 1 and second["population"]["member"] == "2"
        reports = {r["group"]["unit"]: r for r in answer.json()["groups"]}
        assert "did not return within 0.5 s" in reports["A"]["error"] and "error" not in reports["B"]
        bad = client.post("/v1/policies/lambat_unit/evaluate/population", json={
            "records": [{"id": "1", "unit": "A"}], "groups": {"A": {"cara": "lambat", "x": 1}}, "as_of": "2025-01-01"})
        # group data that cannot be used is refused before any record is decided (it was each member's error)
        assert bad.status_code == 422 and bad.json()["type"] == "/problems/invalid-population"
        assert [e["path"] for e in bad.json()["errors"]] == ['groups["A"].cara'] and "must be one of" in bad.text
