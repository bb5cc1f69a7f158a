"""What the store keeps: the decision record, archived sources and runs, and the rows and chunks
they are written as (and read back from)."""

from __future__ import annotations

import datetime as dt
import functools
import zlib
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from kinerja_rules.decision import ENCODER

if TYPE_CHECKING:
    from kinerja_rules.store.redaction import Redactor

CANONICAL = msgspec.json.Encoder(decimal_format="number", order="sorted", enc_hook=ENCODER.enc_hook)
"""JSON with its keys sorted and decimals as numbers: one text for one value."""
DECODER = msgspec.json.Decoder(float_hook=Decimal)


class StoreError(Exception):
    """The store cannot be opened, is newer than this version, or could not keep a record."""


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
    keberatan_id: str | None = None  # the keberatan whose putusan made this decision
    alasan: str | None = None  # why it was appealed, or the putusan's reason
    subject: dict[str, Any] | None = None  # whom it is for (redacted fields as kept)

    def describe(self) -> dict[str, Any]:
        """The record as the decisions endpoints and `kinerja replay` show it."""
        out: dict[str, Any] = {
            "decision_id": self.id, **({"subject": self.subject} if self.subject is not None else {}),
            "made_at": self.made_at.isoformat(),
            "policy": {"id": self.policy_id, "version": self.policy_version, "digest": self.policy_digest},
            "as_of": self.as_of.isoformat(), "input": self.input, "outputs": self.outputs}
        for name in ("trace", "population", "key_id", "run_id", "appeal_of", "keberatan_id", "alasan", "request_id"):
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


Row = tuple[Any, ...]
"""A decision as the store writes it (see `row_of`)."""

COLUMNS = ("id", "made_at", "policy_id", "policy_version", "policy_digest", "as_of", "nip", "periode", "input",
            "outputs", "trace", "key_id", "run_id", "appeal_of", "redacted", "population", "request_id",
            "chunk_id", "input_at", "input_len", "answer_at", "answer_len", "keberatan_id", "alasan", "subject")
IN_ROW = (None, None, None, None, None)  # a decision kept whole in its row, in no chunk
NOT_APPEALED = (None, None)  # keberatan_id, alasan
SELECT = f"SELECT {', '.join(COLUMNS)} FROM decisions"
CHUNK_AT = COLUMNS.index("chunk_id")
APPEALED_AT = COLUMNS.index("keberatan_id")
CHUNKS_PER_READ = 16  # chunks of at most CHUNK_DECISIONS decisions: a few MiB at a time


@functools.cache  # at most ROWS_PER_INSERT texts
def insert_sql(count: int) -> str:
    """An INSERT of `count` decision rows (parameters written `?`)."""
    one = f"({', '.join('?' * len(COLUMNS))})"
    return f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES {', '.join([one] * count)}"


def findable(value: Any) -> str | None:
    """A record's nip or periode as the store finds decisions by it: a text, and none with a NUL
    character (SQLite's JSON functions end a text there; no NIP or period holds one)."""
    return value if type(value) is str and "\x00" not in value else None


def decision_row(decision: Any, record: Any, made_at: str, *, key_id: str | None = None, run_id: str | None = None,
                 request_id: str | None = None, redactor: Redactor | None = None) -> Row:
    """The row that keeps a `Decision` (with its id) of `record`: `row_of(record_of(...))` without the
    objects in between (the hot path of a recording service)."""
    kept, redacted = (record, ()) if redactor is None or not redactor.fields else redactor.apply(record)
    subject = decision.subject
    if type(subject) is dict and redacted and redactor is not None:
        subject = kept_subject(subject, redactor)
    nip = periode = None
    if type(kept) is dict:
        nip, periode = kept.get("nip"), kept.get("periode")
    population = decision.population
    policy = decision.policy
    return (decision.decision_id, made_at, policy.id, policy.version, policy.digest, decision.as_of.isoformat(),
            findable(nip), findable(periode), CANONICAL.encode(kept),
            CANONICAL.encode(decision.outputs), None if decision.trace is None else CANONICAL.encode(decision.trace),
            key_id, run_id, None, CANONICAL.encode(list(redacted)) if redacted else None,
            CANONICAL.encode(population) if type(population) is dict else None, request_id, *IN_ROW, *NOT_APPEALED,
            CANONICAL.encode(subject) if type(subject) is dict else None)


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


def row_of(record: DecisionRecord) -> Row:
    """The row that keeps `record`: JSON values in canonical text, times in ISO 8601."""
    return (record.id, record.made_at.isoformat(), record.policy_id, record.policy_version, record.policy_digest,
            record.as_of.isoformat(), record.nip, record.periode, CANONICAL.encode(record.input),
            CANONICAL.encode(record.outputs), None if record.trace is None else CANONICAL.encode(record.trace),
            record.key_id, record.run_id, record.appeal_of,
            CANONICAL.encode(list(record.redacted)) if record.redacted else None,
            None if record.population is None else CANONICAL.encode(record.population), record.request_id,
            *IN_ROW, record.keberatan_id, record.alasan,
            None if record.subject is None else CANONICAL.encode(record.subject))


def kept_subject(subject: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """A decision's subject as the store keeps it: each redacted field as its keyed hash."""
    return {name: redactor.hash(value) if name in redactor.fields and value is not None else value
            for name, value in subject.items()}


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def record_of_row(row: tuple[Any, ...], in_chunk: tuple[bytes, bytes] | None = None) -> DecisionRecord:
    """The record of a row; `in_chunk`, for a row kept in a chunk, is its record's and its result's text."""
    (id_, made_at, policy_id, version, digest, as_of, nip, periode, raw_input, outputs, trace, key_id, run_id,
     appeal_of, redacted, population, request_id) = row[:CHUNK_AT]
    if in_chunk is None:
        given = DECODER.decode(raw_input)
        outputs, trace = DECODER.decode(outputs), None if trace is None else DECODER.decode(trace)
        population = None if population is None else DECODER.decode(population)
    else:  # the result as answered: {"result":"decision","decision_id":…,"outputs":…,"trace"?:…}
        given, result = DECODER.decode(in_chunk[0]), DECODER.decode(in_chunk[1])
        outputs, trace, population = result["outputs"], result.get("trace"), result.get("population")
        population = population if type(population) is dict else None
        subject = result.get("subject")
    if in_chunk is None:
        subject = None if row[APPEALED_AT + 2] is None else DECODER.decode(row[APPEALED_AT + 2])
    return DecisionRecord(subject=subject if type(subject) is dict else None, id=id_,
                          made_at=dt.datetime.fromisoformat(made_at), policy_id=policy_id,
                          policy_version=version, policy_digest=digest, as_of=dt.date.fromisoformat(as_of),
                          input=given, outputs=outputs, trace=trace, nip=nip, periode=periode,
                          key_id=key_id, run_id=run_id, appeal_of=appeal_of,
                          redacted=() if redacted is None else tuple(DECODER.decode(redacted)),
                          population=population, request_id=request_id, keberatan_id=row[APPEALED_AT],
                          alasan=row[APPEALED_AT + 1])
