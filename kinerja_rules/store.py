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

import abc
import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import itertools
import logging
import multiprocessing
import os
import pickle
import queue
import random
import re
import secrets
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

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
)
"""Each step of the schema, in order; a store records how many it has applied."""

_SQLITE_ONLY = frozenset({3})
"""The steps (by index) a PostgreSQL store skips: it keeps its index by person as it is."""


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
        # ids name records, they grant nothing (reading one needs a key for its policy): a generator seeded
        # from the system's is random enough, and far cheaper than a system call per id
        self._random = random.Random(secrets.randbits(256))
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        """A forked process makes ids of its own: a new seed, and its next id starts afresh."""
        self._lock = threading.Lock()
        self._random.seed(secrets.randbits(256))
        self._ms = self._bits = 0
        self._shared = (-1, -1, "")

    def next(self) -> str:
        with self._lock:
            ms = int(time.time() * 1000)
            if ms > self._ms:
                self._ms, self._bits = ms, self._random.getrandbits(73)  # headroom to count up within the ms
            else:
                self._bits += 1 + self._random.getrandbits(16)
                if self._bits >= 2 ** 74:  # the millisecond is used up: borrow the next one
                    self._ms, self._bits = self._ms + 1, self._random.getrandbits(73)
            ms, bits = self._ms, self._bits
        return self._text(ms, bits)

    _shared: tuple[int, int, str] = (-1, -1, "")  # the last id's time, bits >> 48 and first 24 characters

    def _text(self, ms: int, bits: int) -> str:
        """`uuid7(ms, bits)`, formatting only the last 12 characters while the first 24 stay the same."""
        shared_ms, high, first = self._shared  # one tuple, read and replaced whole: safe across threads
        if shared_ms != ms or high != bits >> 48:
            first = uuid7(ms, bits)[:24]
            self._shared = (ms, bits >> 48, first)
        return first + "%012x" % (bits & 0xFFFFFFFFFFFF)

    def take(self, count: int) -> list[str]:
        """`count` ids at once, as `next` would make them one after another (a batch's), for a fraction
        of the cost: one lock and one draw of random steps for them all."""
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms > self._ms:
                self._ms, self._bits = ms, self._random.getrandbits(73)
            steps = memoryview(self._random.randbytes(2 * count)).cast("H")
            values = list(itertools.accumulate(steps, lambda bits, step: bits + 1 + step, initial=self._bits))[1:]
            used_up = values[-1] >= 2 ** 74 if values else False
            if not used_up and values:
                ms, self._bits = self._ms, values[-1]
        if used_up:  # the millisecond's ids run out within these: one by one, which borrows the next one
            return [self.next() for _ in range(count)]
        return [self._text(ms, bits) for bits in values]


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
    redacted: tuple[str, ...] = ()
    population: dict[str, Any] | None = None
    request_id: str | None = None

    def describe(self) -> dict[str, Any]:
        """The record as the decisions endpoints and `kinerja replay` show it."""
        out: dict[str, Any] = {
            "decision_id": self.id, "made_at": self.made_at.isoformat(),
            "policy": {"id": self.policy_id, "version": self.policy_version, "digest": self.policy_digest},
            "as_of": self.as_of.isoformat(), "input": self.input, "outputs": self.outputs}
        for name in ("trace", "population", "key_id", "run_id", "appeal_of", "request_id"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.redacted:
            out["redacted"] = list(self.redacted)
        return out


class Source(NamedTuple):
    """A policy version as archived: its files by name, and the plugins it used ({name: {version, code}})."""

    digest: str
    policy_id: str
    files: dict[str, str]
    plugins: dict[str, Any] = {}


@dataclass(frozen=True)
class Run:
    """A population run: what its members were decided with besides their own records."""

    id: str
    made_at: dt.datetime
    policy_id: str
    policy_digest: str
    groups: Any = None
    seats: Any = None
    as_of: dt.date | None = None


_ROWS_PER_INSERT = 256  # 22 values each: well within SQLite's and PostgreSQL's limits on parameters


@functools.cache  # at most _ROWS_PER_INSERT texts
def _insert_sql(count: int) -> str:
    one = f"({', '.join('?' * len(_COLUMNS))})"
    return f"INSERT INTO decisions ({', '.join(_COLUMNS)}) VALUES {', '.join([one] * count)}"

Row = tuple[Any, ...]
"""A decision as the store writes it (see `row_of`)."""

_COLUMNS = ("id", "made_at", "policy_id", "policy_version", "policy_digest", "as_of", "nip", "periode", "input",
            "outputs", "trace", "key_id", "run_id", "appeal_of", "redacted", "population", "request_id",
            "chunk_id", "input_at", "input_len", "answer_at", "answer_len")
_IN_ROW = (None, None, None, None, None)  # a decision kept whole in its row, in no chunk
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM decisions"
_CHUNK = _COLUMNS.index("chunk_id")
_CHUNKS_PER_READ = 16  # chunks of at most CHUNK_DECISIONS decisions: a few MiB at a time


def findable(value: Any) -> str | None:
    """A record's nip or periode as the store finds decisions by it: a text, and none with a NUL
    character (SQLite's JSON functions end a text there; no NIP or period holds one)."""
    return value if type(value) is str and "\x00" not in value else None


def decision_row(decision: Any, record: Any, made_at: str, *, key_id: str | None = None, run_id: str | None = None,
                 request_id: str | None = None, redactor: Redactor | None = None) -> Row:
    """The row that keeps a `Decision` (with its id) of `record`: `row_of(record_of(...))` without the
    objects in between (the hot path of a recording service)."""
    kept, redacted = (record, ()) if redactor is None or not redactor.fields else redactor.apply(record)
    nip = periode = None
    if type(kept) is dict:
        nip, periode = kept.get("nip"), kept.get("periode")
    population = decision.population
    policy = decision.policy
    return (decision.decision_id, made_at, policy.id, policy.version, policy.digest, decision.as_of.isoformat(),
            findable(nip), findable(periode), CANONICAL.encode(kept),
            CANONICAL.encode(decision.outputs), None if decision.trace is None else CANONICAL.encode(decision.trace),
            key_id, run_id, None, CANONICAL.encode(list(redacted)) if redacted else None,
            CANONICAL.encode(population) if type(population) is dict else None, request_id, *_IN_ROW)


CHUNK_DECISIONS = 100
"""The most decisions in one chunk: reading one decision reads its chunk (some 150 KB at most
without traces), and writing a chunk costs about what writing one row does."""

_LOCATIONS = msgspec.json.Encoder()


class Chunk(NamedTuple):
    """A batch's decisions as they came and were answered: writing one blob for the batch, instead of
    each record and result again row by row, is what lets a store keep up with batches. Each
    decision still gets its row (found by id and by person), made by the database from `decisions`:
    where its record and its result lie in the blobs, and the columns it is found by."""

    id: str  # its first decision's id
    last_id: str  # its last decision's id
    inputs: bytes  # the records' JSON texts as received, one after another, compressed (zlib)
    answers: bytes  # the batch results, comma-separated, compressed: {"result":"decision",...}, {"result":"error",...}
    decisions: str  # JSON: [[id, nip, periode, as_of, input_at, input_len, answer_at, answer_len], ...]
    size: int  # how many decisions
    made_at: str  # what all its decisions share
    policy: tuple[str, str, str]  # id, version, digest
    key_id: str | None
    request_id: str | None

    @classmethod
    def of(cls, inputs: bytes, answers: bytes, decisions: list[tuple[Any, ...]], made_at: str,
           policy: tuple[str, str, str], key_id: str | None, request_id: str | None) -> Chunk:
        """A chunk of these texts and the decisions in them (`decisions` as above, in id order). The
        texts shrink about eight times (JSON of one shape, over and over): zlib's fastest level
        costs a process some 4 µs per decision, and spares the store's writer (and the disk) over a
        kilobyte of each."""
        return cls(decisions[0][0], decisions[-1][0], zlib.compress(inputs, 1), zlib.compress(answers, 1),
                   _LOCATIONS.encode(decisions).decode(), len(decisions), made_at, policy, key_id, request_id)


_CHUNK_ROWS = ("INSERT INTO decisions (id, made_at, policy_id, policy_version, policy_digest, as_of, nip, periode, "
               "input, outputs, key_id, request_id, chunk_id, input_at, input_len, answer_at, answer_len) "
               "SELECT value->>0, ?, ?, ?, ?, value->>3, value->>1, value->>2, ?, ?, ?, ?, ?, "
               "CAST(value->>4 AS INTEGER), CAST(value->>5 AS INTEGER), CAST(value->>6 AS INTEGER), "
               "CAST(value->>7 AS INTEGER) FROM {rows}")
"""A chunk's decisions' rows, made by the database from its `decisions` JSON in one statement: no
values bound (and checked) one by one in Python."""


def row_of(record: DecisionRecord) -> Row:
    """The row that keeps `record`: JSON values in canonical text, times in ISO 8601."""
    return (record.id, record.made_at.isoformat(), record.policy_id, record.policy_version, record.policy_digest,
            record.as_of.isoformat(), record.nip, record.periode, CANONICAL.encode(record.input),
            CANONICAL.encode(record.outputs), None if record.trace is None else CANONICAL.encode(record.trace),
            record.key_id, record.run_id, record.appeal_of,
            CANONICAL.encode(list(record.redacted)) if record.redacted else None,
            None if record.population is None else CANONICAL.encode(record.population), record.request_id,
            *_IN_ROW)


MAX_REDACTED_FIELDS = 32


@dataclass(frozen=True)
class Redactor:
    """Input fields (dotted paths) kept as keyed hashes (HMAC-SHA-256) instead of their values.

    A look-up by such a field hashes the query the same way, so it still finds its records; the
    value itself is not in the store, and a replay asks for it again.
    """

    fields: tuple[str, ...] = ()
    key: bytes = b""

    def __post_init__(self) -> None:
        if len(self.fields) > MAX_REDACTED_FIELDS:
            raise StoreError(f"at most {MAX_REDACTED_FIELDS} fields can be redacted")
        for name in self.fields:
            if not name or len(name) > 200 or any(not part for part in name.split(".")):
                raise StoreError(f"--redact takes a field's dotted name (such as nip or pegawai.nama), not {name!r}")
        if self.fields and len(self.key) < 16:
            raise StoreError("redacting needs a key of at least 16 bytes")

    def hash(self, value: Any) -> str:
        digest = hmac.new(self.key, CANONICAL.encode(value), hashlib.sha256).hexdigest()
        return f"{REDACTED_PREFIX}{digest}"

    def apply(self, record: Any) -> tuple[Any, tuple[str, ...]]:
        """`record` with each redacted field that it holds replaced by its hash, and which those were."""
        if not self.fields or not isinstance(record, dict):
            return record, ()
        done: list[str] = []
        out = dict(record)
        for name in self.fields:
            parts = name.split(".")
            holder = out
            for part in parts[:-1]:
                inner = holder.get(part)
                if not isinstance(inner, dict):
                    break
                holder[part] = holder = dict(inner)
            else:
                if parts[-1] in holder:
                    holder[parts[-1]] = self.hash(holder[parts[-1]])
                    done.append(name)
        return out, tuple(done)


REDACTED_PREFIX = "hmac-sha256:"
NO_REDACTION = Redactor()


def redaction_key(data_dir: Path | None) -> bytes:
    """The key of redacted fields: $KINERJA_REDACT_KEY (hex, 32 bytes or more), else `redact.key` in the
    data directory, made on first use and readable by its owner only."""
    text = os.environ.get("KINERJA_REDACT_KEY")
    if text is not None:
        try:
            key = bytes.fromhex(text.strip())
        except ValueError:
            raise StoreError("KINERJA_REDACT_KEY must be hex (64 digits or more)") from None
        if len(key) < 32:
            raise StoreError("KINERJA_REDACT_KEY must hold 32 bytes or more (64 hex digits)")
        return key
    if data_dir is None:
        raise StoreError("redacting with a PostgreSQL store needs $KINERJA_REDACT_KEY (64 hex digits), the same "
                         "on every host")
    path = data_dir / "redact.key"
    try:
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read the redaction key {path}: {exc}") from None


@dataclass
class _Pending:
    rows: list[Row]
    sources: list[tuple[str, str, bytes, bytes]]
    runs: list[Row] = field(default_factory=list)
    chunks: Sequence[Chunk] = ()
    done: threading.Event | None = None  # a thread waiting for the commit
    future: asyncio.Future[None] | None = None  # or an event loop
    error: BaseException | None = None

    @property
    def size(self) -> int:
        """How many decisions."""
        return len(self.rows) + sum(chunk.size for chunk in self.chunks)


class Store(abc.ABC):
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

    _ready_committer: _InThread | _InProcess | None = None
    closed = True

    def _start(self) -> None:
        self.closed = False
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
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
        if not (isinstance(direct, _InProcess) and direct._loop is not _DEAD and direct.send(pending)):
            self._queue.put(pending)
        await pending.future
        self._settled(pending)

    def _pending(self, rows: list[Row], sources: Iterable[Sequence[Any]], runs: Sequence[Run],
                 chunks: Sequence[Chunk] = ()) -> _Pending:
        archived = []
        for given in sources:
            if given[0] not in self._known_sources:  # each version is archived once
                source = Source(*given)
                archived.append((source.digest, source.policy_id, CANONICAL.encode(source.files),
                                 CANONICAL.encode(source.plugins)))
        run_rows = [(r.id, r.made_at.isoformat(), r.policy_digest, None if r.groups is None else
                     CANONICAL.encode(r.groups), None if r.seats is None else CANONICAL.encode(r.seats), r.policy_id,
                     None if r.as_of is None else r.as_of.isoformat()) for r in runs] if runs else []
        return _Pending(rows, archived, run_rows, chunks)

    def _settled(self, pending: _Pending) -> None:
        if pending.error is not None:
            raise StoreError(f"the decision could not be kept: {pending.error}") from None
        self._known_sources.update(digest for digest, _, _, _ in pending.sources)

    def _write_loop(self) -> None:  # noqa: C901
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
                    loop.call_soon_threadsafe(_settle, futures)
                except RuntimeError:  # that loop has closed: nobody is waiting there any more
                    pass
            if isinstance(committer, _InThread):
                committer.tidy()
            if stop:
                committer.close()
                return

    def _committer(self) -> _InThread | _InProcess:
        return _InThread(self)

    def _retry_alone(self, connection: Any, batch: list[_Pending], exc: BaseException) -> Any:
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

    def _commit(self, connection: Any, batch: list[_Pending]) -> None:
        """Write the batch's sources, runs and decisions in one transaction, or nothing of it.

        The decisions go in a few multi-row INSERTs rather than one statement per row: the database
        works with the GIL released, and taking it back once per statement (not once per row) keeps
        a busy event loop from delaying the commit.
        """
        run = self._sql("INSERT INTO runs (id, made_at, policy_digest, groups, seats, policy_id, as_of) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)")
        source = self._sql(self._insert_source)
        chunk = self._sql("INSERT INTO chunks (id, last_id, inputs, answers) VALUES (?, ?, ?, ?)")
        chunk_rows = self._sql(_CHUNK_ROWS.format(rows=self._json_rows))
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
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start:start + _ROWS_PER_INSERT]
            cursor.execute(self._insert(len(chunk)), [value for row in chunk for value in row])

    def _insert(self, count: int) -> str:
        return self._sql(_insert_sql(count))

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

    # ---- reading ----
    @abc.abstractmethod
    def _read(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows `query` selects (its parameters written `?`)."""

    def get(self, decision_id: str) -> DecisionRecord | None:
        rows = self._read(f"{_SELECT} WHERE id = ?", (decision_id,))
        return self._records(rows)[0] if rows else None

    def _records(self, rows: list[tuple[Any, ...]]) -> list[DecisionRecord]:
        """The records of rows `_SELECT` read; those kept in chunks get their record and result from
        there, a few chunks read at a time and each only once."""
        in_chunks: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            if row[_CHUNK] is not None:
                in_chunks.setdefault(row[_CHUNK], []).append(row)
        parts: dict[str, tuple[bytes, bytes]] = {}
        wanted = list(in_chunks)
        for start in range(0, len(wanted), _CHUNKS_PER_READ):
            some = wanted[start:start + _CHUNKS_PER_READ]
            for chunk_id, packed_inputs, packed_answers in self._read(
                    f"SELECT id, inputs, answers FROM chunks WHERE id IN ({', '.join('?' * len(some))})", some):
                inputs, answers = zlib.decompress(packed_inputs), zlib.decompress(packed_answers)
                for row in in_chunks.pop(chunk_id):
                    at, length, answer_at, answer_length = row[_CHUNK + 1:]
                    parts[row[0]] = (bytes(inputs[at:at + length]),
                                     bytes(answers[answer_at:answer_at + answer_length]))
        if in_chunks:  # the schema's foreign key keeps this from happening
            raise StoreError(f"the decision store {self.where} lacks the chunk {next(iter(in_chunks))} "
                             f"that decisions refer to")
        return [_record(row, parts.get(row[0])) for row in rows]

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
        return Source(digest, policy_id, _DECODER.decode(files), {} if plugins is None else _DECODER.decode(plugins))

    def run(self, run_id: str) -> tuple[Run, list[DecisionRecord]] | None:
        """A population run and its members' decisions, in the order they were made."""
        rows = self._read("SELECT id, made_at, policy_digest, groups, seats, policy_id, as_of FROM runs WHERE id = ?",
                          (run_id,))
        if not rows:
            return None
        id_, made_at, digest, groups, seats, policy_id, as_of = rows[0]
        run = Run(id=id_, made_at=dt.datetime.fromisoformat(_text(made_at)), policy_id=policy_id or "",
                  policy_digest=digest, groups=None if groups is None else _DECODER.decode(groups),
                  seats=None if seats is None else _DECODER.decode(seats),
                  as_of=None if as_of is None else dt.date.fromisoformat(as_of))
        members = self._records(self._read(f"{_SELECT} WHERE run_id = ? AND appeal_of IS NULL ORDER BY id",
                                           (run_id,)))
        return run, members

    def find(self, policy_id: str | None = None, nip: str | None = None, periode: str | None = None,
             limit: int = 100, after: str | None = None, policies: Sequence[str] | None = None,
             periods: tuple[str, str] | None = None) -> list[DecisionRecord]:
        """Decisions in id order (time order), filtered; `after` is the last id of the previous page,
        `policies` the policy ids the caller may read, `periods` a range of periode (both ends in)."""
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
        return self._records(self._read(f"{_SELECT} {where} ORDER BY id LIMIT ?", (*args, limit)))

    def _by_person(self, where: str, args: list[Any], limit: int) -> list[tuple[Any, ...]]:
        """The rows of a person's decisions (`where` names a nip) in id order, up to `limit`."""
        return self._read(f"{_SELECT} {where} ORDER BY id LIMIT ?", (*args, limit))

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


class _InThread:
    """Commits in the store's writer thread, on its own connection."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.connection = store._connect()
        self.unindexed = store._unindexed(self.connection)

    def commit(self, batch: list[_Pending]) -> None:
        """Commit the batch, or each of its callers' records alone; a caller's failure is its `error`."""
        try:
            self.store._commit(self.connection, batch)
        except self.store._errors as exc:
            self.connection = self.store._retry_alone(self.connection, batch, exc)
        self.unindexed += sum(pending.size for pending in batch)

    def tidy(self) -> None:
        """What the store does between commits, once their callers are answered (see `Store._index`)."""
        if self.unindexed >= INDEX_ROWS:
            self.unindexed = self.store._index(self.connection)

    def close(self) -> None:
        self.connection.close()


class _InProcess:
    """Commits in a child process (see `SQLiteStore`), over two pipes: the writer thread's (a batch
    down, what failed back), and the event loop's own, which the loop writes to and reads from
    itself, so a request waiting for its commit needs no thread of the service at all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._waiting: dict[int, _Pending] = {}
        self._sent = 0
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        # the loop's pipes go one way each: the loop watches its answers' end, and its requests' end
        # stays blocking (a watched descriptor may be made non-blocking, and a message written in part
        # would be lost)
        child_requests, self._requests = context.Pipe(duplex=False)
        self._direct, child_answers = context.Pipe(duplex=False)
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop reading the direct pipe's answers
        self._outbox: list[tuple[Any, ...]] = []  # what the loop sends once its callbacks of this turn ran
        self._process = context.Process(target=_commit_in_child,
                                        args=(str(self.path), child, child_requests, child_answers),
                                        daemon=True, name="kinerja-decision-store")
        self._process.start()
        for end in (child, child_requests, child_answers):
            end.close()

    def send(self, pending: _Pending) -> bool:
        """Hand `pending` to the writer process from the running event loop; its future is settled by
        the loop once committed. False when this loop cannot (another loop holds the pipe): queue it."""
        if pending.size > DIRECT_ROWS:  # a large batch: its writing could hold up the loop
            return False
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            loop.add_reader(self._direct.fileno(), self._answered)
            os.set_blocking(self._direct.fileno(), True)  # an answer is read whole once it starts to arrive
        elif self._loop is not loop:
            return False
        self._sent += 1
        self._waiting[self._sent] = pending
        self._outbox.append((self._sent, pending.rows, pending.sources, pending.runs, pending.chunks))
        if len(self._outbox) == 1:  # what else this turn of the loop sends goes with it, in one write
            loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        sending, self._outbox = self._outbox, []
        if not sending or self._loop is _DEAD:  # the process died meanwhile: what it held has failed already
            return
        try:
            self._requests.send_bytes(pickle.dumps(sending, protocol=5))
        except OSError:  # the process died: these and whatever waits fail; the writer thread restarts it
            self._answered()

    def _answered(self) -> None:
        try:
            if not self._process.is_alive():
                raise EOFError
            while self._direct.poll():
                for sent, error in pickle.loads(self._direct.recv_bytes()):
                    pending = self._waiting.pop(sent)
                    if error is not None:
                        pending.error = StoreError(error)
                    _settle_one(pending)
        except (EOFError, OSError) as exc:  # the process died: what waits fails; the writer thread restarts it
            if self._loop is not None:
                self._loop.remove_reader(self._direct.fileno())
            for pending in self._waiting.values():
                pending.error = StoreError(f"the decision store's writer stopped ({type(exc).__name__})")
                _settle_one(pending)
            self._waiting.clear()
            self._loop = _DEAD

    def commit(self, batch: list[_Pending]) -> None:
        try:
            self._pipe.send_bytes(pickle.dumps([(p.rows, p.sources, p.runs, p.chunks) for p in batch], protocol=5))
            errors = pickle.loads(self._pipe.recv_bytes())
        except (EOFError, OSError) as exc:  # the process died: these fail, the next ones go to a new one
            for pending in batch:
                pending.error = StoreError(f"the decision store's writer stopped ({type(exc).__name__})")
            self._pipe.close()
            self._process.join(timeout=5)
            if self._loop is not None and self._loop is not _DEAD:  # the old pipe stays open until then: its
                self._loop.call_soon_threadsafe(_drop_reader, self._loop, self._direct)  # number is not reused
            self._start()
            return
        for pending, error in zip(batch, errors, strict=True):
            if error is not None:
                pending.error = StoreError(error)

    def close(self) -> None:
        try:
            self._pipe.send_bytes(b"")  # stop, once what came before is committed
        except OSError:
            pass
        self._process.join(timeout=30)
        if self._loop is not None and self._loop is not _DEAD and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(_drop_reader, self._loop, self._direct)
            except RuntimeError:  # the loop closed meanwhile
                self._direct.close()
        else:
            self._direct.close()
        self._requests.close()
        self._pipe.close()


INDEX_ROWS = 32_768
"""How many decisions a SQLite store writes before it adds them to its table by person (`people`)."""
DIRECT_ROWS = 64
"""The most rows an event loop writes to the writer process itself (more go through the writer thread)."""
_DEAD: Any = object()  # a direct pipe whose process died: requests go through the writer thread until it restarts


def _drop_reader(loop: asyncio.AbstractEventLoop, connection: Any) -> None:
    loop.remove_reader(connection.fileno())
    connection.close()


def _settle_one(pending: _Pending) -> None:
    if pending.future is not None and not pending.future.done():
        pending.future.set_result(None)


def _commit_in_child(path: str, pipe: Any, direct: Any, answers: Any) -> None:  # noqa: C901
    """The writer process of a SQLite store: commits what both pipes bring, together, and answers each
    what failed."""
    from multiprocessing.connection import wait

    store = SQLiteStore.__new__(SQLiteStore)
    store.path = Path(path)
    store.where = path
    committer = _InThread(store)
    channels = [pipe, direct]
    while True:
        batch: list[_Pending] = []
        thread: list[_Pending] | None = None  # the writer thread's batch, answered as one
        direct_ids: list[tuple[int, _Pending]] = []
        stop = False
        ready: list[Any] = wait(channels)
        for channel in ready:
            try:
                while channel.poll():
                    data = channel.recv_bytes()
                    if channel is pipe:
                        if not data:
                            stop = True
                            break
                        thread = [_Pending(*given) for given in pickle.loads(data)]
                        batch.extend(thread)
                    else:
                        for sent, *given in pickle.loads(data):
                            direct_ids.append((sent, _Pending(*given)))
                            batch.append(direct_ids[-1][1])
            except (EOFError, OSError):  # the service is gone (or stopped using the direct pipe)
                if channel is pipe:
                    stop = True
                else:
                    channels = [pipe]
        if batch:
            committer.commit(batch)
        if thread is not None:
            pipe.send_bytes(pickle.dumps([None if p.error is None else str(p.error) for p in thread]))
        if direct_ids:
            try:
                answers.send_bytes(pickle.dumps([(sent, None if p.error is None else str(p.error))
                                                 for sent, p in direct_ids]))
            except OSError:
                channels = [pipe]
        if stop:
            break
        committer.tidy()
    committer.close()


def _settle(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


class SQLiteStore(Store):
    """Decisions in a SQLite file (WAL): no server to set up.

    Its writes run in a process of their own (`writer_process`): SQLite's Python binding takes the
    GIL back for every row, and in the service's process that contends with the event loop, which
    then answers far fewer requests. The process commits and says so before anyone is answered.

    Decisions are found by person through the table `people`, which is not written as each decision
    is. An index entry per decision, in a tree far larger than one commit, makes each commit write
    about one page per decision: that was half of what recording a batch cost. The writer adds the
    decisions to `people` in bulk instead, in key order, once `INDEX_ROWS` are waiting
    (`people_mark` says up to which decision), and a look-up reads `people` and scans the
    decisions after the mark.
    """

    def __init__(self, path: Path, redactor: Redactor = NO_REDACTION, writer_process: bool = True) -> None:
        self.path = Path(path)
        self.writer_process = writer_process
        self.where = str(self.path)
        self.redactor = redactor
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot open the decision store {self.path}: {exc}") from None
        self._open()
        self._ready_committer = self._committer()  # started here, so a failure to start is seen here
        self._start()

    def _committer(self) -> _InThread | _InProcess:
        if self.writer_process:
            try:
                return _InProcess(self.path)
            except (OSError, RuntimeError) as exc:  # a program that cannot start processes: write here
                logging.getLogger("kinerja_rules").warning(
                    "the decision store writes in this process (its writer process did not start: %s)", exc)
        return _InThread(self)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # committed means on disk, even if the machine stops
        connection.execute("PRAGMA foreign_keys=ON")
        # Index pages by person are written all over the file: a larger cache keeps them, and checkpoints
        # further apart copy a page changed by many commits once
        connection.execute("PRAGMA cache_size=-65536")
        connection.execute("PRAGMA wal_autocheckpoint=16384")
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
                connection.executescript(
                    f"BEGIN IMMEDIATE; {MIGRATIONS[step]}; PRAGMA user_version = {step + 1}; COMMIT;")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        return len(MIGRATIONS)

    def _read(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            try:
                rows: list[tuple[Any, ...]] = self._reader.execute(query, args).fetchall()
                return rows
            except sqlite3.Error as exc:
                raise StoreError(f"the decision store {self.where} could not be read: {exc}") from None

    def _by_person(self, where: str, args: list[Any], limit: int) -> list[tuple[Any, ...]]:
        # one statement, so one snapshot: a decision is either in people or after the mark
        return self._read(f"{_SELECT} WHERE id IN (SELECT id FROM people {where} UNION ALL SELECT id FROM "
                          f"decisions {where} AND rowid > (SELECT last_rowid FROM people_mark)) ORDER BY id LIMIT ?",
                          (*args, *args, limit))

    def _unindexed(self, connection: sqlite3.Connection) -> int:
        found = connection.execute("SELECT coalesce(max(rowid), 0) - (SELECT last_rowid FROM people_mark) "
                                   "FROM decisions").fetchone()
        return max(0, int(found[0]))

    def _index(self, connection: sqlite3.Connection) -> int:
        """Add the decisions after the mark to `people`, in key order, and move the mark: a tree written
        in order, many decisions at a time, changes each of its pages once, not once per decision."""
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute("INSERT OR IGNORE INTO people SELECT coalesce(nip, x''), policy_id, "
                                   "coalesce(periode, x''), id FROM decisions WHERE rowid > "
                                   "(SELECT last_rowid FROM people_mark) ORDER BY 1, 2, 3, 4")
                connection.execute("UPDATE people_mark SET last_rowid = (SELECT coalesce(max(rowid), 0) "
                                   "FROM decisions)")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:  # look-ups still find them after the mark; the next turn tries again
            logging.getLogger("kinerja_rules").warning("the decision store %s could not index decisions by "
                                                       "person: %s", self.where, exc)
            return 0
        return 0

    def _delete(self, cutoff: str) -> int:
        with self._read_lock:
            self._reader.execute("BEGIN IMMEDIATE")
            try:
                count = self._reader.execute("DELETE FROM decisions WHERE id < ? AND id NOT IN "
                                             "(SELECT appeal_of FROM decisions WHERE appeal_of IS NOT NULL "
                                             "AND id >= ?)", (cutoff, cutoff)).rowcount
                self._reader.execute("DELETE FROM people WHERE id < ? AND id NOT IN "
                                     "(SELECT id FROM decisions WHERE id < ?)", (cutoff, cutoff))
                # the next decision's rowid follows the last one left: the mark must not be past it
                self._reader.execute("UPDATE people_mark SET last_rowid = min(last_rowid, "
                                     "(SELECT coalesce(max(rowid), 0) FROM decisions))")
                self._reader.execute("DELETE FROM runs WHERE id < ? AND id NOT IN "
                                     "(SELECT run_id FROM decisions WHERE run_id IS NOT NULL)", (cutoff,))
                self._reader.execute(_DELETE_CHUNKS, (cutoff, cutoff))
                self._reader.execute("COMMIT")
            except BaseException:
                self._reader.execute("ROLLBACK")
                raise
        return int(count)

    def _close_reader(self) -> None:
        self._reader.close()


_DELETE_CHUNKS = ("DELETE FROM chunks WHERE last_id < ? AND id NOT IN "  # all its decisions are past, but for
                  "(SELECT chunk_id FROM decisions WHERE id < ? AND chunk_id IS NOT NULL)")  # those an appeal keeps


def _pg_migration(text: str) -> str:
    return text.replace(" BLOB", " BYTEA")


class PostgresStore(Store):
    """Decisions in PostgreSQL (psycopg 3), for a region serving from several hosts."""

    _insert_source = ("INSERT INTO sources (digest, policy_id, files, plugins) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT (digest) DO NOTHING")
    _json_rows = "json_array_elements(?::json)"

    def __init__(self, dsn: str, redactor: Redactor = NO_REDACTION) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError("a PostgreSQL store needs psycopg 3: pip install 'kinerja-rules[postgresql]'") from None
        self._psycopg = psycopg
        self._errors = (psycopg.Error,)
        self.dsn = dsn
        self.where = without_password(dsn)
        self.redactor = redactor
        self._open()
        self._start()

    def _connect(self) -> Any:
        return self._psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)

    def _sql(self, text: str) -> str:
        return text.replace("%", "%%").replace("?", "%s")

    def migrate(self, connection: Any) -> int:
        """Bring the schema up to date under an advisory lock (hosts starting together take turns)."""
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(727274)")  # 'kinerja' in one number
            connection.execute("CREATE TABLE IF NOT EXISTS kinerja_schema (version INTEGER NOT NULL)")
            row = connection.execute("SELECT version FROM kinerja_schema").fetchone()
            version = 0 if row is None else row[0]
            if version > len(MIGRATIONS):
                raise StoreError(f"the decision store has schema version {version}; this kinerja-rules knows up "
                                 f"to {len(MIGRATIONS)}: upgrade kinerja-rules")
            for step in range(version, len(MIGRATIONS)):
                if step not in _SQLITE_ONLY:
                    connection.execute(_pg_migration(MIGRATIONS[step]))
            connection.execute("DELETE FROM kinerja_schema")
            connection.execute("INSERT INTO kinerja_schema VALUES (%s)", (len(MIGRATIONS),))
        return len(MIGRATIONS)

    def _read(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            try:
                if self._reader.closed:
                    self._reader = self._connect()
                rows: list[tuple[Any, ...]] = self._reader.execute(self._sql(query), args).fetchall()
                return rows
            except self._psycopg.Error as exc:
                raise StoreError(f"the decision store {self.where} could not be read: {str(exc).strip()}") from None

    def _delete(self, cutoff: str) -> int:
        with self._read_lock, self._reader.transaction():
            count = self._reader.execute(
                "DELETE FROM decisions WHERE id < %s AND id NOT IN (SELECT appeal_of FROM decisions "
                "WHERE appeal_of IS NOT NULL AND id >= %s)", (cutoff, cutoff)).rowcount
            self._reader.execute("DELETE FROM runs WHERE id < %s AND id NOT IN "
                                 "(SELECT run_id FROM decisions WHERE run_id IS NOT NULL)", (cutoff,))
            self._reader.execute(self._sql(_DELETE_CHUNKS), (cutoff, cutoff))
        return int(count)

    def _close_reader(self) -> None:
        self._reader.close()


def without_password(dsn: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", re.sub(r"password=\S+", "password=***", dsn))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _record(row: tuple[Any, ...], in_chunk: tuple[bytes, bytes] | None = None) -> DecisionRecord:
    """The record of a row; `in_chunk`, for a row kept in a chunk, is its record's and its result's text."""
    (id_, made_at, policy_id, version, digest, as_of, nip, periode, raw_input, outputs, trace, key_id, run_id,
     appeal_of, redacted, population, request_id) = row[:_CHUNK]
    if in_chunk is None:
        given = _DECODER.decode(raw_input)
        outputs, trace = _DECODER.decode(outputs), None if trace is None else _DECODER.decode(trace)
        population = None if population is None else _DECODER.decode(population)
    else:  # the result as answered: {"result":"decision","decision_id":…,"outputs":…,"trace"?:…}
        given, result = _DECODER.decode(in_chunk[0]), _DECODER.decode(in_chunk[1])
        outputs, trace, population = result["outputs"], result.get("trace"), result.get("population")
        population = population if type(population) is dict else None
    return DecisionRecord(id=id_, made_at=dt.datetime.fromisoformat(made_at), policy_id=policy_id,
                          policy_version=version, policy_digest=digest, as_of=dt.date.fromisoformat(as_of),
                          input=given, outputs=outputs, trace=trace, nip=nip, periode=periode,
                          key_id=key_id, run_id=run_id, appeal_of=appeal_of,
                          redacted=() if redacted is None else tuple(_DECODER.decode(redacted)),
                          population=population, request_id=request_id)


def is_dsn(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def open_store(location: str | Path, redact: Sequence[str] = ()) -> Store:
    """The store at `location`: a PostgreSQL DSN (`postgresql://…`), or a data directory (its SQLite
    file is `decisions.sqlite3`, made on first use). `redact` names input fields kept as keyed hashes."""
    text = str(location)
    data_dir = None if is_dsn(text) else Path(text)
    redactor = Redactor(tuple(redact), redaction_key(data_dir)) if redact else NO_REDACTION
    if data_dir is None:
        return PostgresStore(text, redactor)
    if data_dir.exists() and not data_dir.is_dir():
        raise StoreError(f"{data_dir} is a file; --data takes a directory (the store is decisions.sqlite3 in it)")
    return SQLiteStore(data_dir / "decisions.sqlite3", redactor)


def default_data_dir() -> Path:
    """Where `kinerja serve` keeps its decisions unless told otherwise: `kinerja-data/` in the
    working directory (or `KINERJA_DATA`)."""
    return Path(os.environ.get("KINERJA_DATA", "kinerja-data"))
