"""The PostgreSQL store (psycopg 3), for a region serving from several hosts."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

from kinerja_rules.store.base import DELETE_CHUNKS, MIGRATIONS, SQLITE_ONLY, Store
from kinerja_rules.store.keberatan import DELETE_KEBERATAN, KEPT_BY_KEBERATAN, Execute
from kinerja_rules.store.records import StoreError
from kinerja_rules.store.redaction import NO_REDACTION, Redactor


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
        self._conflicts = (psycopg.errors.UniqueViolation,)
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
                if step not in SQLITE_ONLY:
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

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Execute]:
        with self._read_lock:
            if self._reader.closed:
                self._reader = self._connect()
            with self._reader.transaction():
                yield lambda query, args=(): self._reader.execute(self._sql(query), args)

    def _delete(self, cutoff: str) -> int:
        with self._transaction() as execute:
            count = execute("DELETE FROM decisions WHERE id < ? AND id NOT IN (SELECT appeal_of FROM decisions "
                            f"WHERE appeal_of IS NOT NULL AND id >= ?) AND id NOT IN ({KEPT_BY_KEBERATAN})",
                            (cutoff, cutoff, cutoff)).rowcount
            execute("DELETE FROM runs WHERE id < ? AND id NOT IN (SELECT run_id FROM decisions WHERE run_id IS NOT "
                    "NULL)", (cutoff,))
            execute(DELETE_CHUNKS, (cutoff, cutoff))
            for statement in DELETE_KEBERATAN:
                execute(statement, (cutoff,))
        return int(count)

    def _close_reader(self) -> None:
        self._reader.close()


def without_password(dsn: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", re.sub(r"password=\S+", "password=***", dsn))
