"""The store common to both databases: the schema's steps, group commit through one writer,
and reading records back. `SQLiteStore` and `PostgresStore` say how they connect and the few
words of SQL where they differ."""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
import queue
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from kinerja_rules.store.ids import uuid7
from kinerja_rules.store.keberatan import KeberatanTables
from kinerja_rules.store.records import (
    CANONICAL,
    CHUNK_AT,
    CHUNKS_PER_READ,
    DECODER,
    SELECT,
    Chunk,
    DecisionRecord,
    Row,
    Run,
    Source,
    StoreError,
    insert_sql,
    record_of_row,
    row_of,
    text_of,
)
from kinerja_rules.store.redaction import NO_REDACTION, Redactor
from kinerja_rules.store.writer import Committer, InThread, Pending, settle

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
    # 2: the plugins a policy version used, what a decision redacted, where it stood in its run
    """
    ALTER TABLE sources ADD COLUMN plugins BLOB;        -- {plugin: {version, code}}
    ALTER TABLE decisions ADD COLUMN redacted BLOB;     -- the input fields kept as keyed hashes
    ALTER TABLE decisions ADD COLUMN population BLOB;   -- group, member, size, rank, seat
    ALTER TABLE decisions ADD COLUMN request_id TEXT;
    ALTER TABLE runs ADD COLUMN policy_id TEXT;
    ALTER TABLE runs ADD COLUMN as_of TEXT;             -- the as_of the run was asked with, if any
    CREATE INDEX decisions_by_run ON decisions (run_id) WHERE run_id IS NOT NULL;
    DROP INDEX decisions_by_time;                       -- ids sort by time: retention deletes by id
    """,
    # 3: a batch's decisions kept as the batch came and was answered, one chunk for them all
    """
    CREATE TABLE chunks (
        id TEXT PRIMARY KEY,           -- made before its decisions' ids, so sorts before them
        last_id TEXT NOT NULL,         -- its last decision's id: retention deletes it once past that
        inputs BLOB NOT NULL,          -- the records' JSON texts as received, one after another (zlib)
        answers BLOB NOT NULL          -- the batch's results as answered, comma-separated (zlib)
    );
    ALTER TABLE decisions ADD COLUMN chunk_id TEXT REFERENCES chunks(id);
    ALTER TABLE decisions ADD COLUMN input_at INTEGER;  -- where its record lies in the chunk's inputs
    ALTER TABLE decisions ADD COLUMN input_len INTEGER;
    ALTER TABLE decisions ADD COLUMN answer_at INTEGER; -- and its result in the answers
    ALTER TABLE decisions ADD COLUMN answer_len INTEGER;
    """,
    # 4 (SQLite): decisions by person in a table of their own, filled in bulk (see `SQLiteStore`)
    """
    CREATE TABLE people (              -- read when a look-up names a nip
        nip TEXT NOT NULL,             -- x'' (a blob, equal to no text) for a decision without one
        policy_id TEXT NOT NULL,
        periode TEXT NOT NULL,         -- x'' as for nip
        id TEXT NOT NULL,
        PRIMARY KEY (nip, policy_id, periode, id)
    ) WITHOUT ROWID;
    CREATE TABLE people_mark (
        last_rowid INTEGER NOT NULL    -- the decisions up to this rowid are in people; those after, not yet
    );
    INSERT INTO people SELECT coalesce(nip, x''), policy_id, coalesce(periode, x''), id FROM decisions
        ORDER BY 1, 2, 3, 4;
    INSERT INTO people_mark SELECT coalesce(max(rowid), 0) FROM decisions;
    DROP INDEX decisions_by_person;
    """,
    # 5: when a decision reached its employee, the keberatan against it and its putusan
    """
    ALTER TABLE decisions ADD COLUMN keberatan_id TEXT; -- a putusan's new decision: the keberatan it decided
    ALTER TABLE decisions ADD COLUMN alasan TEXT;       -- an appeal's reason
    CREATE TABLE pemberitahuan (
        decision_id TEXT PRIMARY KEY,  -- no foreign key: retention deletes both, in its own order
        tanggal TEXT NOT NULL,         -- the day the decision reached the employee
        body BLOB NOT NULL             -- canonical JSON: the notification as answered
    );
    CREATE TABLE keberatan (
        id TEXT PRIMARY KEY,           -- UUIDv7: sorts by filing time
        decision_id TEXT NOT NULL UNIQUE,
        policy_id TEXT NOT NULL,
        nip TEXT,                      -- the decision's (a keyed hash when redacted)
        status TEXT NOT NULL,          -- diajukan, then ditolak, diterima or diubah
        body BLOB NOT NULL             -- canonical JSON: the keberatan as answered, with its putusan and steps
    );
    CREATE INDEX keberatan_by_person ON keberatan (nip, id);
    CREATE INDEX keberatan_by_status ON keberatan (policy_id, status, id);
    """,
    # 6: whom each decision is for, as answered (redacted fields as the store keeps them)
    """
    ALTER TABLE decisions ADD COLUMN subject BLOB;      -- canonical JSON; a chunk's decisions keep it in their answers
    """,
)
"""Each step of the schema, in order; a store records how many it has applied."""

SQLITE_ONLY = frozenset({3})
"""The steps (by index) a PostgreSQL store skips: it keeps its index by person as it is."""


ROWS_PER_INSERT = 256  # 25 values each: well within SQLite's and PostgreSQL's limits on parameters


CHUNK_ROWS = ("INSERT INTO decisions (id, made_at, policy_id, policy_version, policy_digest, as_of, nip, periode, "
               "input, outputs, key_id, request_id, chunk_id, input_at, input_len, answer_at, answer_len) "
               "SELECT value->>0, ?, ?, ?, ?, value->>3, value->>1, value->>2, ?, ?, ?, ?, ?, "
               "CAST(value->>4 AS INTEGER), CAST(value->>5 AS INTEGER), CAST(value->>6 AS INTEGER), "
               "CAST(value->>7 AS INTEGER) FROM {rows}")
"""A chunk's decisions' rows, made by the database from its `decisions` JSON in one statement: no
values bound (and checked) one by one in Python."""

DELETE_CHUNKS = ("DELETE FROM chunks WHERE last_id < ? AND id NOT IN "  # all its decisions are past, but for
                  "(SELECT chunk_id FROM decisions WHERE id < ? AND chunk_id IS NOT NULL)")  # those an appeal keeps


class Store(KeberatanTables, abc.ABC):
    """Decisions kept in a database. Thread-safe: `put` from any thread (or `put_async` from an event
    loop) returns once the records are committed, several callers' records in one transaction.

    The engines differ in how they connect and in a few words of SQL; `SQLiteStore` and
    `PostgresStore` say how.
    """

    where: str  # for messages: the file or the server
    redactor: Redactor = NO_REDACTION
    _insert_source = "INSERT OR IGNORE INTO sources (digest, policy_id, files, plugins) VALUES (?, ?, ?, ?)"
    _json_rows = "json_each(?)"  # the elements of a JSON array given as text, each as `value`
    _errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    _conflicts: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)

    _ready_committer: Committer | None = None
    closed = True

    def _start(self) -> None:
        self.closed = False
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._read_lock = threading.Lock()
        self._known_sources: set[str] = set()
        self._writer = threading.Thread(target=self._write_loop, name="decision-store", daemon=True)
        self._writer.start()

    def _open(self) -> None:
        """Connect for reading and bring the schema up to date; a failure closes what it opened and
        says which store."""
        try:
            self._reader = self._connect()
        except self._errors as exc:
            raise StoreError(f"cannot open the decision store {self.where}: {str(exc).strip()}") from None
        try:
            self.migrate(self._reader)
        except BaseException as exc:
            self._reader.close()
            if isinstance(exc, self._errors):
                raise StoreError(f"cannot open the decision store {self.where}: {str(exc).strip()}") from None
            raise

    @abc.abstractmethod
    def migrate(self, connection: Any) -> int:
        """Bring the schema up to date; returns the version."""

    # ---- what each engine says ----
    @abc.abstractmethod
    def _connect(self) -> Any:
        """A new connection to the database."""

    def _sql(self, text: str) -> str:
        return text

    # ---- writing ----
    def put(self, records: Sequence[DecisionRecord], sources: Iterable[Sequence[Any]] = (),
            runs: Sequence[Run] = ()) -> None:
        """Keep `records` (and the policy sources and runs they name); returns once they are committed.
        Raises StoreError when they could not be kept."""
        self.put_rows([row_of(r) for r in records], sources, runs)

    def put_rows(self, rows: list[Row], sources: Iterable[Sequence[Any]] = (), runs: Sequence[Run] = (),
                 chunks: Sequence[Chunk] = ()) -> None:
        """`put` of rows already made (`row_of`, `decision_row`), or of `chunks` of decisions."""
        pending = self._pending(rows, sources, runs, chunks)
        pending.done = done = threading.Event()
        self._queue.put(pending)
        done.wait()
        self._settled(pending)

    async def put_async(self, rows: list[Row], sources: Iterable[Sequence[Any]] = (),
                        runs: Sequence[Run] = (), chunks: Sequence[Chunk] = ()) -> None:
        """`put_rows` for an event loop: it waits for the commit without holding a thread."""
        pending = self._pending(rows, sources, runs, chunks)
        pending.future = asyncio.get_running_loop().create_future()
        direct = self._ready_committer
        if direct is None or not direct.send(pending):  # a writer process takes it from this loop itself
            self._queue.put(pending)
        await pending.future
        self._settled(pending)

    def _pending(self, rows: list[Row], sources: Iterable[Sequence[Any]], runs: Sequence[Run],
                 chunks: Sequence[Chunk] = ()) -> Pending:
        archived = []
        for given in sources:
            if given[0] not in self._known_sources:  # each version is archived once
                source = Source(*given)
                archived.append((source.digest, source.policy_id, CANONICAL.encode(source.files),
                                 CANONICAL.encode(source.plugins)))
        run_rows = [(r.id, r.made_at.isoformat(), r.policy_digest, None if r.groups is None else
                     CANONICAL.encode(r.groups), None if r.seats is None else CANONICAL.encode(r.seats), r.policy_id,
                     None if r.as_of is None else r.as_of.isoformat()) for r in runs] if runs else []
        return Pending(rows, archived, run_rows, chunks)

    def _settled(self, pending: Pending) -> None:
        if pending.error is not None:
            raise StoreError(f"the decision could not be kept: {pending.error}") from None
        self._known_sources.update(digest for digest, _, _, _ in pending.sources)

    def _write_loop(self) -> None:
        committer = self._ready_committer or self._committer()
        while True:
            first = self._queue.get()
            if first is None:
                committer.close()
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
            committer.commit(batch)
            waiting: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for pending in batch:
                if pending.future is not None:
                    waiting.setdefault(pending.future.get_loop(), []).append(pending.future)
                elif pending.done is not None:
                    pending.done.set()
            for loop, futures in waiting.items():  # one wake-up of each loop for all its waiters
                try:
                    loop.call_soon_threadsafe(settle, futures)
                except RuntimeError:  # that loop has closed: nobody is waiting there any more
                    pass
            committer.tidy()
            if stop:
                committer.close()
                return

    def _committer(self) -> Committer:
        return InThread(self)

    def _retry_alone(self, connection: Any, batch: list[Pending], exc: BaseException) -> Any:
        """A failed group commit: each caller's records are tried on their own, so one bad write fails
        only its own caller."""
        if getattr(connection, "closed", False):  # the server went away: a new connection for what follows
            try:
                connection = self._connect()
            except self._errors:
                pass
        if len(batch) == 1:
            batch[0].error = exc
            return connection
        for pending in batch:
            try:
                self._commit(connection, [pending])
            except self._errors as own:
                pending.error = own
        return connection

    def _commit(self, connection: Any, batch: list[Pending]) -> None:
        """Write the batch's sources, runs and decisions in one transaction, or nothing of it.

        The decisions go in a few multi-row INSERTs rather than one statement per row: the database
        works with the GIL released, and taking it back once per statement (not once per row) keeps
        a busy event loop from delaying the commit.
        """
        run = self._sql("INSERT INTO runs (id, made_at, policy_digest, groups, seats, policy_id, as_of) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)")
        source = self._sql(self._insert_source)
        chunk = self._sql("INSERT INTO chunks (id, last_id, inputs, answers) VALUES (?, ?, ?, ?)")
        chunk_rows = self._sql(CHUNK_ROWS.format(rows=self._json_rows))
        rows = [row for pending in batch for row in pending.rows]
        cursor = connection.cursor()
        try:
            cursor.execute("BEGIN")
            for pending in batch:
                if pending.sources:
                    cursor.executemany(source, pending.sources)
                if pending.runs:
                    cursor.executemany(run, pending.runs)
                for given in pending.chunks:
                    cursor.execute(chunk, given[:4])
                    cursor.execute(chunk_rows, (given.made_at, *given.policy, b"", b"", given.key_id,
                                                given.request_id, given.id, given.decisions))
            if rows:
                self._insert_rows(cursor, rows)
            cursor.execute("COMMIT")
        except BaseException:
            try:
                cursor.execute("ROLLBACK")
            except self._errors:
                pass
            raise

    def _insert_rows(self, cursor: Any, rows: list[Row]) -> None:
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start:start + ROWS_PER_INSERT]
            cursor.execute(self._insert(len(chunk)), [value for row in chunk for value in row])

    def _insert(self, count: int) -> str:
        return self._sql(insert_sql(count))

    def close(self) -> None:
        """Commit what is waiting, then stop the writer (a second close does nothing)."""
        if self.closed:
            return
        self.closed = True
        self._queue.put(None)
        self._writer.join(timeout=30)
        self._close_reader()

    def reopen(self) -> None:
        """Open a closed store again (an application that is started, stopped and started again)."""
        if not self.closed:
            return
        self._reader = self._connect()
        self._ready_committer = self._committer()
        self._start()

    @abc.abstractmethod
    def _close_reader(self) -> None:
        """Close the connection reads go through."""

    # ---- reading (`_read`, the rows a query selects, is each engine's) ----
    def get(self, decision_id: str) -> DecisionRecord | None:
        rows = self._read(f"{SELECT} WHERE id = ?", (decision_id,))
        return self._records(rows)[0] if rows else None

    def _records(self, rows: list[tuple[Any, ...]]) -> list[DecisionRecord]:
        """The records of rows `SELECT` read; those kept in chunks get their record and result from
        there, a few chunks read at a time and each only once."""
        in_chunks: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            if row[CHUNK_AT] is not None:
                in_chunks.setdefault(row[CHUNK_AT], []).append(row)
        parts: dict[str, tuple[bytes, bytes]] = {}
        wanted = list(in_chunks)
        for start in range(0, len(wanted), CHUNKS_PER_READ):
            some = wanted[start:start + CHUNKS_PER_READ]
            for chunk_id, packed_inputs, packed_answers in self._read(
                    f"SELECT id, inputs, answers FROM chunks WHERE id IN ({', '.join('?' * len(some))})", some):
                inputs, answers = zlib.decompress(packed_inputs), zlib.decompress(packed_answers)
                for row in in_chunks.pop(chunk_id):
                    at, length, answer_at, answer_length = row[CHUNK_AT + 1:CHUNK_AT + 5]
                    parts[row[0]] = (bytes(inputs[at:at + length]),
                                     bytes(answers[answer_at:answer_at + answer_length]))
        if in_chunks:  # the schema's foreign key keeps this from happening
            raise StoreError(f"the decision store {self.where} lacks the chunk {next(iter(in_chunks))} "
                             f"that decisions refer to")
        return [record_of_row(row, parts.get(row[0])) for row in rows]

    def sources(self, digest: str) -> dict[str, str] | None:
        """The files of an archived policy version, by digest."""
        source = self.source(digest)
        return None if source is None else source.files

    def source(self, digest: str) -> Source | None:
        """An archived policy version: its files and the plugins it used."""
        rows = self._read("SELECT digest, policy_id, files, plugins FROM sources WHERE digest = ?", (digest,))
        if not rows:
            return None
        digest, policy_id, files, plugins = rows[0]
        return Source(digest, policy_id, DECODER.decode(files), {} if plugins is None else DECODER.decode(plugins))

    def run(self, run_id: str) -> tuple[Run, list[DecisionRecord]] | None:
        """A population run and its members' decisions, in the order they were made."""
        rows = self._read("SELECT id, made_at, policy_digest, groups, seats, policy_id, as_of FROM runs WHERE id = ?",
                          (run_id,))
        if not rows:
            return None
        id_, made_at, digest, groups, seats, policy_id, as_of = rows[0]
        run = Run(id=id_, made_at=dt.datetime.fromisoformat(text_of(made_at)), policy_id=policy_id or "",
                  policy_digest=digest, groups=None if groups is None else DECODER.decode(groups),
                  seats=None if seats is None else DECODER.decode(seats),
                  as_of=None if as_of is None else dt.date.fromisoformat(as_of))
        members = self._records(self._read(f"{SELECT} WHERE run_id = ? AND appeal_of IS NULL ORDER BY id",
                                           (run_id,)))
        return run, members

    def ping(self) -> None:
        """A trivial read: returns once the database answers."""
        self._read("SELECT 1")

    def find(self, policy_id: str | None = None, nip: str | None = None, periode: str | None = None,
             limit: int = 100, after: str | None = None, policies: Sequence[str] | None = None,
             periods: tuple[str, str] | None = None) -> list[DecisionRecord]:
        """Decisions in id order (time order), filtered; `after` is the last id of the previous page,
        `policies` the policy ids the caller may read, `periods` a range of periode (both ends in).
        A value with a NUL character finds nothing, in every dialect (no id, NIP or period holds one,
        and PostgreSQL refuses the character in a query)."""
        if any(value is not None and "\x00" in value for value in (policy_id, nip, periode, after)):
            return []
        if nip is not None and "nip" in self.redactor.fields:
            nip = self.redactor.hash(nip)  # a redacted nip is found by its hash
        clauses, args = [], []
        for column, value in (("policy_id", policy_id), ("nip", nip), ("periode", periode)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if policies is not None:
            clauses.append(f"policy_id IN ({', '.join('?' * len(policies))})" if policies else "1 = 0")
            args.extend(policies)
        if periods is not None:  # (rapel) read through the index by person, whose first column is the policy
            clauses.append("periode >= ? AND periode <= ?")
            args.extend(periods)
        if after is not None:
            clauses.append("id > ?")
            args.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        limit = max(1, min(limit, 10_000))
        if nip is not None:
            return self._records(self._by_person(where, args, limit))
        return self._records(self._read(f"{SELECT} {where} ORDER BY id LIMIT ?", (*args, limit)))

    def _by_person(self, where: str, args: list[Any], limit: int) -> list[tuple[Any, ...]]:
        """The rows of a person's decisions (`where` names a nip) in id order, up to `limit`."""
        return self._read(f"{SELECT} {where} ORDER BY id LIMIT ?", (*args, limit))

    # ---- between commits ----
    def _unindexed(self, connection: Any) -> int:
        """How many decisions are not yet in the index by person that `_index` keeps (none here)."""
        return 0

    def _index(self, connection: Any) -> int:
        """Bring the index by person up to date; returns how many decisions it still lacks (none here:
        the database keeps it as each decision is written)."""
        return 0

    def delete_older_than(self, days: int) -> int:
        """Retention: delete the decisions made more than `days` days ago (and the runs left without
        members); returns how many decisions."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        return self._delete(uuid7(int(cutoff.timestamp() * 1000), 0))  # the first id of that millisecond

    @abc.abstractmethod
    def _delete(self, cutoff: str) -> int:
        """Delete what has an id before `cutoff` (so was made before it)."""
