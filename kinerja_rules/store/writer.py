"""Committing: what a writer is handed (`Pending`), and the writer that commits in the store's
own thread. (SQLite's writer process is in `sqlite.py`.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from kinerja_rules.store.records import Chunk, Row

if TYPE_CHECKING:
    from kinerja_rules.store.base import Store

INDEX_ROWS = 32_768
"""How many decisions a SQLite store writes before it adds them to its table by person (`people`)."""


@dataclass
class Pending:
    """One caller's records on their way to a commit, and how that caller is told it is done."""

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


class Committer(Protocol):
    """What a store's writer thread commits through."""

    def commit(self, batch: list[Pending]) -> None: ...

    def send(self, pending: Pending) -> bool: ...

    def tidy(self) -> None: ...

    def close(self) -> None: ...


class InThread:
    """Commits in the store's writer thread, on its own connection."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.connection = store._connect()
        self.unindexed = store._unindexed(self.connection)

    def commit(self, batch: list[Pending]) -> None:
        """Commit the batch, or each of its callers' records alone; a caller's failure is its `error`."""
        try:
            self.store._commit(self.connection, batch)
        except self.store._errors as exc:
            self.connection = self.store._retry_alone(self.connection, batch, exc)
        self.unindexed += sum(pending.size for pending in batch)

    def send(self, pending: Pending) -> bool:
        """Commits go through the writer thread's queue only."""
        return False

    def tidy(self) -> None:
        """What the store does between commits, once their callers are answered (see `Store._index`)."""
        if self.unindexed >= INDEX_ROWS:
            self.unindexed = self.store._index(self.connection)

    def close(self) -> None:
        self.connection.close()


def settle_one(pending: Pending) -> None:
    if pending.future is not None and not pending.future.done():
        pending.future.set_result(None)


def settle(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)
