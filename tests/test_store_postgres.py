"""The decision store on a real PostgreSQL server (pgserver, installed with the test dependencies)."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import threading
import uuid
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from kinerja_rules import Engine
from kinerja_rules.server import create_app
from kinerja_rules.server.decisions import Recorder
from kinerja_rules.store import (
    IDS,
    MIGRATIONS,
    DecisionRecord,
    PostgresStore,
    Run,
    Source,
    StoreError,
    open_store,
    uuid7,
)
from tests.conftest import BASE_RECORD, POLICIES

_SERVERS: list[Any] = []  # the running server, for a test that freezes it


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="kinerja-pg-")
    with warnings.catch_warnings():  # it keeps its sockets in a temporary folder without $XDG_RUNTIME_DIR, and says so
        warnings.simplefilter("ignore")
        import pgserver

        postgres = pgserver.get_server(folder, cleanup_mode="stop")
    _SERVERS.append(postgres)
    try:
        yield postgres.get_uri()
    finally:
        postgres.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def dsn(server: str) -> str:
    """A database of its own for each test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return server.replace("/postgres?", f"/{name}?")


def _record(**changes: Any) -> DecisionRecord:
    values: dict[str, Any] = dict(
        id=IDS.next(), made_at=dt.datetime.now(dt.UTC), policy_id="nasional", policy_version="2024.1",
        policy_digest="d" * 64, as_of=dt.date(2025, 3, 1), input={**BASE_RECORD},
        outputs={"tpp": {"diterima": 4_500_000}, "evaluasi": {"capaian_skp": Decimal("100.25")}},
        nip=BASE_RECORD["nip"], periode="2025-03")
    values.update(changes)
    return DecisionRecord(**values)


def test_records_runs_and_sources_come_back_exactly(dsn: str) -> None:
    store = open_store(dsn)
    assert isinstance(store, PostgresStore)
    run = Run(id=IDS.next(), made_at=dt.datetime.now(dt.UTC), policy_id="nasional", policy_digest="d" * 64,
              groups={"Dinas Kesehatan": {"predikat_organisasi": "baik"}}, seats=None, as_of=dt.date(2025, 3, 1))
    member = _record(run_id=run.id, trace={"outputs": {}}, population={"group": ["x"], "rank": 1})
    alone = _record(periode="2025-04")
    store.put([member, alone], [Source("d" * 64, "nasional", {"nasional.yaml": "policy: nasional\n"},
                                       {"survei": {"version": "1", "code": "ab"}})], [run])
    assert store.get(member.id) == member and store.get(alone.id) == alone
    assert store.get(member.id).outputs["evaluasi"]["capaian_skp"] == Decimal("100.25")  # type: ignore[union-attr]
    source = store.source("d" * 64)
    assert source is not None and source.files == {"nasional.yaml": "policy: nasional\n"}
    assert source.plugins == {"survei": {"version": "1", "code": "ab"}}
    found = store.run(run.id)
    assert found is not None and found[0] == run and [m.id for m in found[1]] == [member.id]
    assert [r.id for r in store.find(nip=BASE_RECORD["nip"], periode="2025-04")] == [alone.id]
    assert [r.id for r in store.find(periods=("2025-01", "2025-03"))] == [member.id]
    first = store.find(limit=1)
    assert [r.id for r in first + store.find(after=first[-1].id)] == [member.id, alone.id]
    store.close()


def test_many_writers_commit_together_and_a_bad_write_fails_alone(dsn: str) -> None:
    store = open_store(dsn)
    store.put([_record()], [Source("d" * 64, "nasional", {})])
    taken = _record()
    store.put([taken])
    written: list[str] = []
    errors: list[BaseException] = []

    def write(i: int) -> None:
        record = taken if i == 5 else _record()
        try:
            store.put([record])
            written.append(record.id)
        except StoreError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 1 and len(written) == 23 and all(store.get(i) is not None for i in written)
    store.close()


def test_a_batch_is_kept_in_chunks_on_postgresql(dsn: str) -> None:
    from tests.test_store import batch_kept_in_chunks

    store = open_store(dsn)
    batch_kept_in_chunks(store)
    store.close()


def test_the_schema_is_migrated_once_and_a_newer_one_refused(dsn: str) -> None:
    open_store(dsn).close()
    open_store(dsn).close()  # a second host starting finds it done
    with psycopg.connect(dsn, autocommit=True) as connection:
        assert connection.execute("SELECT version FROM kinerja_schema").fetchall() == [(len(MIGRATIONS),)]
        connection.execute("UPDATE kinerja_schema SET version = version + 1")
    with pytest.raises(StoreError, match="upgrade kinerja-rules"):
        open_store(dsn)


def test_retention_and_a_server_that_cannot_be_reached(dsn: str) -> None:
    store = open_store(dsn)
    then = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    old = _record(made_at=then, id=uuid7(int(then.timestamp() * 1000)))
    new = _record()
    store.put([old, new], [Source("d" * 64, "nasional", {})])
    assert store.delete_older_than(365) == 1 and store.get(old.id) is None and store.get(new.id) is not None
    store.close()
    with pytest.raises(StoreError, match="cannot open the decision store postgresql://kinerja:\\*\\*\\*@"):
        open_store("postgresql://kinerja:secret@127.0.0.1:1/none")


def test_the_service_records_replays_and_appeals_on_postgresql(dsn: str, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    app = create_app(Engine.from_paths([folder]), policies=[folder], recorder=Recorder(open_store(dsn)))
    with TestClient(app) as client:
        decision = client.post("/v1/policies/nasional/evaluate", json={"record": BASE_RECORD}).json()
        assert client.get(f"/v1/decisions/{decision['decision_id']}").json()["outputs"] == decision["outputs"]
        assert client.post(f"/v1/decisions/{decision['decision_id']}/replay").json()["identical"] is True
        appeal = client.post(f"/v1/decisions/{decision['decision_id']}/appeal",
                             json={"set": {"perilaku.atasan": 60}}).json()
        assert appeal["appeal_of"] == decision["decision_id"] and appeal["differences"]


@pytest.mark.parametrize("params", [{"nip": "\x00"}, {"nip": "1985\x00"}, {"nip": BASE_RECORD["nip"] + "\x00"},
                                    {"policy": "nasional\x00"}])
def test_both_stores_answer_the_same_for_hostile_query_values(dsn: str, tmp_path: Path,
                                                              params: dict[str, str]) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    answers = []
    for store in (open_store(dsn), open_store(tmp_path / "data")):
        app = create_app(Engine.from_paths([folder]), policies=[folder], recorder=Recorder(store))
        with TestClient(app) as client:
            assert client.post("/v1/policies/nasional/evaluate", json={"record": BASE_RECORD}).status_code == 200
            response = client.get("/v1/decisions", params=params)
            answers.append((response.status_code, response.json().get("decisions")))
    assert answers[0] == answers[1] and answers[0][0] in (200, 400)


def _postgres_processes() -> list[int]:
    """The server's postmaster and every process it started (the backends serving connections)."""
    import os

    postmaster = int(_SERVERS[-1].get_pid())
    found = [postmaster]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == postmaster:
                found.append(int(entry))
    return found


@pytest.mark.slow
def test_a_frozen_postgresql_is_a_503_within_the_store_timeout_and_the_service_not_ready(dsn: str,
                                                                                        tmp_path: Path) -> None:
    import os
    import signal
    import time

    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    app = create_app(Engine.from_paths([folder]), policies=[folder], recorder=Recorder(open_store(dsn), timeout=1.0))
    with TestClient(app) as client:
        decision = client.post("/v1/policies/nasional/evaluate", json={"record": BASE_RECORD}).json()
        frozen = _postgres_processes()
        for pid in frozen:  # its processes stopped: every call waits for an answer that does not come
            os.kill(pid, signal.SIGSTOP)
        try:
            for ask in (lambda: client.post("/v1/policies/nasional/evaluate", json={"record": BASE_RECORD}),
                        lambda: client.get(f"/v1/decisions/{decision['decision_id']}"),
                        lambda: client.get("/v1/decisions")):
                started = time.monotonic()
                response = ask()
                assert response.status_code == 503 and response.json()["type"] == "/problems/not-recorded"
                assert time.monotonic() - started < 5
            time.sleep(1.1)
            assert client.get("/ready").status_code == 503
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get(f"/v1/decisions/{decision['decision_id']}").status_code == 200


def test_keberatan_on_postgresql_and_one_of_many_at_once(dsn: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from kinerja_rules.keberatan import WIT, Desk, KeberatanError, Who
    from kinerja_rules.recording import Replayer
    from tests.test_keberatan import EMPLOYEE, SUPERIOR, _decide, _rated

    engine = Engine.from_paths([POLICIES])
    store = open_store(dsn)
    app = create_app(engine, recorder=Recorder(store))
    with TestClient(app) as client:
        original = _decide(client, _rated())
        today = dt.datetime.now(WIT).date().isoformat()
        assert client.post(f"/v1/decisions/{original['decision_id']}/pemberitahuan",
                           json={"tanggal": today}).status_code == 201
        record = store.get(original["decision_id"])
        hosts = [open_store(dsn) for _ in range(3)]  # a connection each, as several hosts have
        body = {"diajukan_oleh": EMPLOYEE, "tanggal": today, "alasan": "Belum dinilai"}

        def file(i: int) -> str:
            desk = Desk(hosts[i % 3], Replayer(hosts[i % 3], engine.registry))
            try:
                return str(desk.file(record, body, Who())["keberatan_id"])
            except KeberatanError as exc:
                return exc.kind

        try:
            with ThreadPoolExecutor(6) as pool:
                outcomes = list(pool.map(file, range(6)))
        finally:
            for host in hosts:
                host.close()
        filed = [o for o in outcomes if o != "keberatan-exists"]
        assert len(filed) == 1 and outcomes.count("keberatan-exists") == 5, outcomes
        answer = client.post(f"/v1/keberatan/{filed[0]}/putusan", json={
            "diputus_oleh": SUPERIOR, "tanggal": today, "hasil": "diubah", "alasan": "Sah",
            "set": {"penilaian.rating_hasil_kerja": "sesuai_ekspektasi"}}).json()
        assert answer["decision"]["outputs"]["tpp"]["diterima"] > original["outputs"]["tpp"]["diterima"]
        assert client.get(f"/v1/decisions/{answer['decision_id']}").json()["keberatan_id"] == filed[0]
        again = client.post(f"/v1/keberatan/{filed[0]}/putusan", json={
            "diputus_oleh": SUPERIOR, "tanggal": today, "hasil": "ditolak", "alasan": "x"})
        assert again.status_code == 409 and again.json()["type"] == "/problems/putusan-final"
        assert [k["status"] for k in client.get("/v1/keberatan", params={"nip": EMPLOYEE}).json()["keberatan"]] == [
            "diubah"]
