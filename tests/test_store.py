"""The decision store: records kept whole and exactly, durable once `put` returns, found again."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from kinerja_rules.decision import ENCODER
from kinerja_rules.recording import Chunker, Recording, source_of
from kinerja_rules.server.batch import decide
from kinerja_rules.server.bodies import Limits
from kinerja_rules.store import (
    CHUNK_DECISIONS,
    IDS,
    MIGRATIONS,
    DecisionRecord,
    Redactor,
    SQLiteStore,
    Store,
    StoreError,
    row_of,
    uuid7,
)
from kinerja_rules.store.ids import _Ids
from tests.conftest import BASE_RECORD, ROOT, bundled


def _record(nip: str = "198507122010011003", periode: str = "2025-03", **changes: object) -> DecisionRecord:
    values: dict[str, object] = dict(
        id=IDS.next(), made_at=dt.datetime.now(dt.UTC), policy_id="nasional", policy_version="2024.1",
        policy_digest="d" * 64, as_of=dt.date(2025, 3, 1), input={**BASE_RECORD, "nip": nip, "periode": periode},
        outputs={"tpp": {"diterima": 4_500_000}, "evaluasi": {"capaian_skp": Decimal("100.25")}},
        nip=nip, periode=periode)
    values.update(changes)
    return DecisionRecord(**values)  # type: ignore[arg-type]


def test_ids_are_uuid7_and_sort_in_the_order_they_were_made() -> None:
    made = [IDS.next() for _ in range(2000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(len(i) == 36 and i[14] == "7" and i[19] in "89ab" for i in made)
    assert uuid7(1_700_000_000_000) < uuid7(1_700_000_000_001)
    assert int(uuid7(1_700_000_000_000)[:8] + uuid7(1_700_000_000_000)[9:13], 16) == 1_700_000_000_000


_UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.mark.parametrize("bits", [None, 2 ** 48 - 1_000_000, 5 * 2 ** 48 - 9_000_000, 2 ** 74 - 40_000])
def test_ids_taken_at_once_are_the_ids_made_one_by_one(bits: int | None) -> None:
    """A batch's ids: in order, after the last one made and before the next, whether or not a carry
    reaches their shared first characters or the millisecond runs out of them."""
    ids = _Ids()
    if bits is not None:
        ids._ms, ids._bits = 2 ** 47, bits  # a millisecond ahead of the clock: all of these are made in it
    before = ids.next()
    taken = ids.take(1000)
    after = ids.next()
    assert [before, *taken, after] == sorted({before, *taken, after})  # in order, none twice
    assert all(_UUID7.fullmatch(i) for i in taken)
    assert ids.take(0) == []


def _in_a_fork(draw: Callable[[], int]) -> tuple[int, int]:
    """What `draw` gives in a forked child, and then in this process."""
    readable, writable = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # a fork beside threads: the child only draws
        pid = os.fork()
    if pid == 0:
        os.write(writable, str(draw()).encode())
        os._exit(0)
    os.close(writable)
    os.waitpid(pid, 0)
    with os.fdopen(readable) as child:
        return int(child.read()), draw()


def test_a_forked_process_draws_ids_of_its_own() -> None:
    from kinerja_rules.server.metrics import _REQUEST_BITS

    IDS.next()
    for draw in (lambda: IDS._random.getrandbits(64), lambda: _REQUEST_BITS(64)):
        child, parent = _in_a_fork(draw)
        assert child != parent  # the same seed in both would repeat the parent's draws


def test_a_record_comes_back_exactly_and_its_sources_once(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.sqlite")
    record = _record(trace={"outputs": {"tpp.diterima": {"value": 4_500_000}}}, key_id="payroll")
    store.put([record], [("d" * 64, "nasional", {"nasional.yaml": "policy: nasional\n"})])
    store.put([_record()], [("d" * 64, "nasional", {"nasional.yaml": "policy: nasional\n"})])
    again = store.get(record.id)
    assert again == record  # decimals stay decimals, the trace and the key are kept
    assert again is not None and again.outputs["evaluasi"]["capaian_skp"] == Decimal("100.25")
    assert store.sources("d" * 64) == {"nasional.yaml": "policy: nasional\n"}
    assert store.get("no-such-id") is None and store.sources("e" * 64) is None
    store.close()


def test_decisions_are_found_by_policy_nip_and_periode_page_by_page(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.sqlite")
    records = [_record(nip=f"1985071220100110{i % 3:02d}", periode=f"2025-0{1 + i % 2}") for i in range(12)]
    store.put(records, [("d" * 64, "nasional", {})])
    mine = store.find(policy_id="nasional", nip="198507122010011001", periode="2025-02")
    assert [r.id for r in mine] == [r.id for r in records if r.nip.endswith("01") and r.periode == "2025-02"]  # type: ignore[union-attr]
    first = store.find(limit=5)
    second = store.find(limit=5, after=first[-1].id)
    assert [r.id for r in first + second] == [r.id for r in records[:10]]
    store.close()


def test_many_writers_are_committed_together_and_one_bad_write_fails_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.sqlite")
    store.put([_record()], [("d" * 64, "nasional", {})])
    taken = _record()
    store.put([taken])
    errors: list[BaseException] = []
    written: list[str] = []

    def write(i: int) -> None:
        record = taken if i == 7 else _record()  # the same id twice: that caller's error only
        try:
            store.put([record])
            written.append(record.id)
        except StoreError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 1 and "could not be kept" in str(errors[0]) and len(written) == 39
    assert all(store.get(i) is not None for i in written)
    store.close()


def test_a_store_from_a_newer_version_is_refused_and_an_older_one_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="upgrade kinerja-rules"):
        SQLiteStore(path)
    older = tmp_path / "older.sqlite"
    sqlite3.connect(older).close()  # version 0: an empty file of an older layout
    SQLiteStore(older).close()
    with sqlite3.connect(older) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    (tmp_path / "not-a-db.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the decision store"):
        SQLiteStore(tmp_path / "not-a-db.sqlite")


def test_retention_deletes_what_is_older_than_its_days(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.sqlite")
    then = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    old = _record(made_at=then, id=uuid7(int(then.timestamp() * 1000)))  # an id sorts by when it was made
    new = _record()
    store.put([old, new], [("d" * 64, "nasional", {})])
    assert store.delete_older_than(30) == 1
    assert store.get(old.id) is None and store.get(new.id) is not None
    store.close()


WRITER = """
import datetime as dt, sys
from kinerja_rules.store import IDS, DecisionRecord, SQLiteStore
store = SQLiteStore(sys.argv[1])
for i in range(10_000):
    record = DecisionRecord(id=IDS.next(), made_at=dt.datetime.now(dt.timezone.utc), policy_id="nasional",
                            policy_version="1", policy_digest="d" * 64, as_of=dt.date(2025, 3, 1), input={"i": i},
                            outputs={"i": i})
    store.put([record], [("d" * 64, "nasional", {})])
    print(record.id, flush=True)  # answered: it must survive whatever happens next
"""


def test_every_record_answered_survives_a_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None
    answered = [process.stdout.readline().strip() for _ in range(300)]
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    store = SQLiteStore(path)
    assert all(store.get(i) is not None for i in answered)
    store.close()


def test_ids_keep_their_order_when_the_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from kinerja_rules.store import ids as module

    ids = module._Ids()
    clock = iter([1_700_000_000.000, 1_700_000_000.000, 1_699_999_999.000, 1_700_000_000.001])
    monkeypatch.setattr(module.time, "time", lambda: next(clock))
    made = [ids.next() for _ in range(4)]
    assert made == sorted(made) and len(set(made)) == 4
    ids._bits = 2 ** 74 - 1  # a millisecond whose counter is used up borrows the next one
    monkeypatch.setattr(module.time, "time", lambda: 1_700_000_000.001)
    later = ids.next()
    assert later > made[-1] and int(later[:8] + later[9:13], 16) == 1_700_000_000_002


def test_a_writer_process_that_dies_fails_only_what_it_held_and_is_replaced(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.sqlite")
    store.put([_record()], [("d" * 64, "nasional", {})])
    committer = store._ready_committer
    assert committer is not None and committer._process.is_alive()  # type: ignore[union-attr]
    committer._process.kill()  # type: ignore[union-attr]
    committer._process.join()  # type: ignore[union-attr]
    with pytest.raises(StoreError, match="writer stopped"):
        store.put([_record()])
    kept = _record()
    store.put([kept])  # a new writer process took over
    assert store.get(kept.id) == kept
    store.close()
    store.close()  # a second close does nothing
    store.reopen()  # and a closed store opens again
    again = _record()
    store.put([again])
    assert store.get(again.id) == again
    store.close()


def test_an_event_loop_commits_through_its_own_pipe_and_survives_the_writer_dying(tmp_path: Path) -> None:
    import asyncio

    from kinerja_rules.store import DIRECT_ROWS, row_of

    store = SQLiteStore(tmp_path / "d.sqlite")
    store.put([_record()], [("d" * 64, "nasional", {})])

    async def run() -> list[str]:
        kept = [_record() for _ in range(40)]  # forty requests at once: committed together, answered each
        await asyncio.gather(*(store.put_async([row_of(r)]) for r in kept))
        big = [_record() for _ in range(DIRECT_ROWS + 1)]  # a large batch goes through the writer thread
        await store.put_async([row_of(r) for r in big])
        committer = store._ready_committer
        assert committer is not None and committer._loop is asyncio.get_running_loop()  # type: ignore[union-attr]
        committer._process.kill()  # type: ignore[union-attr]
        committer._process.join()  # type: ignore[union-attr]
        failures = 0
        for _ in range(4):  # what was in flight fails; a new writer process takes over
            try:
                again = _record()
                await store.put_async([row_of(again)])
                kept.append(again)
            except StoreError:
                failures += 1
        assert 1 <= failures <= 2 and store.get(kept[-1].id) is not None
        return [r.id for r in kept + big]

    ids = asyncio.run(run())
    assert all(store.get(i) is not None for i in ids)
    store.close()


_JSON = msgspec.json.Decoder(float_hook=Decimal)


def batch_kept_in_chunks(store: Store) -> None:
    """A batch of 250 records, three of them wrong (at a chunk's edges), decided with explain and
    kept in chunks: every decision reads back as it was sent and answered, found by person too;
    retention deletes a chunk once its decisions are gone, and keeps one an appeal still needs."""
    engine = bundled()
    before = {r.id for r in store.find(limit=1000)}  # made now too: retention below deletes them with the batch
    records = [{**BASE_RECORD, "nip": f"19850712201001{i:04d}"} for i in range(250)]
    for wrong in (0, 101, 249):
        records[wrong] = {**records[wrong], "status": "bukan_status"}
    texts = [msgspec.Raw(msgspec.json.encode(r)) for r in records]
    answer = decide(engine, "nasional", texts, None, True, Limits(), 0, Recording())
    assert answer is not None
    joined, failed, rows, chunks = answer
    assert failed == 3 and rows == [] and [c.size for c in chunks] == [CHUNK_DECISIONS, CHUNK_DECISIONS, 47]
    assert all(c.id <= c.last_id and c.inputs and c.answers for c in chunks)
    store.put_rows(rows, [source_of(engine.policy("nasional"))], chunks=chunks)
    results = _JSON.decode(b"[" + joined + b"]")
    decided = [(record, result) for record,
               result in zip(records, results, strict=True) if result["result"] == "decision"]
    assert len(decided) == 247
    for record, result in decided:
        kept = store.get(result["decision_id"])
        assert kept is not None and kept.input == _JSON.decode(msgspec.json.encode(record))
        assert kept.outputs == result["outputs"] and kept.trace == result["trace"] and kept.trace
        assert (kept.nip, kept.periode, kept.policy_digest) == (record["nip"], "2025-03", result["policy"]["digest"])
    found = store.find(policy_id="nasional", nip=records[150]["nip"], periode="2025-03")
    assert [r.id for r in found] == [decided[148][1]["decision_id"]] and found[0].input["nip"] == records[150]["nip"]
    page = store.find(limit=300)  # many chunks read for one page, each once
    assert [r.id for r in page if r.id not in before] == sorted(result["decision_id"] for _, result in decided)

    appealed = store.get(decided[120][1]["decision_id"])  # in the second chunk
    assert appealed is not None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    appeal = DecisionRecord(id=uuid7(int(later.timestamp() * 1000)), made_at=later, policy_id="nasional",
                            policy_version=appealed.policy_version, policy_digest=appealed.policy_digest,
                            as_of=appealed.as_of, input=appealed.input, outputs=appealed.outputs, appeal_of=appealed.id)
    store.put([appeal])
    cutoff = uuid7(int((later - dt.timedelta(days=1)).timestamp() * 1000), 0)
    assert store._delete(cutoff) == 246 + len(before)  # all but the appealed original
    assert store.get(appealed.id) == appealed and store.get(decided[0][1]["decision_id"]) is None
    assert [r.id for r in store.find(limit=10)] == [appealed.id, appeal.id]
    left = store._read("SELECT id FROM chunks")
    assert [c for (c,) in left] == [chunks[1].id]  # the other two went with their decisions


def test_a_batch_is_kept_in_chunks_and_each_decision_read_back_from_them(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.sqlite")
    batch_kept_in_chunks(store)
    with sqlite3.connect(tmp_path / "d.sqlite") as connection:  # kept once, in the chunk
        assert connection.execute("SELECT count(*) FROM decisions WHERE length(input) > 0 AND chunk_id IS NOT NULL"
                                  ).fetchone() == (0,)
    store.close()


def test_a_nip_with_a_nul_character_is_kept_but_not_found_by_a_cut_short_one(tmp_path: Path) -> None:
    """SQLite's JSON functions end a text at a NUL character: such a nip must not be kept cut short
    (found by "1985", and not by itself). No NIP holds one; the decision is still found by its id."""
    store = SQLiteStore(tmp_path / "d.sqlite", writer_process=False)
    engine = bundled()
    decision = msgspec.structs.replace(engine.evaluate("nasional", BASE_RECORD), decision_id=IDS.next())
    text = msgspec.json.encode(BASE_RECORD)
    chunker = Chunker(Recording(), [text], [ENCODER.encode(decision)])
    chunker.add(0, decision, {**BASE_RECORD, "nip": "1985\x00071220", "periode": "2025-03\x00"})
    chunker.close()
    store.put_rows([], [source_of(engine.policy("nasional"))], chunks=chunker.chunks)
    kept = store.get(decision.decision_id)
    assert kept is not None and (kept.nip, kept.periode) == (None, None) and kept.outputs == decision.outputs
    assert store.find(nip="1985") == [] and store.find(nip="1985\x00071220") == []
    store.close()


def test_redacted_batches_are_kept_row_by_row_without_the_values(tmp_path: Path) -> None:
    redactor = Redactor(("nip",), b"k" * 32)
    records = [msgspec.Raw(msgspec.json.encode({**BASE_RECORD, "nip": f"19850712201001{i:04d}"})) for i in range(3)]
    answer = decide(bundled(), "nasional", records, None, False, Limits(), 0, Recording(redactor=redactor))
    assert answer is not None and answer[3] == [] and len(answer[2]) == 3  # no chunk: it would hold the nip
    assert all(b"198507122010" not in row[8] and row[6].startswith("hmac-sha256:") for row in answer[2])


def test_a_store_of_the_last_version_is_upgraded_and_its_records_read(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    with sqlite3.connect(path, isolation_level=None) as connection:
        for step in MIGRATIONS[:2]:
            connection.executescript(step)
        connection.execute("PRAGMA user_version = 2")
        record = _record()
        connection.execute("INSERT INTO sources (digest, policy_id, files) VALUES (?, 'nasional', '{}')", ("d" * 64,))
        connection.execute(f"INSERT INTO decisions VALUES ({', '.join('?' * 17)})", row_of(record)[:17])
    store = SQLiteStore(path)
    assert store.get(record.id) == record
    assert [r.id for r in store.find(nip=record.nip)] == [record.id]
    with sqlite3.connect(path) as connection:  # found by person through the table made for it
        assert connection.execute("SELECT id FROM people WHERE nip = ?", (record.nip,)).fetchall() == [(record.id,)]
    batch_kept_in_chunks(store)  # and batches are kept in chunks from then on
    store.close()


def _people(path: Path) -> tuple[int, int]:
    """How many decisions are in `people`, and the mark."""
    with sqlite3.connect(path) as connection:
        return (connection.execute("SELECT count(*) FROM people").fetchone()[0],
                connection.execute("SELECT last_rowid FROM people_mark").fetchone()[0])


def test_a_person_is_found_before_and_after_the_writer_indexes_them(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kinerja_rules.store.writer.INDEX_ROWS", 4)
    path = tmp_path / "d.sqlite"
    store = SQLiteStore(path, writer_process=False)
    kept: list[DecisionRecord] = []
    for i in range(11):  # 3 waiting, then 6 (indexed), 3 waiting again, 6 (indexed) ...
        kept += [_record(nip=f"19850712201001100{j}", periode=f"2025-0{1 + (i + j) % 2}") for j in range(3)]
        store.put(kept[-3:], [("d" * 64, "nasional", {})])
        for j in range(3):
            nip = f"19850712201001100{j}"
            mine = [r.id for r in kept if r.nip == nip]
            assert [r.id for r in store.find(nip=nip, limit=10_000)] == mine
            assert [r.id for r in store.find(policy_id="nasional", nip=nip, periode="2025-02")] == \
                [r.id for r in kept if r.nip == nip and r.periode == "2025-02"]
            paged = store.find(nip=nip, limit=4)  # pages run across what is indexed and what is not
            while len(paged) < len(mine):
                paged += store.find(nip=nip, limit=4, after=paged[-1].id)
            assert [r.id for r in paged] == mine
    assert store.find(nip="199001012020011001") == []
    store.close()
    assert _people(path) == (30, 30)  # in bulk, once 4 were waiting: the last 3 are not yet


def test_a_look_up_by_nip_searches_the_table_by_person_and_not_the_whole_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.sqlite", writer_process=False)
    seen: list[str] = []
    store._reader.set_trace_callback(seen.append)
    store.find(nip="198507122010011003")  # no policy named: the nip alone leads to the person
    plan = " ".join(str(step) for step in store._reader.execute(f"EXPLAIN QUERY PLAN {seen[-1]}"))
    assert "SEARCH people USING PRIMARY KEY (nip=?)" in plan and "SCAN people'" not in plan
    assert "SEARCH decisions USING INTEGER PRIMARY KEY (rowid>?)" in plan  # only those after the mark
    store.close()


def test_retention_leaves_no_one_behind_in_the_table_by_person(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kinerja_rules.store.writer.INDEX_ROWS", 1)
    path = tmp_path / "d.sqlite"
    store = SQLiteStore(path, writer_process=False)
    then = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    store.put([_record(made_at=then, id=uuid7(int(then.timestamp() * 1000)))], [("d" * 64, "nasional", {})])
    store.close()
    assert _people(path) == (1, 1)
    store.reopen()
    assert store.delete_older_than(30) == 1
    assert _people(path) == (0, 0)  # the next decision's rowid is 1 again: the mark went back with it
    new = _record()
    store.put([new])
    assert [r.id for r in store.find(nip=new.nip)] == [new.id]
    store.close()
