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

The package by concern: `ids` (decision ids), `records` (the record model, its rows and
chunks), `redaction`, `writer` (group commit), `base` (the schema and what both databases
share), `sqlite` (with its writer process) and `postgres`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from kinerja_rules.store.base import MIGRATIONS, Store
from kinerja_rules.store.ids import IDS, uuid7
from kinerja_rules.store.postgres import PostgresStore, without_password
from kinerja_rules.store.records import (
    CANONICAL,
    CHUNK_DECISIONS,
    Chunk,
    DecisionRecord,
    Row,
    Run,
    Source,
    StoreError,
    decision_row,
    findable,
    kept_subject,
    row_of,
)
from kinerja_rules.store.redaction import (
    MAX_REDACTED_FIELDS,
    NO_REDACTION,
    REDACTED_PREFIX,
    Redactor,
    redaction_key,
)
from kinerja_rules.store.sqlite import DIRECT_ROWS, SQLiteStore
from kinerja_rules.store.writer import INDEX_ROWS

__all__ = [
    "CANONICAL",
    "CHUNK_DECISIONS",
    "Chunk",
    "DIRECT_ROWS",
    "DecisionRecord",
    "IDS",
    "INDEX_ROWS",
    "MAX_REDACTED_FIELDS",
    "MIGRATIONS",
    "NO_REDACTION",
    "PostgresStore",
    "REDACTED_PREFIX",
    "Redactor",
    "Row",
    "Run",
    "SQLiteStore",
    "Source",
    "Store",
    "StoreError",
    "decision_row",
    "default_data_dir",
    "findable",
    "is_dsn",
    "kept_subject",
    "open_store",
    "redaction_key",
    "row_of",
    "uuid7",
    "without_password",
]


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
