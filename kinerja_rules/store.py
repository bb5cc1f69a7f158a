"""The decision store: every decision kept with what made it, so it can be shown and replayed.

A decision record holds its id (time-ordered, UUIDv7), when it was made, the policy (id,
version, digest), `as_of`, the input record as received (canonical JSON), the outputs, the
trace when one was asked for, and the caller's key. The policy sources are archived by
digest, content-addressed, so a decision replays exactly after its files changed or were
deleted. A population run is kept as one run (its group data and seats) that its members
point to.

The embedded store is SQLite in WAL mode. Writers hand their records to one writer thread,
which commits whatever is waiting in one transaction (group commit) and only then releases
them: a decision is durable before its answer is sent, and no caller holds a lock while
another decides. The schema carries its version; `migrate` upgrades an older store in place.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from kinerja_rules.decision import ENCODER

CANONICAL = msgspec.json.Encoder(decimal_format="number", order="sorted", enc_hook=ENCODER.enc_hook)
"""JSON with its keys sorted and decimals as numbers: one text for one value."""
_DECODER = msgspec.json.Decoder(float_hook=Decimal)

MIGRATIONS: tuple[str, ...] = (
    # 1: decisions, archived sources, population runs
    """
    CREATE TABLE sources (
        digest TEXT PRIMARY KEY,
        policy_id TEXT NOT NULL,
        files BLOB NOT NULL            -- canonical JSON: {file name: text}
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        made_at TEXT NOT NULL,
        policy_digest TEXT NOT NULL REFERENCES sources(digest),
        groups BLOB,                   -- canonical JSON
        seats BLOB
    );
    CREATE TABLE decisions (
        id TEXT PRIMARY KEY,           -- UUIDv7: sorts by time
        made_at TEXT NOT NULL,
        policy_id TEXT NOT NULL,
        policy_version TEXT NOT NULL,
        policy_digest TEXT NOT NULL REFERENCES sources(digest),
        as_of TEXT NOT NULL,
        nip TEXT,                      -- for look-ups (a keyed hash when redacted)
        periode TEXT,
        input BLOB NOT NULL,           -- the record as received, canonical JSON
        outputs BLOB NOT NULL,
        trace BLOB,
        key_id TEXT,
        run_id TEXT REFERENCES runs(id),
        appeal_of TEXT REFERENCES decisions(id)
    );
    CREATE INDEX decisions_by_person ON decisions (policy_id, nip, periode, id);
    CREATE INDEX decisions_by_time ON decisions (made_at);
    """,
)
"""Each step of the schema, in order; a store records how many it has applied."""


class StoreError(Exception):
    """The store cannot be opened, is newer than this version, or could not keep a record."""


def uuid7(now_ms: int | None = None, counter: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random (or counting) bits, so
    ids sort by time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    bits = secrets.randbits(74) if counter is None else counter
    value = (ms & (2 ** 48 - 1)) << 80 | 0x7 << 76 | (bits >> 62) << 64 | 0b10 << 62 | (bits & (2 ** 62 - 1))
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class _Ids:
    """Time-ordered ids that also sort in the order they were made within one millisecond (or when
    the clock steps back): the 74 bits after the time then count up from the last id by a random
    step (RFC 9562, method 2)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._bits = 0

    def next(self) -> str:
        with self._lock:
            ms = int(time.time() * 1000)
            if ms > self._ms:
                self._ms, self._bits = ms, secrets.randbits(73)  # headroom to count up within the millisecond
            else:
                self._bits += 1 + secrets.randbits(16)
                if self._bits >= 2 ** 74:  # the millisecond is used up: borrow the next one
                    self._ms, self._bits = self._ms + 1, secrets.randbits(73)
            return uuid7(self._ms, self._bits)


IDS = _Ids()


@dataclass(frozen=True)
class DecisionRecord:
    """One decision as the store keeps it."""

    id: str
    made_at: dt.datetime
    policy_id: str
    policy_version: str
    policy_digest: str
    as_of: dt.date
    input: Any
    outputs: dict[str, Any]
    trace: dict[str, Any] | None = None
    nip: str | None = None
    periode: str | None = None
    key_id: str | None = None
    run_id: str | None = None
    appeal_of: str | None = None


@dataclass
class _Pending:
    rows: list[tuple[Any, ...]]
    sources: list[tuple[str, str, bytes]]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class SQLiteStore:
    """Decisions in a SQLite file (WAL). Thread-safe: `put` from any thread returns once the
    records are committed, several callers' records in one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._reader = self._connect()
            self.migrate(self._reader)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the decision store {self.path}: {exc}") from None
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._read_lock = threading.Lock()
        self._known_sources: set[str] = set()
        self._writer = threading.Thread(target=self._write_loop, name="decision-store", daemon=True)
        self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # committed means on disk, even if the machine stops
        connection.execute("PRAGMA foreign_keys=ON")
        return connection

    @staticmethod
    def migrate(connection: sqlite3.Connection) -> int:
        """Bring the schema up to date, each step in its own transaction; returns the version."""
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(f"the decision store has schema version {version}; this kinerja-rules knows up to "
                             f"{len(MIGRATIONS)}: upgrade kinerja-rules")
        for step in range(version, len(MIGRATIONS)):
            try:  # one transaction per step: a step applies whole or not at all
                connection.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[step]}; PRAGMA user_version = {step + 1}; COMMIT;")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        return len(MIGRATIONS)

    # ---- writing ----
    def put(self, records: Sequence[DecisionRecord], sources: Iterable[tuple[str, str, dict[str, str]]] = ()) -> None:
        """Keep `records` (and the policy sources they name, as (digest, policy id, files)); returns
        once they are committed. Raises StoreError when they could not be kept."""
        rows = [(r.id, r.made_at.isoformat(), r.policy_id, r.policy_version, r.policy_digest, r.as_of.isoformat(),
                 r.nip, r.periode, CANONICAL.encode(r.input), CANONICAL.encode(r.outputs),
                 None if r.trace is None else CANONICAL.encode(r.trace), r.key_id, r.run_id, r.appeal_of)
                for r in records]
        archived = [(digest, policy_id, CANONICAL.encode(files)) for digest, policy_id, files in sources
                    if digest not in self._known_sources]
        pending = _Pending(rows, archived)
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise StoreError(f"the decision could not be kept: {pending.error}") from None
        self._known_sources.update(digest for digest, _, _ in archived)

    def _write_loop(self) -> None:
        connection = self._connect()
        while True:
            first = self._queue.get()
            if first is None:
                connection.close()
                return
            batch = [first]
            stop = False
            while True:  # whatever else is waiting goes in the same transaction
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            try:
                _commit(connection, batch)
            except sqlite3.Error as exc:
                self._retry_alone(connection, batch, exc)
            for pending in batch:
                pending.done.set()
            if stop:
                connection.close()
                return

    @staticmethod
    def _retry_alone(connection: sqlite3.Connection, batch: list[_Pending], exc: sqlite3.Error) -> None:
        """A failed group commit: each caller's records are tried on their own, so one bad write fails
        only its own caller."""
        if len(batch) == 1:
            batch[0].error = exc
            return
        for pending in batch:
            try:
                _commit(connection, [pending])
            except sqlite3.Error as own:
                pending.error = own

    def close(self) -> None:
        """Commit what is waiting, then stop the writer."""
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._reader.close()

    # ---- reading ----
    def get(self, decision_id: str) -> DecisionRecord | None:
        with self._read_lock:
            row = self._reader.execute("SELECT * FROM decisions WHERE id = ?", (decision_id,)).fetchone()
        return None if row is None else _record(row)

    def sources(self, digest: str) -> dict[str, str] | None:
        """The files of an archived policy version, by digest."""
        with self._read_lock:
            row = self._reader.execute("SELECT files FROM sources WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else _DECODER.decode(row[0])

    def find(self, policy_id: str | None = None, nip: str | None = None, periode: str | None = None,
             limit: int = 100, after: str | None = None) -> list[DecisionRecord]:
        """Decisions in id order (time order), filtered; `after` is the last id of the previous page."""
        clauses, args = [], []
        for column, value in (("policy_id", policy_id), ("nip", nip), ("periode", periode)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if after is not None:
            clauses.append("id > ?")
            args.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read_lock:
            rows = self._reader.execute(f"SELECT * FROM decisions {where} ORDER BY id LIMIT ?",  # noqa: S608
                                        (*args, max(1, min(limit, 1000)))).fetchall()
        return [_record(row) for row in rows]

    def delete_older_than(self, days: int) -> int:
        """Retention: delete the decisions made more than `days` days ago; returns how many."""
        cutoff = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).isoformat()
        with self._read_lock:
            cursor = self._reader.execute("DELETE FROM decisions WHERE made_at < ?", (cutoff,))
        return cursor.rowcount


def _commit(connection: sqlite3.Connection, batch: list[_Pending]) -> None:
    """Write the batch's sources and decisions in one transaction, or nothing of it."""
    try:
        connection.execute("BEGIN")
        for pending in batch:
            connection.executemany("INSERT OR IGNORE INTO sources VALUES (?, ?, ?)", pending.sources)
            connection.executemany("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                   pending.rows)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _record(row: tuple[Any, ...]) -> DecisionRecord:
    (id_, made_at, policy_id, version, digest, as_of, nip, periode, raw_input, outputs, trace, key_id, run_id,
     appeal_of) = row
    return DecisionRecord(id=id_, made_at=dt.datetime.fromisoformat(made_at), policy_id=policy_id,
                          policy_version=version, policy_digest=digest, as_of=dt.date.fromisoformat(as_of),
                          input=_DECODER.decode(raw_input), outputs=_DECODER.decode(outputs),
                          trace=None if trace is None else _DECODER.decode(trace), nip=nip, periode=periode,
                          key_id=key_id, run_id=run_id, appeal_of=appeal_of)


def default_data_dir() -> Path:
    """Where `kinerja serve` keeps its decisions unless told otherwise: `kinerja-data/` in the
    working directory (or `KINERJA_DATA`)."""
    return Path(os.environ.get("KINERJA_DATA", "kinerja-data"))
